"""The detached training process: `python -m workbench.train.runner RUN_DIR [--resume]`.

It reads the run's saved settings and frozen data and trains in its main thread
(`workbench.train.engine.run_training`: torch.compile and CUDA state as in a plain script),
appending every event to `events.jsonl` as it comes and keeping `status.json` current. SIGTERM
(and SIGINT) set the cancel flag: the engine saves a checkpoint and the run ends `stopped`; the
handler runs between the trainer's bytecodes, so it only writes `stopping` to `status.json` when
no event is being written at that moment (else right after it). SIGHUP is ignored,
so a closing terminal stops nothing. With `--resume` it continues from the last complete
checkpoint (from the start when there is none), and the log gains a `resumed` event.
Under `accelerate launch` every rank trains; only rank 0 writes the run's files.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType

from workbench.config import atomic_write_text
from workbench.jobs import append_event, update_status
from workbench.train.backends import prepare_unsloth
from workbench.train.config import config_from_file
from workbench.train.data import DataError, read_frozen
from workbench.train.engine import TrainJob, run_training
from workbench.train.events import (
    ErrorKind,
    Finished,
    Resumed,
    RunError,
    Started,
    Step,
    TrainEvent,
    event_to_dict,
)
from workbench.train.runs import (
    CONFIG_FILE,
    ENVIRONMENT_FILE,
    last_checkpoint,
    read_history,
    read_run_record,
)

STATUS_EVERY_S = 2.0
PACKAGES = (
    "torch",
    "transformers",
    "peft",
    "trl",
    "datasets",
    "accelerate",
    "bitsandbytes",
    "unsloth",
    "unsloth_zoo",
    "workbench",
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run (or resume) the training run in RUN_DIR; exit 0 unless it failed."""
    parser = argparse.ArgumentParser(prog="python -m workbench.train.runner")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    run_dir: Path = args.run_dir.resolve()
    cancel = threading.Event()
    writer = _Writer(run_dir, enabled=int(os.environ.get("RANK", "0")) == 0)
    _handle_signals(cancel, writer)
    _quiet_progress_bars()
    try:
        job = _job(run_dir, args.resume, writer)
    except Exception as exc:  # a run that cannot even begin still ends with events
        kind: ErrorKind = "data" if isinstance(exc, DataError) else "config"
        writer.write(RunError(kind=kind, message=f"cannot start: {exc}"))
        writer.write(Finished(state="failed", reason=str(exc)[:300], step=0, total_steps=0))
        return 1
    writer.environment(job.backend)
    if job.backend == "unsloth":
        prepare_unsloth()  # in the main thread, before anything imports transformers
    final = run_training(job, cancel, writer.write)
    return 1 if final.state == "failed" else 0


def _job(run_dir: Path, resume: bool, writer: _Writer) -> TrainJob:
    """The attempt to make: saved settings and data, and on resume the checkpoint and history."""
    record = read_run_record(run_dir)
    job = TrainJob(
        config=config_from_file(run_dir / CONFIG_FILE),
        model=str(record["model"]),
        backend="unsloth" if record.get("backend") == "unsloth" else "hf",
        data=read_frozen(run_dir),
        output_dir=run_dir,
    )
    writer.status(state="running", message="starting")
    if not resume:
        return job
    checkpoint = last_checkpoint(run_dir)
    step = int(checkpoint.name.rsplit("-", 1)[-1]) if checkpoint else 0
    writer.write(Resumed(from_step=step, checkpoint=str(checkpoint or "")))
    return TrainJob(
        config=job.config,
        model=job.model,
        backend=job.backend,
        data=job.data,
        output_dir=run_dir,
        resume_from=checkpoint,
        history=read_history(run_dir),
    )


class _Writer:
    """Appends events and keeps status.json current (rank 0 only).

    The signal handler interrupts the main thread anywhere, this writer included: `stopping`
    waits while a write is under way, so that write cannot put back the state it read before.
    """

    def __init__(self, run_dir: Path, enabled: bool) -> None:
        self.run_dir = run_dir
        self.enabled = enabled
        self._last_status = 0.0
        self._busy = 0
        self._stop_pending = False
        self._stop_recorded = False
        self._ended = False

    def write(self, event: TrainEvent) -> None:
        if not self.enabled:
            return
        with self._writing():
            append_event(self.run_dir, event_to_dict(event))
            if isinstance(event, Finished):
                self._ended = True
                self.status(state=event.state, message=event.reason)
            elif isinstance(event, Started):
                self.status(state="running", message=f"step 0/{event.total_steps}")
            elif isinstance(event, Step) and self._status_due():
                message = f"step {event.step}/{event.total_steps} · loss {event.loss:.4f}"
                self.status(message=message)

    def _status_due(self) -> bool:
        return time.monotonic() - self._last_status >= STATUS_EVERY_S

    def status(self, **changes: object) -> None:
        if not self.enabled:
            return
        if self._stop_recorded and changes.get("state") == "running":
            del changes["state"]  # a run asked to stop stays `stopping` until it has ended
        with self._writing():
            self._last_status = time.monotonic()
            with contextlib.suppress(FileNotFoundError):
                update_status(self.run_dir, **changes)

    def stopping(self) -> None:
        """Record that a stop was asked for (from the signal handler; see the class)."""
        if self._busy:
            self._stop_pending = True
        elif not self._ended:
            self.status(state="stopping", message="stopping: saving a checkpoint")
            self._stop_recorded = True

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        self._busy += 1
        try:
            yield
        finally:
            self._busy -= 1
        if not self._busy and self._stop_pending:
            self._stop_pending = False
            self.stopping()

    def environment(self, backend: str) -> None:
        """Record library versions, Python and GPU next to the run (`environment.json`)."""
        if not self.enabled:
            return
        from workbench.accelerator import detect_accelerator

        accelerator = detect_accelerator()
        data = {
            "backend": backend,
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "packages": {name: _version(name) for name in PACKAGES},
            "gpus": [gpu.name for gpu in accelerator.gpus],
            "gpu_memory_mib": [gpu.total_mib for gpu in accelerator.gpus],
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        }
        atomic_write_text(self.run_dir / ENVIRONMENT_FILE, json.dumps(data, indent=2) + "\n")


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _handle_signals(cancel: threading.Event, writer: _Writer) -> None:
    """SIGTERM/SIGINT: stop gracefully; SIGHUP: ignored (the terminal went away, the run stays)."""

    def stop(signum: int, frame: FrameType | None) -> None:
        if not cancel.is_set():
            cancel.set()
            writer.stopping()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)


def _quiet_progress_bars() -> None:
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "warning")


if __name__ == "__main__":
    sys.exit(main())
