"""The Data screen's quarantine: lines an import refused, listed with why, fixed and re-imported."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from data_support import data_app, fill, notifications, pair, query_text, settle, shown_ids
from textual.pilot import Pilot
from textual.widgets import Button, OptionList, TextArea

from screens.quarantine import QuarantineScreen
from workbench.data.store import ExampleStore
from workbench.workspace import Workspace

BROKEN = '{"messages": [{"role": "user", "content": "Topic: kayaks"}, {"role": "assistant"'
FIXED = json.dumps(
    {
        "messages": [
            {"role": "user", "content": "Topic: kayaks"},
            {"role": "assistant", "content": "Pick a sit-on-top kayak."},
        ]
    }
)
SHAREGPT = json.dumps(
    {"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]}
)


@pytest.fixture
def quarantined(workspace: Workspace) -> Workspace:
    """Two examples, and two lines of pairs.jsonl an import refused (lines 3 and 7)."""
    fill(workspace, [pair("bread", "Knead it."), pair("tomatoes", "Water them.")])
    with ExampleStore(workspace.db_path) as store:
        store.quarantine("pairs.jsonl", 3, BROKEN, ["not valid JSON: unterminated object"])
        store.quarantine("pairs.jsonl", 7, "[1, 2]", ["not a JSON object (a list)"])
    return workspace


@asynccontextmanager
async def quarantine_open(workspace: Workspace) -> AsyncIterator[Pilot[None]]:
    """The app on `workspace`, the quarantine opened from the Data screen with `q`."""
    async with data_app(workspace) as pilot:
        await pilot.press("q")
        await settle(pilot)
        assert isinstance(pilot.app.screen, QuarantineScreen)
        yield pilot


async def test_quarantine_lists_lines_with_reasons(quarantined: Workspace) -> None:
    async with quarantine_open(quarantined) as pilot:
        app = pilot.app
        screen = app.screen
        assert isinstance(screen, QuarantineScreen)
        options = screen.query_one(OptionList)
        assert options.option_count == 2
        assert str(options.get_option_at_index(0).prompt).startswith("pairs.jsonl:3 · not valid")
        assert screen.query_one(TextArea).text == BROKEN
        await pilot.press("down")
        assert screen.query_one(TextArea).text == "[\n  1,\n  2\n]"  # JSON, indented to edit
        assert "not a JSON object" in str(screen.query_one("#quarantine-reasons").render())


async def test_a_fixed_line_is_imported_and_leaves_the_quarantine(quarantined: Workspace) -> None:
    async with quarantine_open(quarantined) as pilot:
        app = pilot.app
        app.screen.query_one(TextArea).load_text(FIXED)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "Imported as example #3." in notifications(app)
        assert app.screen.query_one(OptionList).option_count == 1
        await pilot.press("escape")
        await settle(pilot)
        assert shown_ids(app) == [1, 2, 3]
        assert query_text(app) == "3 examples"
    with ExampleStore(quarantined.db_path) as store:
        assert store.get(3).source == "pairs.jsonl:3"
        assert [entry["line"] for entry in store.quarantined()] == [7]


async def test_a_line_still_broken_keeps_the_edit_and_says_why(quarantined: Workspace) -> None:
    async with quarantine_open(quarantined) as pilot:
        app = pilot.app
        raw = app.screen.query_one(TextArea)
        raw.load_text(BROKEN + ", ")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen.query_one(TextArea).text == BROKEN + ", "
        assert any(text.startswith("Still not importable: not JSON") for text in notifications(app))
    with ExampleStore(quarantined.db_path) as store:
        kept = store.quarantined()[0]
        assert (kept["raw"], len(store.quarantined())) == (BROKEN + ", ", 2)
        assert kept["reasons"][0].startswith("not JSON")


async def test_a_fixed_sharegpt_line_becomes_a_chat_example(quarantined: Workspace) -> None:
    async with quarantine_open(quarantined) as pilot:
        app = pilot.app
        await pilot.press("down")
        app.screen.query_one(TextArea).load_text(SHAREGPT)
        await pilot.press("ctrl+s")
        await settle(pilot)
    with ExampleStore(quarantined.db_path) as store:
        assert [(m["role"], m["content"]) for m in store.get(3).messages] == [
            ("user", "hi"),
            ("assistant", "hello"),
        ]


async def test_discarding_a_line_asks_first(quarantined: Workspace) -> None:
    async with quarantine_open(quarantined) as pilot:
        app = pilot.app
        screen = app.screen
        await pilot.click(screen.query_one("#quarantine-discard", Button))
        await pilot.press("y")
        await settle(pilot)
        assert screen.query_one(OptionList).option_count == 1
    with ExampleStore(quarantined.db_path) as store:
        assert [entry["line"] for entry in store.quarantined()] == [7]
