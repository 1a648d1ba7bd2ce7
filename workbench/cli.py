"""The `workbench` command: the TUI by default, and a headless subcommand for every job.

Exit codes: 0 ok, 1 problems found (or the job failed), 2 usage error.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from workbench import __version__
from workbench.chat import cli as chat_cli
from workbench.cliutil import (
    OK,
    PROBLEMS,
    USAGE,
    Handler,
    UsageError,
    command,
    json_option,
    resolve_workspace,
    workspace_option,
)
from workbench.collect import cli as collect_cli
from workbench.config import ConfigError, iter_fields, parse_assignment
from workbench.data import cli as data_cli
from workbench.evaluate import cli as eval_cli
from workbench.export import cli as export_cli
from workbench.train import cli as train_cli
from workbench.workspace import (
    WorkspaceError,
    init_workspace,
)


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
    workspace_option(parser, default=None)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_init(commands)
    _add_demo_model(commands)
    _add_config(commands)
    data_cli.register(commands)
    train_cli.register(commands)
    export_cli.register(commands)
    chat_cli.register(commands)
    eval_cli.register(commands)
    collect_cli.register(commands)
    _add_tui(commands)
    return parser


# --- the app -------------------------------------------------------------------------------


def _add_tui(commands: Any) -> None:
    command(commands, "tui", "open the app (the default when no command is given)", run_tui)


def run_tui(args: argparse.Namespace) -> int:
    """Open the Textual app. The UI package is loaded here, at run time, so that the engine
    never imports it (the one place the CLI reaches into `screens`)."""
    workspace = resolve_workspace(args)
    app_module = importlib.import_module("screens.app")
    app_module.make_app(workspace).run()
    return OK


# --- init, demo-model, config --------------------------------------------------------------


def _add_init(commands: Any) -> None:
    sub = command(commands, "init", "create a workspace (workbench.toml with defaults)", cmd_init)
    sub.add_argument("dir", type=Path, metavar="DIR", help="directory to create or use")
    sub.add_argument("--name", default="", help="shown in the header (default: DIR's name)")


def cmd_init(args: argparse.Namespace) -> int:
    workspace = init_workspace(args.dir, name=args.name)
    print(f"Created workspace '{workspace.name}' in {workspace.root}")
    print(f"  settings: {workspace.config_path} (every key explained in its comments)")
    print(f"  open it:  workbench -w {args.dir}")
    return OK


def _add_demo_model(commands: Any) -> None:
    sub = command(
        commands,
        "demo-model",
        "build the tiny offline base model (Llama architecture, a few MB, random weights)",
        cmd_demo_model,
    )
    sub.add_argument("out_dir", type=Path, metavar="OUT_DIR", help="where to write the model")
    sub.add_argument("--seed", type=int, default=0, help="weights seed (default 0)")
    json_option(sub)


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
    sub = command(commands, "config", "check, show or change workbench.toml", cmd_config_check)
    actions = sub.add_subparsers(title="actions", metavar="ACTION")
    command(actions, "check", "validate workbench.toml (exit 1 on problems)", cmd_config_check)
    show = command(actions, "show", "print every setting with its value", cmd_config_show)
    json_option(show)
    set_ = command(actions, "set", "set KEY=VALUE (comments in the file are kept)", cmd_config_set)
    set_.add_argument("assignments", nargs="+", metavar="KEY=VALUE")
    command(actions, "keys", "list every setting with its explanation", cmd_config_keys)


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


# --- commands that later versions fill in ----------------------------------------------------


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
