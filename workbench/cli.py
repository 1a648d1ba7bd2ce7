"""The `workbench` command: the TUI by default, and a headless subcommand for every job.

Exit codes: 0 ok, 1 problems found (or the job failed), 2 usage error.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from workbench import __version__
from workbench.config import ConfigError, iter_fields, parse_assignment
from workbench.jobs import list_jobs
from workbench.workspace import (
    Workspace,
    WorkspaceError,
    find_workspace,
    init_workspace,
    open_workspace,
)

OK, PROBLEMS, USAGE = 0, 1, 2

Handler = Callable[[argparse.Namespace], int]


class UsageError(Exception):
    """The command line cannot be carried out as given (exit code 2)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `workbench` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = getattr(args, "handler", run_tui)
    try:
        return handler(args)
    except UsageError as exc:
        print(f"workbench: {exc}", file=sys.stderr)
        return USAGE
    except (WorkspaceError, ConfigError) as exc:
        print(f"workbench: {exc}", file=sys.stderr)
        return PROBLEMS
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workbench",
        description="Fine-tune a small open LLM on your own examples: curate the data, train "
        "QLoRA, export GGUF, chat with it, and judge it against the old pipeline.",
        epilog="With no command, opens the app on the workspace in the current directory "
        "(or -w DIR). Exit codes: 0 ok, 1 problems found, 2 usage error.",
    )
    parser.add_argument("--version", action="version", version=f"workbench {__version__}")
    _workspace_option(parser, default=None)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_init(commands)
    _add_demo_model(commands)
    _add_config(commands)
    _add_data(commands)
    _add_train(commands)
    _add_runs(commands)
    _add_sweep(commands)
    _add_export(commands)
    _add_chat(commands)
    _add_eval(commands)
    _add_tui(commands)
    return parser


def _workspace_option(parser: argparse.ArgumentParser, default: Any = argparse.SUPPRESS) -> None:
    parser.add_argument(
        "-w",
        "--workspace",
        metavar="DIR",
        type=Path,
        default=default,
        help="workspace directory (default: the one containing the current directory)",
    )


def _command(commands: Any, name: str, help_text: str, handler: Handler) -> argparse.ArgumentParser:
    sub: argparse.ArgumentParser = commands.add_parser(name, help=help_text, description=help_text)
    _workspace_option(sub)
    sub.set_defaults(handler=handler)
    return sub


def _json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


# --- workspace resolution ------------------------------------------------------------------


def resolve_workspace(args: argparse.Namespace) -> Workspace:
    """The workspace named by -w, else the one containing the current directory."""
    given: Path | None = getattr(args, "workspace", None)
    if given is not None:
        return open_workspace(given)
    found = find_workspace(Path.cwd())
    if found is None:
        raise UsageError(
            "no workspace here: pass -w DIR, create one with `workbench init DIR`, "
            "or try the sample with `workbench -w sample_data`"
        )
    return open_workspace(found)


# --- the app -------------------------------------------------------------------------------


def _add_tui(commands: Any) -> None:
    _command(commands, "tui", "open the app (the default when no command is given)", run_tui)


def run_tui(args: argparse.Namespace) -> int:
    """Open the Textual app. The UI package is loaded here, at run time, so that the engine
    never imports it (the one place the CLI reaches into `screens`)."""
    workspace = resolve_workspace(args)
    app_module = importlib.import_module("screens.app")
    app_module.make_app(workspace).run()
    return OK


# --- init, demo-model, config --------------------------------------------------------------


def _add_init(commands: Any) -> None:
    sub = _command(commands, "init", "create a workspace (workbench.toml with defaults)", cmd_init)
    sub.add_argument("dir", type=Path, metavar="DIR", help="directory to create or use")
    sub.add_argument("--name", default="", help="shown in the header (default: DIR's name)")


def cmd_init(args: argparse.Namespace) -> int:
    workspace = init_workspace(args.dir, name=args.name)
    print(f"Created workspace '{workspace.name}' in {workspace.root}")
    print(f"  settings: {workspace.config_path} (every key explained in its comments)")
    print(f"  open it:  workbench -w {args.dir}")
    return OK


def _add_demo_model(commands: Any) -> None:
    sub = _command(
        commands,
        "demo-model",
        "build the tiny offline base model (Llama architecture, a few MB, random weights)",
        cmd_demo_model,
    )
    sub.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="where to write the model")
    sub.add_argument("--seed", type=int, default=0, help="weights seed (default 0)")
    _json_option(sub)


def cmd_demo_model(args: argparse.Namespace) -> int:
    from workbench.demo_model import build_demo_model

    started = time.perf_counter()
    out = build_demo_model(args.out_dir, seed=args.seed)
    size = sum(path.stat().st_size for path in out.rglob("*") if path.is_file())
    result = {"path": str(out), "bytes": size, "seconds": round(time.perf_counter() - started, 2)}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"Built the demo model in {out} ({size / 1e6:.1f} MB, {result['seconds']} s)")
    return OK


def _add_config(commands: Any) -> None:
    sub = _command(commands, "config", "check, show or change workbench.toml", cmd_config_check)
    actions = sub.add_subparsers(title="actions", metavar="ACTION")
    _command(actions, "check", "validate workbench.toml (exit 1 on problems)", cmd_config_check)
    show = _command(actions, "show", "print every setting with its value", cmd_config_show)
    _json_option(show)
    set_ = _command(actions, "set", "set KEY=VALUE (comments in the file are kept)", cmd_config_set)
    set_.add_argument("assignments", nargs="+", metavar="KEY=VALUE")
    _command(actions, "keys", "list every setting with its explanation", cmd_config_keys)


