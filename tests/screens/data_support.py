"""Shared by the Data screen tests and snapshots: workspaces with examples, and waiting."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from textual.geometry import Region
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Static

from screens.app import WorkbenchApp
from screens.data import DataScreen
from screens.widgets.examples_table import ExamplesTable
from workbench.data.store import Example, ExampleStore
from workbench.workspace import Workspace

SIZE = (120, 36)
SEO_PAIRS = Path(__file__).resolve().parents[2] / "sample_data" / "imports" / "seo_pairs.jsonl"


def seo_records() -> list[dict[str, Any]]:
    """The 121 sample pairs (system, user, assistant), as the sample workspace imports them."""
    return [json.loads(line) for line in SEO_PAIRS.read_text(encoding="utf-8").splitlines()]


def pair(topic: str, answer: str) -> dict[str, Any]:
    """A small user/assistant example."""
    return {
        "messages": [
            {"role": "user", "content": f"Topic: {topic}\nKeywords: {topic.lower()}"},
            {"role": "assistant", "content": answer},
        ]
    }


def fill(workspace: Workspace, records: Iterable[dict[str, Any]], source: str = "") -> list[int]:
    """Add examples to the workspace's database (one action, as an import would)."""
    with ExampleStore(workspace.db_path) as store:
        return store.add_examples(records, source=source)


def stored(workspace: Workspace, example_id: int) -> Example:
    """An example as the database holds it now (read with a connection of its own)."""
    with ExampleStore(workspace.db_path) as store:
        return store.get(example_id)


async def settle(pilot: Pilot[None], rounds: int = 6) -> None:
    """Let every worker finish and every message that follows be handled."""
    for _ in range(rounds):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


def data_screen(app: WorkbenchApp) -> DataScreen:
    """The Data screen, also under a dialog."""
    return next(screen for screen in app.screen_stack if isinstance(screen, DataScreen))


def shown_ids(app: WorkbenchApp) -> list[int]:
    """Ids of the rows visible in the table."""
    return [row.id for row in data_screen(app).query_one(ExamplesTable).rows_on_screen()]


def query_text(app: WorkbenchApp) -> str:
    """The line above the table: counts, search and filters."""
    return widget_text(data_screen(app).query_one("#data-query", Static)).strip()


def widget_text(widget: Widget) -> str:
    """What a widget shows on screen, line by line (all of it, scrolled or not)."""
    region = Region(0, 0, widget.size.width, widget.virtual_size.height or widget.size.height)
    return "\n".join(strip.text.rstrip() for strip in widget.render_lines(region))


def detail_text(app: WorkbenchApp) -> str:
    """The detail pane's text."""
    return widget_text(data_screen(app).query_one("#conversation-body", Static))


def notifications(app: WorkbenchApp) -> list[str]:
    return [notification.message for notification in app._notifications]
