"""Shared by the Data screen tests and snapshots: workspaces with examples, and reading what
the screen shows. Starting the app and waiting come from `support`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from support import SIZE, app_on, notifications, screen_of, seo_records, settle
from textual.geometry import Region
from textual.message import Message
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Static

from screens.app import WorkbenchApp
from screens.data import DataScreen
from screens.widgets.examples_table import ExamplesTable
from workbench.data.store import Example, ExampleStore
from workbench.workspace import Workspace

__all__ = ["SIZE", "notifications", "seo_records", "settle"]


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


@asynccontextmanager
async def data_app(
    workspace: Workspace, size: tuple[int, int] = SIZE, messages: list[Message] | None = None
) -> AsyncIterator[Pilot[None]]:
    """The app on `workspace` with its Data screen loaded (every worker done): where each Data
    test starts. `messages` collects every message the app handles."""
    hook = messages.append if messages is not None else None
    async with app_on(workspace).run_test(size=size, message_hook=hook) as pilot:
        await settle(pilot)
        yield pilot


def data_screen(app: WorkbenchApp) -> DataScreen:
    """The Data screen, also under a dialog."""
    return screen_of(app, DataScreen)


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
