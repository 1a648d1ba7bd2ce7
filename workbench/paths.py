"""Where files go: XDG directories for the user's config and caches; everything else lives in
the workspace (see `workbench.workspace`)."""

from __future__ import annotations

import os
from pathlib import Path

APP_DIR = "workbench"


def _xdg(variable: str, fallback: str) -> Path:
    value = os.environ.get(variable, "")
    base = Path(value) if value and Path(value).is_absolute() else Path.home() / fallback
    return base / APP_DIR


def config_dir() -> Path:
    """The user's settings (`$XDG_CONFIG_HOME/workbench`)."""
    return _xdg("XDG_CONFIG_HOME", ".config")


def cache_dir() -> Path:
    """Rebuildable files (`$XDG_CACHE_HOME/workbench`): the demo model, judge caches."""
    return _xdg("XDG_CACHE_HOME", ".cache")


def state_dir() -> Path:
    """Logs of the app itself (`$XDG_STATE_HOME/workbench`)."""
    return _xdg("XDG_STATE_HOME", ".local/state")


def demo_model_dir() -> Path:
    """Where `workbench:demo-tiny` is built on first use."""
    return cache_dir() / "models" / "demo-tiny"
