"""`workbench train`, `workbench runs ...` and `workbench sweep` from the shell."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from workbench.cliutil import OK, PROBLEMS, UsageError, command, json_option, resolve_workspace
from workbench.config import parse_assignment
from workbench.jobs import ACTIVE_STATES, EventTail, observed_status
from workbench.train.events import describe_event, event_from_dict
from workbench.workspace import Workspace

FOLLOW_POLL_S = 0.5


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
        cmd_train,
    )
    sub.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a [train] setting for this run (repeatable)",
    )
    sub.add_argument("--follow", action="store_true", help="then print its events as they come")
    json_option(sub)


def _add_sweep(commands: Any) -> None:
    sub = command(commands, "sweep", "queue a grid or list of run variants", cmd_sweep)
    sub.add_argument("file", type=Path, metavar="FILE", nargs="?", help="the sweep file (TOML)")
    sub.add_argument("--show", metavar="SWEEP_ID", help="rank a sweep's runs by best eval loss")
    sub.add_argument("--stop", metavar="SWEEP_ID", help="stop a sweep (its current run gracefully)")
    sub.add_argument(
        "--keep-best",
        action="store_true",
        help="keep the best variant, delete the others' weights (at the end, or now with --show)",
    )
    sub.add_argument("--follow", action="store_true", help="wait for the sweep, then rank it")
    json_option(sub)


def _add_runs(commands: Any) -> None:
    sub = command(
        commands, "runs", "list, show, follow, stop or resume training runs", cmd_runs_list
    )
    actions = sub.add_subparsers(title="actions", metavar="ACTION")
    json_option(command(actions, "list", "every run with its state", cmd_runs_list))
    handlers = {
        "show": cmd_runs_show,
        "follow": cmd_runs_follow,
        "stop": cmd_runs_stop,
        "resume": cmd_runs_resume,
    }
    for name, text in (
        ("show", "a run's config, data hash, best eval loss and files"),
        ("follow", "print a run's events as they happen (Ctrl+C stops following, not the run)"),
        ("stop", "stop a run gracefully (a checkpoint is saved)"),
        ("resume", "continue a stopped or killed run from its last checkpoint"),
    ):
        action = command(actions, name, text, handlers[name])
        action.add_argument("run_id", metavar="RUN_ID", help="an id, a unique part of one, or last")
        if name == "show":
            json_option(action)
        if name in {"stop", "resume"}:
            action.add_argument("--follow", action="store_true", help="then follow the run")


# --- train ---------------------------------------------------------------------------------


def cmd_train(args: argparse.Namespace) -> int:
    from workbench.train.runs import RunRefused, start_run

    workspace = resolve_workspace(args)
    overrides = _overrides(args.set)
    try:
        run_dir = start_run(workspace, overrides)
    except RunRefused as exc:
        return _refused("cannot start the run", exc.problems)
    if args.json:
        print(json.dumps({"id": run_dir.name, "dir": str(run_dir)}))
    else:
        print(run_dir.name)
        print(f"  follow: workbench runs follow {run_dir.name}", file=sys.stderr)
    return _follow(run_dir) if args.follow else OK


def _overrides(assignments: Sequence[str]) -> dict[str, Any]:
    try:
        return dict(parse_assignment(item) for item in assignments)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc


def _refused(what: str, problems: Sequence[str]) -> int:
    print(f"workbench: {what}:", file=sys.stderr)
    for line in problems:
        print(f"  {line}", file=sys.stderr)
    return PROBLEMS


# --- runs ----------------------------------------------------------------------------------


def cmd_runs_list(args: argparse.Namespace) -> int:
    from workbench.train.runs import list_runs

    workspace = resolve_workspace(args)
    runs = list_runs(workspace)
    if getattr(args, "json", False):
        print(json.dumps([_summary_json(run) for run in runs], indent=2))
        return OK
    if not runs:
        print("No runs yet. Start one with `workbench train`.")
        return OK
    for run in runs:
        started = time.strftime("%Y-%m-%d %H:%M", time.localtime(run.started_at))
        best = f"best {run.best_eval_loss:.4f}" if run.best_eval_loss is not None else "best -"
        print(
            f"{run.id}  {run.state:<9} {started}  step {run.step}/{run.total_steps}  {best}  "
            f"{run.message}"
        )
    return OK


def _summary_json(run: Any) -> dict[str, Any]:
    data = asdict(run)
    data["dir"] = str(run.dir)
    data["config"] = run.config.model_dump() if run.config else None
    return data


def _run_dir(args: argparse.Namespace) -> tuple[Workspace, Path]:
    from workbench.train.runs import RunRefused, find_run

    workspace = resolve_workspace(args)
    try:
        return workspace, find_run(workspace, args.run_id)
    except RunRefused as exc:
        raise UsageError(str(exc)) from exc


def cmd_runs_show(args: argparse.Namespace) -> int:
    from workbench.train.runs import load_run

    _, run_dir = _run_dir(args)
    run = load_run(run_dir)
    if args.json:
        print(json.dumps(_summary_json(run), indent=2))
        return OK
    best = (
        f"{run.best_eval_loss:.4f} at step {run.best_step}"
        if run.best_eval_loss is not None
        else "-"
    )
    lines = [
        f"run        {run.id}  ({run.state}) {run.message}",
        f"backend    {run.backend}",
        f"progress   step {run.step}/{run.total_steps}, {run.duration_s:.0f} s",
        f"best eval  {best}" + ("  -> best/" if run.has_best else ""),
        f"data       {run.train_examples} train / {run.val_examples} val, sha256 {run.data_hash}",
        f"files      {run.dir}",
    ]
    if run.sweep:
        lines.append(f"sweep      {run.sweep} ({run.variant})")
    if run.error:
        lines.append(f"error      {run.error}")
    lines += [f"warning    {text}" for text in run.warnings]
    if run.config is not None:
        lines += [
            f"  {key} = {json.dumps(value)}" for key, value in run.config.model_dump().items()
        ]
    print("\n".join(lines))
    return OK


def cmd_runs_follow(args: argparse.Namespace) -> int:
    _, run_dir = _run_dir(args)
    return _follow(run_dir)


def _follow(run_dir: Path) -> int:
    """Print the run's events (history first) until its process has ended."""
    tail = EventTail(run_dir)
    try:
        while True:
            status = observed_status(run_dir)
            for record in tail.read_new():
                if (event := event_from_dict(record)) is not None:
                    print(describe_event(event), flush=True)
            if status is None or status.state not in ACTIVE_STATES | {"queued"}:
                break
            time.sleep(FOLLOW_POLL_S)
    except KeyboardInterrupt:
        print("(stopped following; the run goes on)", file=sys.stderr)
        return OK
    final = observed_status(run_dir)
    return OK if final is not None and final.state in {"finished", "stopped"} else PROBLEMS


