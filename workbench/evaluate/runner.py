"""The detached eval process: `python -m workbench.evaluate.runner EVAL_DIR`.

It iterates `workbench.evaluate.engine.run_eval` and appends every event to `events.jsonl`,
keeping `status.json` current. SIGTERM (and SIGINT) set the cancel flag: the answer in progress
is finished, the eval ends `stopped` and can be resumed. SIGHUP is ignored, so a closing terminal
stops nothing. The same command resumes an eval: finished items are kept.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from workbench.evaluate.engine import run_eval
from workbench.evaluate.events import Finished, Progress, event_to_dict
from workbench.jobs import append_event, update_status

STATUS_EVERY_S = 1.0


def main(argv: Sequence[str] | None = None) -> int:
    """Run (or resume) the eval in EVAL_DIR; exit 0 unless it failed."""
    parser = argparse.ArgumentParser(prog="python -m workbench.evaluate.runner")
    parser.add_argument("eval_dir", type=Path)
    args = parser.parse_args(argv)
    eval_dir: Path = args.eval_dir.resolve()
    cancel = threading.Event()
    _handle_signals(cancel)
    update_status(eval_dir, state="running", message="starting")
    final: Finished | None = None
    last_status = 0.0
    for event in run_eval(eval_dir, cancel):
        append_event(eval_dir, event_to_dict(event))
        if isinstance(event, Progress) and time.monotonic() - last_status >= STATUS_EVERY_S:
            update_status(eval_dir, message=f"{event.done}/{event.total} done")
            last_status = time.monotonic()
        if isinstance(event, Finished):
            final = event
            update_status(eval_dir, state=event.state, message=event.reason)
    return 1 if final is None or final.state == "failed" else 0


def _handle_signals(cancel: threading.Event) -> None:
    """SIGTERM/SIGINT: stop gracefully; SIGHUP: ignored (the job outlives its terminal)."""

    def stop(signum: int, frame: FrameType | None) -> None:
        cancel.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)


if __name__ == "__main__":
    sys.exit(main())
