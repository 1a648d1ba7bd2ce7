"""The Train screen on runs written as the engine writes them (status.json + events.jsonl): the
runs list, the live view and its warnings, a run that grows while the screen is open, the
overlay of two runs, the sweep summary, and a start refused with its reason."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from textual.widgets import Input

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_train_screen_support import (
    FAILED_ID,
    FINISHED_ID,
    LIVE_ID,
    SIZE,
    T0,
    app_on,
    finished_events,
    live,
    log_text,
    make_run,
    oom_events,
    shown,
    started,
    steps,
    wait_until,
    write_events,
)

from screens.data_dialogs import ConfirmScreen
from screens.train import TrainScreen
from screens.train_export import ExportScreen
from screens.train_form import TrainForm
from screens.train_sweep import SweepScreen
from screens.widgets.line_chart import LineChart
from screens.widgets.train_runs import RunsTable
from workbench.jobs import JobStatus, write_status
from workbench.train.events import Evaluated
from workbench.workspace import Workspace


async def test_a_finished_run_shows_its_numbers_curves_warning_and_log(workspace: Workspace):
    make_run(workspace, FINISHED_ID, finished_events())
    async with app_on(workspace).run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await wait_until(pilot, lambda: live(pilot).history is not None)
        assert isinstance(pilot.app.screen, TrainScreen)
        assert pilot.app.screen.query_one(RunsTable).ids == [FINISHED_ID]
        stats = shown(pilot, "#train-stats")
        assert "finished" in stats and "step 30/30" in stats
        assert "best eval 0.9000 @ 20" in stats and "2,400 tokens/s" in stats
        assert "GPU 3.20 GiB" in stats and "epoch 3.00" in stats
        assert "overfitting" in shown(pilot, "#train-alerts")
        series = pilot.app.screen.query_one(LineChart).series
        assert [len(item.points) for item in series] == [30, 3]
        assert series[1].markers
        assert "best eval loss 0.9000 at step 20" in log_text(pilot)


async def test_out_of_memory_says_what_to_change(workspace: Workspace):
    make_run(workspace, FAILED_ID, oom_events(), state="failed")
    async with app_on(workspace).run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await wait_until(pilot, lambda: live(pilot).history is not None)
        alerts = shown(pilot, "#train-alerts")
        assert "out of GPU memory" in alerts and "CUDA out of memory at step 3" in alerts
        assert "batch_size" in alerts and "max_seq_length" in alerts and "load_in_4bit" in alerts
        assert "failed" in shown(pilot, "#train-stats")
        assert "error (out_of_memory)" in log_text(pilot)


async def test_a_growing_run_updates_live_and_arrow_keys_pick_another(workspace: Workspace):
    make_run(workspace, FINISHED_ID, finished_events())
    run_dir = make_run(workspace, LIVE_ID, [started(100), *steps(1, 5, 100)], "running", T0 + 100)
    async with app_on(workspace).run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await wait_until(pilot, lambda: live(pilot).history is not None)
        table = pilot.app.screen.query_one(RunsTable)
        assert table.ids == [LIVE_ID, FINISHED_ID]  # newest first, selected
        assert "step 5/100" in shown(pilot, "#train-stats")
        assert "running" in shown(pilot, "#train-stats") and "ETA" in shown(pilot, "#train-stats")
        write_events(run_dir, [*steps(6, 12, 100), Evaluated(10, 1.2, True)], T0 + 200)
        await wait_until(pilot, lambda: "step 12/100" in shown(pilot, "#train-stats"))
        assert len(pilot.app.screen.query_one(LineChart).series[0].points) == 12
        assert "eval at step 10" in log_text(pilot)
        await pilot.press("down")
        await wait_until(pilot, lambda: "step 30/30" in shown(pilot, "#train-stats"))
        assert FINISHED_ID in shown(pilot, "#train-stats")


async def test_marked_runs_overlay_their_curves(workspace: Workspace):
    make_run(workspace, FINISHED_ID, finished_events())
    make_run(workspace, FAILED_ID, oom_events(), state="failed", started_at=T0 + 50)
    async with app_on(workspace).run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await wait_until(pilot, lambda: live(pilot).history is not None)
        await pilot.press("o")  # nothing marked yet: says so
        await pilot.press("space", "down", "space", "o")
        chart = pilot.app.screen.query_one(LineChart)
        await wait_until(pilot, lambda: len(chart.series) == 3)
        names = [item.name for item in chart.series]
        assert names == ["aaaa loss", "aaaa eval loss", "bbbb loss"]
        assert len({item.colour for item in chart.series if not item.markers}) == 2
        await pilot.press("o")  # back to the highlighted run alone
        await wait_until(pilot, lambda: [s.name for s in chart.series] == ["loss", "eval loss"])


async def test_the_sweep_summary_ranks_by_best_eval_loss_and_keeps_the_best(workspace: Workspace):
    worse = [started(30), *steps(1, 10, 30), Evaluated(10, 1.4, True)]
    make_run(workspace, FINISHED_ID, finished_events(), variant="r16", started_at=T0)
    make_run(workspace, FAILED_ID, worse, state="stopped", variant="r8", started_at=T0 + 1)
    for run_id in (FINISHED_ID, FAILED_ID):
        (workspace.runs_dir / run_id / "best").mkdir()
    sweep_dir = workspace.root / "sweeps" / "20260225-080000-swp1"
    sweep_dir.mkdir(parents=True)
    runs = [{"name": "r8", "run_id": FAILED_ID}, {"name": "r16", "run_id": FINISHED_ID}]
    (sweep_dir / "sweep.json").write_text(json.dumps({"runs": runs}))
    write_status(sweep_dir, JobStatus("20260225-080000-swp1", "sweep", "finished"))
    async with app_on(workspace).run_test(size=SIZE) as pilot:
        await pilot.press("2", "w")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, SweepScreen))
        rows = pilot.app.screen.query_one("#train-sweep-table").get_row_at(0)  # type: ignore[attr-defined]
        assert rows[1:5] == ["r16", FINISHED_ID, "finished", "0.9000"]
        await pilot.press("k")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen))
        assert (workspace.runs_dir / FAILED_ID / "best").exists()  # nothing deleted yet
        await pilot.press("y")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, SweepScreen))
        assert "kept: " in shown(pilot, "#train-sweep-note")
        assert FINISHED_ID in shown(pilot, "#train-sweep-note")
        assert not (workspace.runs_dir / FAILED_ID / "best").exists()
        assert (workspace.runs_dir / FINISHED_ID / "best").exists()


async def test_a_bad_setting_is_refused_with_its_reason_and_nothing_starts(workspace: Workspace):
    async with app_on(workspace).run_test(size=SIZE) as pilot:
        await pilot.press("2")
        assert "press [b]n[/b]" in shown(pilot, "#train-stats") or "press n" in shown(
            pilot, "#train-stats"
        )
        await pilot.press("n")
        assert isinstance(pilot.app.screen, TrainForm)
        pilot.app.screen.query_one("#train-form-lora_r", Input).value = "0"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(pilot.app.screen, TrainForm)
        error = shown(pilot, "#train-form-error")
        assert "train.lora_r = '0'" in error and "greater than or equal to 1" in error
        assert not any(workspace.runs_dir.glob("*"))


async def test_a_start_without_examples_is_refused_and_says_why(workspace: Workspace):
    workspace = workspace.set_values({"train.base_model": "workbench:demo-tiny"})
    notes: list[str] = []
    async with app_on(workspace).run_test(size=SIZE) as pilot:
        pilot.app.notify = lambda message, **kw: notes.append(str(message))  # type: ignore[method-assign]
        await pilot.press("2", "n", "ctrl+s")
        await wait_until(pilot, lambda: len(notes) >= 2, timeout=20)
        assert "examples" in notes[-1]
        assert isinstance(pilot.app.screen, TrainScreen)
        assert not [path for path in workspace.runs_dir.glob("*") if path.is_dir()]


async def test_stop_resume_and_export_say_why_they_cannot_on_a_finished_run(workspace: Workspace):
    make_run(workspace, FINISHED_ID, finished_events())
    notes: list[str] = []
    async with app_on(workspace).run_test(size=SIZE) as pilot:
        pilot.app.notify = lambda message, **kw: notes.append(str(message))  # type: ignore[method-assign]
        await pilot.press("2")
        await wait_until(pilot, lambda: live(pilot).history is not None)
        await pilot.press("s")
        await wait_until(pilot, lambda: any("not running" in note for note in notes))
        await pilot.press("r")
        await wait_until(pilot, lambda: any("has finished" in note for note in notes))
        await pilot.press("e")
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, ExportScreen))
        await pilot.press("ctrl+s")
        assert "no adapter to export yet" in shown(pilot, "#export-error")
        await pilot.press("escape")
        assert isinstance(pilot.app.screen, TrainScreen)
        assert not (workspace.root / "exports").exists() or not any(workspace.exports_dir.iterdir())


async def test_keys_are_answered_at_once_while_a_long_run_grows(workspace: Workspace):
    """A guard, not the 100 ms figure: each press switches runs (the other run's whole history
    is read and drawn) and Pilot waits for the screen to be idle; about 0.2 s here."""
    make_run(workspace, FINISHED_ID, finished_events())
    run_dir = make_run(workspace, LIVE_ID, [started(9000), *steps(1, 3000, 9000)], "running", T0)
    async with app_on(workspace).run_test(size=SIZE) as pilot:
        await pilot.press("2")
        await wait_until(pilot, lambda: "step 3000/9000" in shown(pilot, "#train-stats"))
        table = pilot.app.screen.query_one(RunsTable)
        timings = []
        for batch in range(6):
            first = 3001 + batch * 200
            write_events(run_dir, steps(first, first + 199, 9000), T0 + first)
            start = time.perf_counter()
            await pilot.press("down" if table.cursor_row == 0 else "up")
            timings.append(time.perf_counter() - start)
            await pilot.pause(0.2)
        timings.sort()
        assert timings[len(timings) // 2] < 0.5, timings
