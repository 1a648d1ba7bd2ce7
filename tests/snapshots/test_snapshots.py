"""What each screen looks like (pytest-textual-snapshot; `--snapshot-update` to accept changes)."""

from __future__ import annotations

from typing import Any

import pytest

from screens.app import make_app
from workbench.accelerator import Accelerator, Gpu
from workbench.workspace import Workspace

SIZE = (120, 36)
H100 = Accelerator((Gpu("NVIDIA H100 80GB HBM3", 70_000, 81_559, 12),))


@pytest.mark.parametrize("key", ["1", "2", "3", "4"], ids=["data", "train", "chat", "eval"])
def test_screen(key: str, sample_workspace_opened: Workspace, snap_compare: Any) -> None:
    app = make_app(sample_workspace_opened, probe=Accelerator)
    assert snap_compare(app, press=[key, "_"], terminal_size=SIZE)


def test_header_on_a_gpu_machine(sample_workspace_opened: Workspace, snap_compare: Any) -> None:
    app = make_app(sample_workspace_opened, probe=lambda: H100)
    assert snap_compare(app, press=["_"], terminal_size=SIZE)


def test_help(sample_workspace_opened: Workspace, snap_compare: Any) -> None:
    app = make_app(sample_workspace_opened, probe=Accelerator)
    assert snap_compare(app, press=["2", "f1", "_"], terminal_size=SIZE)


def test_command_palette(sample_workspace_opened: Workspace, snap_compare: Any) -> None:
    app = make_app(sample_workspace_opened, probe=Accelerator)
    assert snap_compare(app, press=["ctrl+p", *"go", "_", "_"], terminal_size=SIZE)