def cmd_config_check(args: argparse.Namespace) -> int:
    workspace = resolve_workspace(args)
    print(f"{workspace.config_path}: ok")
    return OK


def cmd_config_show(args: argparse.Namespace) -> int:
    workspace = resolve_workspace(args)
    data = workspace.config.model_dump()
    if args.json:
        print(json.dumps(data, indent=2))
        return OK
    for section, values in data.items():
        for key, value in values.items():
            print(f"{section}.{key} = {json.dumps(value)}")
    return OK


def cmd_config_set(args: argparse.Namespace) -> int:
    workspace = resolve_workspace(args)
    try:
        changes = dict(parse_assignment(item) for item in args.assignments)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    workspace.set_values(changes)
    for key, value in changes.items():
        print(f"{key} = {json.dumps(value)}")
    return OK


def cmd_config_keys(args: argparse.Namespace) -> int:
    for key, description in iter_fields():
        print(f"{key}\n    {' '.join(description.split())}")
    return OK


# --- runs ----------------------------------------------------------------------------------


def _add_runs(commands: Any) -> None:
    sub = _command(
        commands, "runs", "list, show, follow, stop or resume training runs", cmd_runs_list
    )
    actions = sub.add_subparsers(title="actions", metavar="ACTION")
    _json_option(_command(actions, "list", "every run with its state", cmd_runs_list))
    for name, text in (
        ("show", "a run's config, data hash, best eval loss and files"),
        ("follow", "print a run's events as they happen (Ctrl+C stops following, not the run)"),
        ("stop", "stop a run gracefully (a checkpoint is saved)"),
        ("resume", "continue a stopped or killed run from its last checkpoint"),
    ):
        _command(actions, name, text, _not_built(f"runs {name}")).add_argument(
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


# --- commands that later versions fill in ----------------------------------------------------


def _not_built(name: str) -> Handler:
    def handler(args: argparse.Namespace) -> int:
        raise UsageError(f"`workbench {name}` is not available in this version yet")

    return handler


def _add_data(commands: Any) -> None:
    sub = _command(
        commands,
        "data",
        "import, validate, export, describe and split examples",
        _not_built("data"),
    )
    actions = sub.add_subparsers(title="actions", metavar="ACTION")
    imp = _command(
        actions,
        "import",
        "import JSONL/CSV/Parquet files into the workspace",
        _not_built("data import"),
    )
    imp.add_argument("files", nargs="+", type=Path, metavar="FILE")
    imp.add_argument(
        "--format",
        default="auto",
        choices=["auto", "openai", "sharegpt", "alpaca", "prompt-completion", "csv", "parquet"],
    )
    val = _command(
        actions,
        "validate",
        "report every problem as FILE:LINE: reason",
        _not_built("data validate"),
    )
    val.add_argument("files", nargs="*", type=Path, metavar="FILE")
    _json_option(val)
    exp = _command(actions, "export", "write examples to a file", _not_built("data export"))
    exp.add_argument("--out", type=Path, required=True, metavar="PATH")
    exp.add_argument(
        "--format", default="openai", choices=["openai", "sharegpt", "alpaca", "parquet"]
    )
    exp.add_argument("--split", default="all", choices=["all", "train", "val", "test"])
    _json_option(
        _command(
            actions,
            "stats",
            "counts, token lengths, duplicates, problems",
            _not_built("data stats"),
        )
    )
    split = _command(
        actions, "split", "assign train/val/test deterministically", _not_built("data split")
    )
    split.add_argument("--val", metavar="N|FRACTION")
    split.add_argument("--test", metavar="N|FRACTION")
    split.add_argument("--seed", type=int, default=0)
    split.add_argument("--by-tag", action="store_true")


def _add_train(commands: Any) -> None:
    sub = _command(
        commands,
        "train",
        "start a training run in the background; prints its id",
        _not_built("train"),
    )
    sub.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a [train] setting for this run (repeatable)",
    )


def _add_sweep(commands: Any) -> None:
    sub = _command(commands, "sweep", "queue a grid or list of run variants", _not_built("sweep"))
    sub.add_argument("file", type=Path, metavar="FILE")


def _add_export(commands: Any) -> None:
    sub = _command(
        commands, "export", "merge a run's adapter and write GGUF files", _not_built("export")
    )
    sub.add_argument("run_id", metavar="RUN_ID")
    sub.add_argument("--checkpoint", default="best", metavar="best|last|N")
    sub.add_argument("--quant", default="q8_0", metavar="f16,q8_0,q4_k_m")


def _add_chat(commands: Any) -> None:
    sub = _command(commands, "chat", "chat with a GGUF model in this terminal", _not_built("chat"))
    sub.add_argument("gguf", type=Path, metavar="GGUF")


def _add_eval(commands: Any) -> None:
    sub = _command(
        commands, "eval", "judge the fine-tuned model against the old pipeline", _not_built("eval")
    )
    actions = sub.add_subparsers(title="actions", metavar="ACTION")
    _command(actions, "run", "start an evaluation in the background", _not_built("eval run"))
    report = _command(
        actions,
        "report",
        "win/tie/loss, cost and latency of an evaluation",
        _not_built("eval report"),
    )
    report.add_argument("eval_id", metavar="ID")
    _json_option(report)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
