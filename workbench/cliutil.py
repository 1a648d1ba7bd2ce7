"""Pieces shared by the `workbench` subcommands: options, workspace lookup, exit codes."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench.workspace import Workspace, find_workspace, open_workspace

OK, PROBLEMS, USAGE = 0, 1, 2

Handler = Callable[[argparse.Namespace], int]


class UsageError(Exception):
    """The command line cannot be carried out as given (exit code 2)."""


def workspace_option(parser: argparse.ArgumentParser, default: Any = argparse.SUPPRESS) -> None:
    """`-w/--workspace DIR`, accepted before or after the command name."""
    parser.add_argument(
        "-w",
        "--workspace",
        metavar="DIR",
        type=Path,
        default=default,
        help="workspace directory (default: the one containing the current directory)",
    )


def command(commands: Any, name: str, help_text: str, handler: Handler) -> argparse.ArgumentParser:
    """Add subcommand `name` to the subparsers `commands`, with -w and its handler."""
    sub: argparse.ArgumentParser = commands.add_parser(name, help=help_text, description=help_text)
    workspace_option(sub)
    sub.set_defaults(handler=handler)
    return sub


def json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


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
