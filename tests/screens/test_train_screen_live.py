"""The Train screen reads each run's log once and then only what is appended; it shows GPU
utilization; and its export dialog lists a run's adapters and starts the export asked for."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from textual.widgets import OptionList

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_train_screen_support import (
    FINISHED_ID,
    LIVE_ID,
    SIZE,
    T0,
    app_on,
    finished_events,
    live,
    log_text,
    make_run,
    shown,
    started,
    steps,
    wait_until,
    write_events,
)

from screens.train import TrainScreen
from screens.train_export import ExportScreen
from screens.widgets.line_chart import LineChart
from workbench.jobs import observed_status
from workbench.train.events import Step
from workbench.workspace import Workspace


def fake_adapter(path: Path) -> None:
    """The files of a peft adapter (an export started on them fails at the merge)."""
    path.mkdir(parents=True)
    (path / "adapter_config.json").write_text("{}")
    (path / "adapter_model.safetensors").write_bytes(b"\0" * 8)


async def test_appended_events_show_without_reading_the_log_again(workspace: Workspace):
    """Whichever of the list refresh and the follower reads new events first, the live view
    gets each of them once (the test reads the new steps itself, as a refresh would, and the
    outcome must not depend on whether the follower got there before it)."""
    make_run(workspace, FINISHED_ID, finished_events())
    run_dir = make_run(workspace, LIVE_ID, [started(100), *steps(1, 5, 100)], "running", T0 + 100)
    log = run_dir / "events.jsonl"
    async with app_on(workspace).run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await wait_until(pilot, lambda: "step 5/100" in shown(pilot, "#train-stats"))
        screen = pilot.app.screen
        assert isinstance(screen, TrainScreen)
        write_events(run_dir, steps(6, 9, 100), T0 + 200)
        assert screen.cache.summary(run_dir).step == 9  # a list refresh read them first
        await wait_until(pilot, lambda: "step 9/100" in shown(pilot, "#train-stats"))
        assert len(screen.query_one(LineChart).series[0].points) == 9
        await wait_until(pilot, lambda: "step 9/100" in log_text(pilot))
        assert [log_text(pilot).count(f"step {n}/100") for n in range(1, 10)] == [1] * 9
        await pilot.press("down")  # the other run, then back: nothing is read again
        await wait_until(pilot, lambda: "step 30/30" in shown(pilot, "#train-stats"))
        write_events(run_dir, steps(10, 12, 100), T0 + 300)
        await pilot.press("k")
        await wait_until(pilot, lambda: "step 12/100" in shown(pilot, "#train-stats"))
        await pilot.pause(2.5)  # a refresh of the runs list reads only what changed, too
        tail = screen.cache.entry(run_dir).tail
        assert tail.offset == log.stat().st_size
        assert tail.bytes_read == log.stat().st_size
        assert [log_text(pilot).count(f"step {n}/100") for n in range(1, 13)] == [1] * 12


async def test_gpu_memory_and_utilization_show_beside_each_other(workspace: Workspace):
    busy = [Step(n, 50, n / 10, 1.0, 2e-4, 0.5, 900.0, 5.2, 87.4, n * 1.0) for n in (1, 2)]
    make_run(workspace, FINISHED_ID, [started(50), *busy], "running")
    async with app_on(workspace).run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await wait_until(pilot, lambda: live(pilot).history is not None)
        assert "GPU 5.20 GiB 87% busy" in shown(pilot, "#train-stats")


async def test_cpu_runs_show_no_gpu_figures(workspace: Workspace):
    cpu = [Step(n, 50, n / 10, 1.0, 2e-4, 0.5, 900.0, elapsed_s=n * 1.0) for n in (1, 2)]
    make_run(workspace, FINISHED_ID, [started(50), *cpu], "running")
    async with app_on(workspace).run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await wait_until(pilot, lambda: "step 2/50" in shown(pilot, "#train-stats"))
        assert "GPU" not in shown(pilot, "#train-stats")


async def test_the_export_dialog_lists_the_adapters_and_starts_the_chosen_export(
    workspace: Workspace, demo_model_dir: Path
):
    run_dir = make_run(workspace, FINISHED_ID, finished_events())
    record = {"backend": "hf", "base_model": "my/base", "model": str(demo_model_dir)}
    (run_dir / "run.json").write_text(json.dumps(record))
    fake_adapter(run_dir / "best")
    for step in (10, 30):
        fake_adapter(run_dir / "checkpoints" / f"checkpoint-{step}")
    (run_dir / "checkpoints" / "checkpoint-40").mkdir()  # being written: not offered
    async with app_on(workspace).run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await wait_until(pilot, lambda: live(pilot).history is not None)
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, ExportScreen))
        options = pilot.app.screen.query_one(OptionList)
        labels = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        assert labels == [
            "best: lowest eval loss (step 20, eval loss 0.9000)",
            "checkpoint-30 (step 30, eval loss 1.0500)",
            "checkpoint-10 (step 10, eval loss 1.1000)",
        ]
        await pilot.press("down", "tab", "space", "ctrl+s")  # checkpoint-30; tick f16 too
        await wait_until(
            pilot,
            lambda: (
                workspace.exports_dir.is_dir()
                and any(
                    (path / "request.json").exists() for path in workspace.exports_dir.iterdir()
                )
            ),
        )
        export_dir = next(workspace.exports_dir.iterdir())
        request = json.loads((export_dir / "request.json").read_text())
        assert request["checkpoint"] == "30" and request["quants"] == ["f16", "q8_0"]
        assert request["run_dir"] == str(run_dir)
        await wait_until(pilot, lambda: export_dir.name in shown(pilot, "#train-notice"))
        await pilot.press("x")  # stop it (or it has already failed on the fake adapter)
        await wait_until(pilot, lambda: not (observed_status(export_dir) or _gone()).active, 60)
        ended = ("stopped", "failed", "lost")
        await wait_until(pilot, lambda: any(w in shown(pilot, "#train-notice") for w in ended))


def _gone():  # type: ignore[no-untyped-def]
    from workbench.jobs import JobStatus

    return JobStatus("gone", "export", "lost")
