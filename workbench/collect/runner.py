"""The detached process of a capture or synth job: `python -m workbench.collect.runner JOB_DIR`.

Runs the engine iterator, appends each event to `events.jsonl` and keeps `status.json` up to
date. SIGTERM (or SIGINT) sets the cancel flag: the job finishes what is in flight and ends
`stopped`.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

from workbench.collect.capture import capture
from workbench.collect.events import CollectEvent, JobError, JobFinished, event_to_dict
from workbench.collect.launch import LaunchError, read_job
from workbench.collect.settings import CaptureSettings
from workbench.collect.synth import spec_from_dict, synthesize
from workbench.data.store import ExampleStore
from workbench.jobs import (
    JobKind,
    JobStatus,
    append_event,
    read_status,
    update_status,
    write_status,
)
from workbench.workspace import WorkspaceError, open_workspace


def events_for(job: dict[str, Any], path: Path, cancel: threading.Event) -> Iterator[CollectEvent]:
    """The engine iterator the job description asks for."""
    workspace = open_workspace(Path(job["workspace"]))
    if job["kind"] == "capture":
        settings = CaptureSettings(**job["settings"])
        yield from capture(workspace.db_path, settings, cancel)
        return
    if job["kind"] == "synth":
        spec = spec_from_dict(job["settings"])
        with ExampleStore(workspace.db_path) as store:
            yield from synthesize(spec, store, path, cancel)
        return
    raise LaunchError(f"unknown job kind {job['kind']!r}")


def _mark_running(path: Path, kind: str) -> None:
    """Record this process as the job's, once the launcher has written `status.json`."""
    deadline = time.monotonic() + 5
    while read_status(path) is None and time.monotonic() < deadline:
        time.sleep(0.02)
    if read_status(path) is None:
        write_status(path, JobStatus(id=path.name, kind=cast(JobKind, kind), state="running"))
    update_status(path, state="running", pid=os.getpid(), message="")


def run(path: Path, cancel: threading.Event) -> int:
    """Run the job in `path` to its end; the exit status (0 unless it failed)."""
    try:
        job = read_job(path)
    except LaunchError as exc:
        print(f"workbench: {exc}", file=sys.stderr)
        return 1
    _mark_running(path, str(job.get("kind")))
    state, message = "failed", "ended without a result"
    try:
        for event in events_for(job, path, cancel):
            append_event(path, event_to_dict(event))
            if isinstance(event, JobFinished):
                state, message = event.state, event.reason
            elif isinstance(event, JobError):
                message = event.message
    except (LaunchError, WorkspaceError) as exc:
        message = str(exc)
        append_event(path, event_to_dict(JobError(message)))
    except Exception as exc:
        traceback.print_exc()
        message = f"crashed: {exc!r} (details in output.log)"
        append_event(path, event_to_dict(JobError(message)))
    update_status(path, state=state, message=message)
    return 0 if state != "failed" else 1


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m workbench.collect.runner JOB_DIR", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    path = Path(args[0]).resolve()
    cancel = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: cancel.set())
    return run(path, cancel)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