def cmd_runs_stop(args: argparse.Namespace) -> int:
    from workbench.train.runs import stop_run

    _, run_dir = _run_dir(args)
    if not stop_run(run_dir):
        status = observed_status(run_dir)
        state = status.state if status else "unreadable"
        print(f"workbench: run {run_dir.name} is not running ({state})", file=sys.stderr)
        return PROBLEMS
    print(f"stopping {run_dir.name}: a checkpoint is saved, then it ends (resume continues it)")
    return _follow(run_dir) if args.follow else OK


def cmd_runs_resume(args: argparse.Namespace) -> int:
    from workbench.train.runs import RunRefused, resume_run

    _, run_dir = _run_dir(args)
    try:
        resume_run(run_dir)
    except RunRefused as exc:
        return _refused(f"cannot resume {run_dir.name}", exc.problems)
    print(f"resuming {run_dir.name}")
    return _follow(run_dir) if args.follow else OK


# --- sweep ---------------------------------------------------------------------------------


def cmd_sweep(args: argparse.Namespace) -> int:
    from workbench.train.runs import RunRefused
    from workbench.train.sweep import find_sweep, keep_best, start_sweep, stop_sweep

    workspace = resolve_workspace(args)
    if args.stop:
        try:
            sweep_dir = find_sweep(workspace, args.stop)
        except RunRefused as exc:
            return _refused("sweep", exc.problems)
        if not stop_sweep(sweep_dir):
            print(f"workbench: sweep {sweep_dir.name} is not running", file=sys.stderr)
            return PROBLEMS
        print(f"stopping sweep {sweep_dir.name}: its current run saves a checkpoint and ends")
        return OK
    if args.show:
        try:
            sweep_dir = find_sweep(workspace, args.show)
            if args.keep_best:
                print(f"kept {keep_best(sweep_dir).id}; the other variants' weights are removed")
        except RunRefused as exc:
            return _refused("sweep", exc.problems)
        return _print_sweep(sweep_dir, args.json)
    if args.file is None:
        raise UsageError("give a sweep FILE to start, or --show / --stop SWEEP_ID")
    try:
        sweep_dir = start_sweep(workspace, args.file, keep_best=args.keep_best)
    except RunRefused as exc:
        return _refused("cannot start the sweep", exc.problems)
    print(sweep_dir.name)
    if not args.follow:
        print(f"  ranking: workbench sweep --show {sweep_dir.name}", file=sys.stderr)
        return OK
    _wait_for(sweep_dir)
    return _print_sweep(sweep_dir, args.json)


def _wait_for(job_dir: Path) -> None:
    tail = EventTail(job_dir)
    while True:
        for record in tail.read_new():
            if record.get("type") == "variant_started":
                print(f"variant {record['index'] + 1}: {record['name']} ({record['run_id']})")
        status = observed_status(job_dir)
        if status is None or status.state not in ACTIVE_STATES | {"queued"}:
            return
        time.sleep(FOLLOW_POLL_S)


def _print_sweep(sweep_dir: Path, as_json: bool) -> int:
    from workbench.train.sweep import read_sweep, sweep_summary

    ranked = sweep_summary(sweep_dir)
    if as_json:
        print(json.dumps([_summary_json(run) for run in ranked], indent=2))
        return OK
    status = observed_status(sweep_dir)
    kept = read_sweep(sweep_dir).get("kept")
    print(f"sweep {sweep_dir.name}: {status.state if status else '?'}")
    print(f"{'#':>2}  {'run':<20} {'state':<9} {'best eval':>9} {'step':>6}  variant")
    for rank, run in enumerate(ranked, start=1):
        best = f"{run.best_eval_loss:.4f}" if run.best_eval_loss is not None else "-"
        mark = "  (kept)" if run.id == kept else ""
        print(
            f"{rank:>2}  {run.id:<20} {run.state:<9} {best:>9} {run.best_step or '-':>6}  "
            f"{run.variant}{mark}"
        )
    return OK
