"""What every screen's Pilot tests and snapshots share: the terminal size, the sample pairs, the
app on a workspace, waiting for its work to finish or for a state, and what it told the user.
The per-screen modules (data_support, eval_support, chat_support, test_train_screen_support)
add only what is particular to their screen."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, TypeVar

from textual.app import App
from textual.pilot import Pilot
from textual.screen import Screen

from screens.app import WorkbenchApp, make_app
from workbench.accelerator import Accelerator
from workbench.workspace import Workspace

SIZE = (120, 36)
SEO_PAIRS = Path(__file__).resolve().parents[2] / "sample_data" / "imports" / "seo_pairs.jsonl"

ScreenT = TypeVar("ScreenT", bound=Screen[Any])


def seo_records() -> list[dict[str, Any]]:
    """The 121 sample pairs (system, user, assistant), as the sample workspace imports them."""
    return [json.loads(line) for line in SEO_PAIRS.read_text(encoding="utf-8").splitlines()]


def app_on(workspace: Workspace) -> WorkbenchApp:
    """The app as the CLI builds it, with no GPU found: the header is the same on any machine."""
    return make_app(workspace, probe=Accelerator)


async def settle(
    pilot: Pilot[None], rounds: int = 6, endless: Collection[str] = (), tick: float = 0.0
) -> None:
    """Let every worker finish and every message that follows be handled, `rounds` times (a
    handler may start more work). Workers of the `endless` groups, followers that poll until
    their screen goes, are not waited for; `tick` first lets timers that are due fire."""
    for _ in range(rounds):
        if tick:
            await pilot.pause(tick)
        workers = [worker for worker in pilot.app.workers if worker.group not in endless]
        if workers:  # an empty list would mean "all of them" to wait_for_complete
            await pilot.app.workers.wait_for_complete(workers)
        await pilot.pause()


async def wait_until(
    pilot: Pilot[None],
    condition: Callable[[], object],
    timeout: float = 90.0,
    what: str = "",
    every: float = 0.02,
) -> None:
    """Pause until `condition()` holds (the app keeps running meanwhile). The timeout only
    bounds a hang; no test asserts how fast the screen gets there."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await pilot.pause(every)


def screen_of(app: App[Any], kind: type[ScreenT]) -> ScreenT:
    """The screen of `kind` in the current stack, also while a dialog covers it."""
    return next(screen for screen in app.screen_stack if isinstance(screen, kind))


def notifications(app: App[Any]) -> list[str]:
    """What the app has notified so far, oldest first."""
    return [str(notification.message) for notification in app._notifications]
