"""A workspace is a directory: `workbench.toml`, `examples.db`, `runs/`, `exports/`, `evals/`."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from workbench.config import (
    ConfigError,
    WorkbenchConfig,
    default_config_text,
    load_config,
    update_config,
)

CONFIG_FILE = "workbench.toml"
DB_FILE = "examples.db"
SUBDIRS = ("runs", "exports", "evals")


class WorkspaceError(Exception):
    """A directory that is not (or cannot become) a usable workspace; the message says why."""


@dataclass(frozen=True)
class Workspace:
    """An opened workspace: its root directory and its validated config."""

    root: Path
    config: WorkbenchConfig

    @property
    def name(self) -> str:
        return self.config.workspace.name or self.root.name

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def db_path(self) -> Path:
        return self.root / DB_FILE

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def exports_dir(self) -> Path:
        return self.root / "exports"

    @property
    def evals_dir(self) -> Path:
        return self.root / "evals"

    def set_values(self, changes: dict[str, object]) -> Workspace:
        """Validate and save settings, keeping the file's comments; returns the new workspace."""
        config = update_config(self.config_path, changes)
        return Workspace(self.root, config)

    def reload(self) -> Workspace:
        return open_workspace(self.root)


def is_workspace(path: Path) -> bool:
    return (path / CONFIG_FILE).is_file()


def find_workspace(start: Path) -> Path | None:
    """The nearest directory at or above `start` holding a `workbench.toml`."""
    start = start.resolve()
    for candidate in (start, *start.parents):
        if is_workspace(candidate):
            return candidate
    return None


def init_workspace(root: Path, name: str = "") -> Workspace:
    """Create a workspace at `root` (new or empty directory, or one without a config)."""
    root = root.expanduser().resolve()
    if is_workspace(root):
        raise WorkspaceError(f"{root} is already a workspace ({CONFIG_FILE} exists)")
    if root.exists() and not root.is_dir():
        raise WorkspaceError(f"{root} exists and is not a directory")
    try:
        root.mkdir(parents=True, exist_ok=True)
        (root / CONFIG_FILE).write_text(default_config_text(name or root.name), encoding="utf-8")
    except OSError as exc:
        raise WorkspaceError(f"cannot create a workspace in {root}: {exc.strerror}") from exc
    return open_workspace(root)


def open_workspace(root: Path) -> Workspace:
    """Open the workspace at `root`: validate its config, create what is missing."""
    root = root.expanduser().resolve()
    if not root.is_dir():
        raise WorkspaceError(f"{root}: no such directory")
    if not is_workspace(root):
        raise WorkspaceError(
            f"{root} is not a workspace (no {CONFIG_FILE}); create one with `workbench init {root}`"
        )
    try:
        config = load_config(root / CONFIG_FILE)
    except ConfigError as exc:
        raise WorkspaceError(str(exc)) from exc
    try:
        for sub in SUBDIRS:
            (root / sub).mkdir(exist_ok=True)
        ensure_database(root / DB_FILE)
    except (OSError, sqlite3.Error) as exc:
        raise WorkspaceError(f"{root}: cannot prepare the workspace: {exc}") from exc
    return Workspace(root, config)


def ensure_database(path: Path) -> None:
    """Create the examples database if missing, in WAL mode (readers never block the writer)."""
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
    finally:
        connection.close()
