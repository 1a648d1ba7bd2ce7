"""What the Train screen looks like in its main states (`--snapshot-update` to accept changes)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "screens"))
from test_train_screen_support import (
    FAILED_ID,
    FINISHED_ID,
    SIZE,
    T0,
    finished_events,
    make_run,
    oom_events,
)

from screens.app import make_app
from workbench.accelerator import Accelerator
from workbench.workspace import Workspace


def keys(*pressed: str) -> Any:
    """Press the keys, then let the runs list and the follower settle."""

    async def run_before(pilot: Any) -> None:
        for key in pressed:
            await pilot.press(key)
            for _ in range(20):
                await pilot.pause(0.05)

    return run_before


def test_a_finished_run_with_a_warning(workspace: Workspace, snap_compare: Any) -> None:
    make_run(workspace, FINISHED_ID, finished_events())
    app = make_app(workspace, probe=Accelerator)
    assert snap_compare(app, run_before=keys("2"), terminal_size=SIZE)


def test_a_run_out_of_memory(workspace: Workspace, snap_compare: Any) -> None:
    make_run(workspace, FINISHED_ID, finished_events())
    make_run(workspace, FAILED_ID, oom_events(), state="failed", started_at=T0 + 50)
    app = make_app(workspace, probe=Accelerator)
    assert snap_compare(app, run_before=keys("2"), terminal_size=SIZE)
