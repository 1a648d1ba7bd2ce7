"""How fast the Train screen answers keys while a real CPU training run is going.

A copy of the sample workspace (pairs imported and split as in `bench/train.py`) gets a few
finished runs with long histories (3,000-3,500 steps each, as a day of runs leaves them), then
`workbench train` starts the default run (tiny model, 4 epochs so it lasts) in the background.
While it trains, the app (headless, in this process) is opened on the Train screen and keys are
pressed one at a time; each is timed from the key event to the visible result painted:
- `down`/`up` (and `j`/`k`): the next run's numbers and curve drawn on the right;
- `1`..`4` away from and back to the Train screen: the other screen painted.
Target (issue 4): a key answered within 100 ms on a 2-core CPU while the run trains.

    .venv/bin/python bench/train_screen.py [--presses 30] [--switches 12]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from report import table, write_section
from train import prepare_workspace

from workbench.jobs import JobStatus, observed_status, write_status
from workbench.train.events import Evaluated, Finished, Started, Step, event_to_dict
from workbench.train.runs import read_history

HISTORY_RUNS = 4
EPOCHS = ("--set", "train.epochs=4")
"""The sample's run lasts about 30 s: four epochs keep it training while every key is timed."""
PAUSE_S = 0.25
"""Between presses: the screen's timers and workers run as they would between a user's keys."""


def write_history_run(runs_dir: Path, index: int) -> str:
    """A finished run with `3000 + 100 * index` steps and an eval every 50, as training writes."""
    run_id = f"20260101-0{index}0000-hist"
    run_dir = runs_dir / run_id
    run_dir.mkdir(parents=True)
    total, t0 = 3000 + 100 * index, 1_767_225_600.0 + index * 10_000
    events: list[Any] = [Started("hf", "workbench:demo-tiny", "cpu", total, 109, 8, 50_000)]
    for step in range(1, total + 1):
        loss = 2.0 / (1 + step / 300)
        events.append(Step(step, total, step / 14, loss, 2e-4, 0.5, 2400.0, elapsed_s=step * 0.5))
        if step % 50 == 0:
            events.append(Evaluated(step, loss * 1.1, True))
    events.append(Finished("finished", "done", total, total, 0.2, total, total * 0.5))
    with open(run_dir / "events.jsonl", "w", encoding="utf-8") as handle:
        for n, event in enumerate(events):
            handle.write(json.dumps({"time": t0 + n * 0.5, **event_to_dict(event)}) + "\n")
    (run_dir / "run.json").write_text(json.dumps({"backend": "hf", "base_model": "tiny"}))
    write_status(run_dir, JobStatus(run_id, "run", "finished", None, t0, t0 + total))
    return run_id


def start_training(workspace: Path) -> Path:
    """`workbench train` (detached); wait until the run has logged its first step."""
    out = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "-w", str(workspace), "train", *EPOCHS],
        capture_output=True,
        text=True,
        check=True,
    )
    run_dir = workspace / "runs" / out.stdout.strip().splitlines()[-1]
    deadline = time.time() + 120
    while not read_history(run_dir).steps:
        if time.time() > deadline:
            raise SystemExit(f"the run logged no step in 120 s: {observed_status(run_dir)}")
        time.sleep(0.2)
    return run_dir


