"""The detached export process: `python -m workbench.export.runner EXPORT_DIR`.

It reads `request.json`, iterates `workbench.export.job.export_run` and appends every event to
`events.jsonl`, keeping `status.json` current. SIGTERM (and SIGINT) set the cancel flag: the
running step is ended, partial files are removed and the export ends `stopped`. SIGHUP is
ignored, so a closing terminal stops nothing.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from workbench.export.events import (
    ExportError,
    ExportEvent,
    ExportFinished,
    ExportStarted,
    StageStarted,
    event_to_dict,
)
from workbench.export.job import ExportRequest, export_run
from workbench.jobs import append_event, update_status


def main(argv: Sequence[str] | None = None) -> int:
    """Run the export in EXPORT_DIR; exit 0 unless it failed."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m workbench.export.runner EXPORT_DIR", file=sys.stderr)
        return 2
    export_dir = Path(args[0]).resolve()
    cancel = threading.Event()
    _handle_signals(export_dir, cancel)
    try:
        request = ExportRequest.load(export_dir)
    except (OSError, ValueError, KeyError) as exc:
        message = f"cannot read {export_dir / 'request.json'}: {exc}"
        _write(export_dir, ExportError("input", message))
        _write(export_dir, ExportFinished("failed", message))
        return 1
    _status(export_dir, state="running", message="starting")
    final = "failed"
    for event in export_run(request, cancel):
        _write(export_dir, event)
        if isinstance(event, ExportFinished):
            final = event.state
    return 1 if final == "failed" else 0


def _write(export_dir: Path, event: ExportEvent) -> None:
    """Append the event; keep status.json's state and message in step with it."""
    append_event(export_dir, event_to_dict(event))
    if isinstance(event, ExportFinished):
        _status(export_dir, state=event.state, message=event.reason)
    elif isinstance(event, ExportStarted):
        _status(export_dir, message=f"{event.run_id} {event.checkpoint}: {', '.join(event.quants)}")
    elif isinstance(event, StageStarted):
        _status(export_dir, message=f"{event.index}/{event.total} {event.message}")


def _status(export_dir: Path, **changes: object) -> None:
    with contextlib.suppress(FileNotFoundError):
        update_status(export_dir, **changes)


def _handle_signals(export_dir: Path, cancel: threading.Event) -> None:
    """SIGTERM/SIGINT: stop; SIGHUP: ignored (the terminal went away, the export goes on)."""

    def stop(signum: int, frame: FrameType | None) -> None:
        if not cancel.is_set():
            cancel.set()
            _status(export_dir, state="stopping", message="stopping")

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)


if __name__ == "__main__":
    sys.exit(main())
