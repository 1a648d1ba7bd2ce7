"""The runner's signal handling now that the trainer shares its main thread."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from workbench.jobs import JobStatus, read_status, write_status
from workbench.train.events import Finished, Started, Step
from workbench.train.runner import _handle_signals, _Writer


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[tuple[_Writer, threading.Event]]:
    """A writer on a running job, with the runner's signal handlers installed (then restored)."""
    write_status(tmp_path, JobStatus(id="r", kind="train", state="running"))
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    cancel = threading.Event()
    run_writer = _Writer(tmp_path, enabled=True)
    _handle_signals(cancel, run_writer)
    try:
        yield run_writer, cancel
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def state(run_writer: _Writer) -> str:
    status = read_status(run_writer.run_dir)
    assert status is not None
    return status.state


def test_sigterm_during_an_event_write_says_stopping_once_the_write_is_done(
    writer: tuple[_Writer, threading.Event],
) -> None:
    run_writer, cancel = writer
    with run_writer._writing():  # the signal lands while an event is being written
        signal.raise_signal(signal.SIGTERM)
        assert cancel.is_set() and state(run_writer) == "running"
    assert state(run_writer) == "stopping"
    step = Step(step=1, total_steps=4, epoch=0.25, loss=2.0, learning_rate=1e-4)
    run_writer.write(step)  # later steps keep the stopping state
    assert state(run_writer) == "stopping"
    line = (run_writer.run_dir / "events.jsonl").read_text().splitlines()[-1]
    assert json.loads(line)["type"] == "step"


def test_a_signal_after_the_last_event_leaves_the_final_state(
    writer: tuple[_Writer, threading.Event],
) -> None:
    run_writer, cancel = writer
    run_writer.write(Finished(state="finished", reason="done", step=4, total_steps=4))
    signal.raise_signal(signal.SIGTERM)
    signal.raise_signal(signal.SIGHUP)  # ignored: the process is still here to check
    assert cancel.is_set() and state(run_writer) == "finished"


def test_a_stop_before_training_begins_is_not_reported_as_running(
    writer: tuple[_Writer, threading.Event],
) -> None:
    """SIGTERM while the model loads: the `started` event that follows keeps `stopping`."""
    run_writer, cancel = writer
    signal.raise_signal(signal.SIGTERM)
    assert cancel.is_set() and state(run_writer) == "stopping"
    started = Started(
        backend="hf",
        base_model="demo",
        device="cpu",
        total_steps=4,
        train_examples=8,
        val_examples=2,
        train_tokens=100,
    )
    run_writer.write(started)
    assert state(run_writer) == "stopping"
    run_writer.write(Finished(state="stopped", reason="stopped", step=0, total_steps=4))
    assert state(run_writer) == "stopped"