class Presser:
    """Presses keys in the running app and times each one to its result painted."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def painted(self) -> None:
        done = asyncio.Event()
        self.app.screen.call_after_refresh(done.set)
        await done.wait()

    async def press(self, key: str, reached: Callable[[], bool]) -> float:
        started = time.perf_counter()
        self.app.simulate_key(key)
        while not reached():
            if time.perf_counter() - started > 10:
                raise SystemExit(f"key {key!r}: the screen did not get there in 10 s")
            await asyncio.sleep(0.0005)
        await self.painted()
        return (time.perf_counter() - started) * 1000


def run_shown(app: Any, run_id: str, steps: int | None) -> Callable[[], bool]:
    """The stats name `run_id` and the chart holds its loss curve (`steps` points, or a few
    hundred at most for the run that is training)."""

    def check() -> bool:
        from textual.widgets import Static

        from screens.widgets.line_chart import LineChart

        screen = app.screen
        if getattr(screen, "MODE", "") != "train":
            return False
        if run_id not in str(screen.query_one("#train-stats", Static).render()):
            return False
        series = screen.query_one(LineChart).series
        points = len(series[0].points) if series else 0
        return points == steps if steps is not None else 0 < points < 1000

    return check


def on_mode(app: Any, mode: str) -> Callable[[], bool]:
    return lambda: getattr(app.screen, "MODE", "") == mode


async def measure(app: Any, runs: list[tuple[str, int | None]], args: Any) -> dict[str, Any]:
    """`runs`: (id, steps) newest first, as the list shows them."""
    from screens.widgets.train_runs import RunsTable

    presser = Presser(app)
    await presser.press("2", on_mode(app, "train"))
    while not run_shown(app, *runs[0])():
        await asyncio.sleep(0.01)
    moves: list[float] = []
    row, direction = 0, 1
    for index in range(args.presses):
        if not 0 <= row + direction < len(runs):
            direction = -direction
        row += direction
        key = ("down", "up")[direction < 0] if index % 2 == 0 else ("j", "k")[direction < 0]
        if key in ("j", "k") and not _has_binding(app, key):
            key = ("down", "up")[direction < 0]
        moves.append(await presser.press(key, run_shown(app, *runs[row])))
        await asyncio.sleep(PAUSE_S)
    assert app.screen.query_one(RunsTable).cursor_row == row
    switches: list[float] = []
    for index in range(args.switches):
        other = "1342"[index % 3]
        mode = {"1": "data", "3": "chat", "4": "eval"}[other]
        switches.append(await presser.press(other, on_mode(app, mode)))
        await asyncio.sleep(PAUSE_S)
        switches.append(await presser.press("2", on_mode(app, "train")))
        await asyncio.sleep(PAUSE_S)
    return {"moves": moves, "switches": switches}


def _has_binding(app: Any, key: str) -> bool:
    return key in app.focused._bindings.key_to_bindings


def run_app(workspace: Path, runs: list[tuple[str, int | None]], args: Any) -> dict[str, Any]:
    from screens.app import make_app
    from workbench.workspace import open_workspace

    app = make_app(open_workspace(workspace), warm_up=True)  # as in a terminal session
    result: dict[str, Any] = {}

    async def pilot(_: Any) -> None:
        await asyncio.sleep(0.5)
        result.update(await measure(app, runs, args))
        app.exit()

    app.run(headless=True, auto_pilot=pilot, size=(120, 36))
    return result


def stats(values: list[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return statistics.median(ordered), p90, ordered[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=30)
    parser.add_argument("--switches", type=int, default=12)
    parser.add_argument("--label", default="", help="a note printed with the table")
    parser.add_argument("--no-write", action="store_true", help="print, do not write the doc")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wb-bench-trainscreen-") as tmp:
        workspace = prepare_workspace(Path(tmp))
        history = [(write_history_run(workspace / "runs", i), 3000 + 100 * i) for i in range(4)]
        run_dir = start_training(workspace)
        load_before = os.getloadavg()[0]
        result = run_app(workspace, [(run_dir.name, None), *reversed(history)], args)
        status = observed_status(run_dir)
        still = status is not None and status.active
        steps = read_history(run_dir).step
    print(json.dumps({**result, "still_training": still, "steps": steps}))
    report(result, args, still, load_before)


def report(result: dict[str, Any], args: Any, still: bool, load: float) -> None:
    rows = []
    for name, values in (
        ("move to another run (down/up, j/k)", result["moves"]),
        ("switch screen (1, 3, 4 and back with 2)", result["switches"]),
    ):
        med, p90, worst = stats(values)
        met = "yes" if p90 <= 100 else "NO"
        rows.append([name, len(values), f"{med:.0f} ms", f"{p90:.0f} ms", f"{worst:.0f} ms", met])
    body = (
        f"{args.label}\nThe app (headless, 120x36) on a copy of the sample workspace with "
        f"{HISTORY_RUNS} finished runs of 3,000-3,300 steps and the default run training "
        f"(tiny model, CPU) in the background: {'still training' if still else 'the run ended'} "
        f"when the last key was timed; 1-minute load average {load:.1f} at the start. Each key "
        f"is timed from the key event to its result painted, {PAUSE_S:.2f} s between keys.\n\n"
        + table(["key", "presses", "median", "p90", "worst", "p90 ≤ 100 ms"], rows)
    )
    print(body)
    if not args.no_write:
        write_section(
            "train-screen",
            "Train screen keys while a run trains (issue 4)",
            ".venv/bin/python bench/train_screen.py",
            body,
        )


if __name__ == "__main__":
    main()
