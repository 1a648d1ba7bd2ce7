"""`workbench train`, `workbench runs ...` and `workbench sweep` from the shell."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from workbench.cliutil import OK, command, json_option, not_built, resolve_workspace
from workbench.jobs import list_jobs


def register(commands: Any) -> None:
    """Add `train`, `runs` and `sweep` to the `workbench` command."""
    _add_train(commands)
    _add_runs(commands)
    _add_sweep(commands)


def _add_train(commands: Any) -> None:
    sub = command(
        commands,
        "train",
        "start a training run in the background; prints its id",
        not_built("train"),
    )
    sub.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a [train] setting for this run (repeatable)",
    )


def _add_sweep(commands: Any) -> None:
    sub = command(commands, "sweep", "queue a grid or list of run variants", not_built("sweep"))
    sub.add_argument("file", type=Path, metavar="FILE")


def _add_runs(commands: Any) -> None:
    sub = command(
        commands, "runs", "list, show, follow, stop or resume training runs", cmd_runs_list
    )
    actions = sub.add_subparsers(title="actions", metavar="ACTION")
    json_option(command(actions, "list", "every run with its state", cmd_runs_list))
    for name, text in (
        ("show", "a run's config, data hash, best eval loss and files"),
        ("follow", "print a run's events as they happen (Ctrl+C stops following, not the run)"),
        ("stop", "stop a run gracefully (a checkpoint is saved)"),
        ("resume", "continue a stopped or killed run from its last checkpoint"),
    ):
        command(actions, name, text, not_built(f"runs {name}")).add_argument(
            "run_id", metavar="RUN_ID"
        )


def cmd_runs_list(args: argparse.Namespace) -> int:
    workspace = resolve_workspace(args)
    runs = list_jobs(workspace.root, kinds=("run",))
    if getattr(args, "json", False):
        print(json.dumps([asdict(run) for run in runs], indent=2))
        return OK
    if not runs:
        print("No runs yet. Start one with `workbench train`.")
        return OK
    for run in runs:
        started = time.strftime("%Y-%m-%d %H:%M", time.localtime(run.started_at))
        print(f"{run.id}  {run.state:<9} {started}  {run.message}")
    return OK
