"""`workbench export RUN_ID`: merge the adapter and write GGUF files.

The export runs detached (`exports/<id>/`); this command starts it and follows its progress
until it ends (Ctrl+C stops following, not the export). `--detach` only prints the id.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from workbench.cliutil import OK, PROBLEMS, command, json_option, resolve_workspace
from workbench.export.events import (
    ExportError,
    ExportEvent,
    ExportFinished,
    ExportStarted,
    FileWritten,
    StageProgress,
    StageStarted,
    event_from_dict,
)
from workbench.jobs import EventTail, observed_status

FOLLOW_POLL_S = 0.5


def register(commands: Any) -> None:
    """Add `export` to the `workbench` command."""
    sub = command(commands, "export", "merge a run's adapter and write GGUF files", cmd_export)
    sub.add_argument("run_id", metavar="RUN_ID", help="a run id (a unique prefix, or `last`)")
    sub.add_argument(
        "--checkpoint",
        default="best",
        metavar="best|last|N",
        help="the best adapter (default), the last checkpoint, or the checkpoint at step N",
    )
    sub.add_argument(
        "--quant",
        default="q8_0",
        metavar="f16,q8_0,q4_k_m",
        help="comma-separated quantizations (default q8_0)",
    )
    sub.add_argument("--detach", action="store_true", help="print the export id and return")
    json_option(sub)


def cmd_export(args: argparse.Namespace) -> int:
    from workbench.export.job import ExportRefused, plan_export, start_export
    from workbench.train.runs import RunRefused, find_run

    workspace = resolve_workspace(args)
    try:
        run_dir = find_run(workspace, args.run_id)
        request = plan_export(
            workspace.exports_dir, run_dir, args.checkpoint, args.quant.split(",")
        )
    except (RunRefused, ExportRefused) as exc:
        print(f"workbench: {exc}", file=sys.stderr)
        return PROBLEMS
    start_export(request)
    if args.detach:
        print(
            json.dumps({"export_id": request.export_dir.name})
            if args.json
            else request.export_dir.name
        )
        return OK
    print(f"export {request.export_dir.name} started ({request.export_dir})", file=sys.stderr)
    return follow(request.export_dir, as_json=args.json)


def follow(export_dir: Path, as_json: bool = False) -> int:
    """Print the export's events until it ends; exit 0 when it finished, else 1."""
    tail = EventTail(export_dir)
    try:
        while True:
            for record in tail.read_new():
                event = event_from_dict(record)
                if event is None:
                    continue
                print(json.dumps(record) if as_json else describe(event), flush=True)
                if isinstance(event, ExportFinished):
                    return OK if event.state == "finished" else PROBLEMS
            status = observed_status(export_dir)
            if status is not None and status.state == "lost":
                print(f"workbench: the export process has gone ({status.message})", file=sys.stderr)
                return PROBLEMS
            time.sleep(FOLLOW_POLL_S)
    except KeyboardInterrupt:
        print(f"\nstopped following; the export goes on in {export_dir}", file=sys.stderr)
        return OK


def describe(event: ExportEvent) -> str:
    """One line of progress for the terminal."""
    if isinstance(event, ExportStarted):
        step = f" (step {event.checkpoint_step})" if event.checkpoint_step is not None else ""
        return (
            f"exporting run {event.run_id}, {event.checkpoint} adapter{step}, on "
            f"{event.base_model}: {', '.join(event.quants)}"
        )
    if isinstance(event, StageStarted):
        return f"[{event.index}/{event.total}] {event.message}"
    if isinstance(event, StageProgress):
        return f"      {event.fraction:4.0%} {event.message}".rstrip()
    if isinstance(event, FileWritten):
        return f"      wrote {event.path} ({event.bytes / 1e6:.1f} MB, sha256 {event.sha256[:12]}…)"
    if isinstance(event, ExportError):
        return f"error ({event.kind}): {event.message}"
    return f"{event.state}: {event.reason} in {event.duration_s:.1f} s" + (
        f" · {event.manifest}" if event.manifest else ""
    )
