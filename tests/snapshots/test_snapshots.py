"""What each screen looks like (pytest-textual-snapshot; `--snapshot-update` to accept changes)."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "screens"))
from support import SIZE, settle

from screens.app import make_app
from workbench.accelerator import Accelerator, Gpu
from workbench.data.importer import import_pending
from workbench.workspace import Workspace

H100 = Accelerator((Gpu("NVIDIA H100 80GB HBM3", 70_000, 81_559, 12),))


@pytest.fixture
def sample(sample_workspace_opened: Workspace) -> Workspace:
    """The sample workspace after its first open imported `imports/`."""
    assert import_pending(sample_workspace_opened) is not None
    return sample_workspace_opened


def keys(*pressed: str) -> Callable[[Pilot[None]], Awaitable[None]]:
    """Let start-up work finish, press the keys, let what they started finish."""

    async def settled(pilot: Pilot[None]) -> None:
        await settle(pilot, rounds=4)
        pilot.app.clear_notifications()
        await pilot.pause()

    async def run(pilot: Pilot[None]) -> None:
        await settled(pilot)
        for key in pressed:
            await pilot.press(key)
        await settled(pilot)

    return run


@pytest.mark.parametrize("key", ["f2", "f3", "f4", "f5"], ids=["data", "train", "chat", "eval"])
def test_screen(key: str, sample: Workspace, snap_compare: Any) -> None:
    app = make_app(sample, probe=Accelerator)
    assert snap_compare(app, run_before=keys(key), terminal_size=SIZE)


def test_header_on_a_gpu_machine(sample: Workspace, snap_compare: Any) -> None:
    app = make_app(sample, probe=lambda: H100)
    assert snap_compare(app, run_before=keys(), terminal_size=SIZE)


def test_help(sample: Workspace, snap_compare: Any) -> None:
    app = make_app(sample, probe=Accelerator)
    assert snap_compare(app, run_before=keys("f3", "f1"), terminal_size=SIZE)


def test_command_palette(sample: Workspace, snap_compare: Any) -> None:
    app = make_app(sample, probe=Accelerator)
    assert snap_compare(app, run_before=keys("ctrl+p", *"go"), terminal_size=SIZE)
