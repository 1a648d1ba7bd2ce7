"""A workspace is a directory; opening one validates it and creates what is missing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from workbench.workspace import (
    WorkspaceError,
    find_workspace,
    init_workspace,
    open_workspace,
)


def test_init_creates_the_layout(tmp_path: Path) -> None:
    workspace = init_workspace(tmp_path / "seo")
    assert workspace.name == "seo"
    for sub in ("runs", "exports", "evals"):
        assert (workspace.root / sub).is_dir()
    with sqlite3.connect(workspace.db_path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_init_refuses_an_existing_workspace_and_keeps_it(tmp_path: Path) -> None:
    workspace = init_workspace(tmp_path / "seo", name="first")
    before = workspace.config_path.read_text()
    with pytest.raises(WorkspaceError, match="already a workspace"):
        init_workspace(tmp_path / "seo", name="second")
    assert workspace.config_path.read_text() == before


def test_init_refuses_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(WorkspaceError, match="not a directory"):
        init_workspace(tmp_path / "file")


def test_open_a_plain_directory_suggests_init(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="workbench init"):
        open_workspace(tmp_path)


def test_open_reports_config_problems_with_the_key(tmp_path: Path) -> None:
    workspace = init_workspace(tmp_path / "ws")
    workspace.config_path.write_text("[train]\nlora_rank = 8\n")
    with pytest.raises(WorkspaceError, match=r"workbench.toml:2: unknown key 'train.lora_rank'"):
        open_workspace(workspace.root)


def test_find_workspace_walks_up(tmp_path: Path) -> None:
    workspace = init_workspace(tmp_path / "ws")
    nested = workspace.root / "runs" / "x"
    nested.mkdir(parents=True)
    assert find_workspace(nested) == workspace.root
    assert find_workspace(tmp_path) is None


def test_set_values_writes_back_and_returns_the_new_config(tmp_path: Path) -> None:
    workspace = init_workspace(tmp_path / "ws")
    changed = workspace.set_values({"train.epochs": 3})
    assert changed.config.train.epochs == 3
    assert open_workspace(workspace.root).config.train.epochs == 3


def test_sample_workspace_opens_and_uses_the_demo_model(sample_workspace: Path) -> None:
    workspace = open_workspace(sample_workspace)
    assert workspace.name == "seo-writer"
    assert workspace.config.train.base_model == "workbench:demo-tiny"
