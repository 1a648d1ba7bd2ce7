"""Helpers for the Train screen tests and snapshots (no tests here): runs written as the
engine writes them (status.json + events.jsonl), waiting, and reading what the screen shows."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from support import SIZE, app_on, wait_until
from textual.pilot import Pilot
from textual.widgets import RichLog, Static

from screens.widgets.train_live import RunLive
from workbench.jobs import JobState, JobStatus, write_status
from workbench.train.events import (
    Evaluated,
    Finished,
    RunError,
    RunWarning,
    Started,
    Step,
    TrainEvent,
    event_to_dict,
)
from workbench.workspace import Workspace

__all__ = ["SIZE", "app_on", "wait_until"]

T0 = 1_772_000_000.0
FINISHED_ID, FAILED_ID, LIVE_ID = (
    "20260225-090000-aaaa",
    "20260225-100000-bbbb",
    "20260225-110000-cccc",
)


def started(total: int) -> Started:
    return Started("hf", "workbench:demo-tiny", "cpu", total, 40, 8, 12_000)


def steps(first: int, last: int, total: int, loss0: float = 2.0) -> list[Step]:
    return [
        Step(n, total, n / 10, loss0 / (1 + n / 5), 2e-4, 0.5, 2400.0, 3.2, elapsed_s=n * 2.0)
        for n in range(first, last + 1)
    ]


def finished_events() -> list[TrainEvent]:
    """30 steps, eval loss falling then rising, an overfitting warning, finished."""
    evals = [Evaluated(10, 1.1, True), Evaluated(20, 0.9, True), Evaluated(30, 1.05, False)]
    warning = RunWarning("overfitting", "eval loss rose while train loss fell", 30)
    done = Finished("finished", "reached max_steps", 30, 30, 0.9, 20, 60.0)
    return [started(30), *steps(1, 30, 30), *evals, warning, done]


def oom_events() -> list[TrainEvent]:
    error = RunError("out_of_memory", "CUDA out of memory at step 3", 3)
    return [started(50), *steps(1, 3, 50), error, Finished("failed", "out of memory", 3, 50)]


def write_events(run_dir: Path, events: Sequence[TrainEvent], t0: float = T0) -> None:
    with open(run_dir / "events.jsonl", "a", encoding="utf-8") as handle:
        for index, event in enumerate(events):
            handle.write(json.dumps({"time": t0 + index, **event_to_dict(event)}) + "\n")


def make_run(
    workspace: Workspace,
    run_id: str,
    events: Sequence[TrainEvent],
    state: JobState = "finished",
    started_at: float = T0,
    variant: str = "",
) -> Path:
    """A run directory as the engine leaves it."""
    run_dir = workspace.runs_dir / run_id
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(workspace.config.train.model_dump_json())
    record = {"backend": "hf", "base_model": "workbench:demo-tiny", "variant": variant}
    (run_dir / "run.json").write_text(json.dumps(record))
    pid = os.getpid() if state == "running" else None
    write_status(run_dir, JobStatus(run_id, "run", state, pid, started_at, started_at))
    write_events(run_dir, events)
    return run_dir


def shown(pilot: Pilot[None], selector: str) -> str:
    return str(pilot.app.screen.query_one(selector, Static).render())


def live(pilot: Pilot[None]) -> RunLive:
    return pilot.app.screen.query_one(RunLive)


def log_text(pilot: Pilot[None]) -> str:
    return "\n".join(strip.text for strip in pilot.app.screen.query_one(RichLog).lines)
