"""`run_training` trains in the caller's thread (the runner's main thread) on the tiny model."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from test_train_engine import job, settings

from workbench.train.engine import run_training
from workbench.train.events import Finished, Step, TrainEvent
from workbench.train.runs import last_checkpoint

pytestmark = pytest.mark.slow


def test_training_runs_in_the_calling_thread_and_stops_when_its_emit_cancels(
    demo_model_dir: Path, tmp_path: Path
) -> None:
    cancel = threading.Event()
    events: list[TrainEvent] = []
    threads: set[int] = set()

    def emit(event: TrainEvent) -> None:
        events.append(event)
        threads.add(threading.get_ident())
        if isinstance(event, Step) and event.step == 2:
            cancel.set()

    final = run_training(job(demo_model_dir, tmp_path, settings(max_steps=8)), cancel, emit)

    assert threads == {threading.get_ident()}
    assert final is events[-1] and isinstance(final, Finished)
    # The flag is seen at the end of the step after the one that set it, every time.
    assert (final.state, final.step) == ("stopped", 3)
    checkpoint = last_checkpoint(tmp_path)
    assert checkpoint is not None and checkpoint.name == "checkpoint-3"
    steps = [event for event in events if isinstance(event, Step)]
    assert [step.gpu_util for step in steps] == [None, None, None]  # the CPU: nothing to sample


def test_a_failure_in_the_calling_thread_ends_with_events_not_an_exception(
    tmp_path: Path,
) -> None:
    events: list[TrainEvent] = []
    broken = job(tmp_path / "no-such-model", tmp_path, settings())
    final = run_training(broken, threading.Event(), events.append)
    assert isinstance(final, Finished) and final.state == "failed"
    assert [event.type for event in events[-2:]] == ["error", "finished"]
