"""What the Train screen's new-run form looks like (`--snapshot-update` to accept changes).

The screenshot is taken only once nothing is left to change it: every worker the app, the
Train screen and the form started has finished, the form holds the focus, and the focused
field's cursor is steady. An earlier version waited a fixed second instead and raced with the
cursor's half-second blink and with start-up work on a slow first run."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.widgets import Input

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "screens"))
from support import SIZE, app_on, settle, wait_until

from screens.train import TrainScreen
from screens.train_form import TrainForm
from workbench.workspace import Workspace


def form_ready(pilot: Pilot[None]) -> bool:
    """The form is on top and its first field has the focus (its AUTO_FOCUS ran)."""
    focused = pilot.app.focused
    return isinstance(pilot.app.screen, TrainForm) and (
        focused is not None and focused.id == "train-form-base_model"
    )


async def open_the_form(pilot: Pilot[None]) -> None:
    """Train screen, then `n`; each step waits for the work it started."""
    await settle(pilot)
    await pilot.press("2")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, TrainScreen))
    await settle(pilot)
    await pilot.press("n")
    await wait_until(pilot, lambda: form_ready(pilot))
    await settle(pilot)
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False  # the cursor stays drawn, whenever the screenshot comes
    pilot.app.clear_notifications()
    await settle(pilot, rounds=1)


def test_the_new_run_form(workspace: Workspace, snap_compare: Any) -> None:
    app = app_on(workspace)
    assert snap_compare(app, run_before=open_the_form, terminal_size=SIZE)
