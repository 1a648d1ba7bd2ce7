"""The Data screen's quarantine: lines an import refused, listed with why, fixed and re-imported."""

from __future__ import annotations

import json

from data_support import SIZE, fill, notifications, pair, query_text, settle, shown_ids
from textual.widgets import Button, OptionList, TextArea

from screens.app import make_app
from screens.quarantine import QuarantineScreen
from workbench.accelerator import Accelerator
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


def quarantined_workspace(workspace: Workspace) -> None:
    fill(workspace, [pair("bread", "Knead it."), pair("tomatoes", "Water them.")])
    with ExampleStore(workspace.db_path) as store:
        store.quarantine("pairs.jsonl", 3, BROKEN, ["not valid JSON: unterminated object"])
        store.quarantine("pairs.jsonl", 7, "[1, 2]", ["not a JSON object (a list)"])


async def test_quarantine_lists_lines_with_reasons(workspace: Workspace) -> None:
    quarantined_workspace(workspace)
    app = make_app(workspace, probe=Accelerator)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("q")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, QuarantineScreen)
        options = screen.query_one(OptionList)
        assert options.option_count == 2
        assert str(options.get_option_at_index(0).prompt).startswith("pairs.jsonl:3 · not valid")
        assert screen.query_one(TextArea).text == BROKEN
        await pilot.press("down")
        assert screen.query_one(TextArea).text == "[\n  1,\n  2\n]"  # JSON, indented to edit
        assert "not a JSON object" in str(screen.query_one("#quarantine-reasons").render())


async def test_a_fixed_line_is_imported_and_leaves_the_quarantine(workspace: Workspace) -> None:
    quarantined_workspace(workspace)
    app = make_app(workspace, probe=Accelerator)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("q")
        await settle(pilot)
        app.screen.query_one(TextArea).load_text(FIXED)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "Imported as example #3." in notifications(app)
        assert app.screen.query_one(OptionList).option_count == 1
        await pilot.press("escape")
        await settle(pilot)
        assert shown_ids(app) == [1, 2, 3]
        assert query_text(app) == "3 examples"
    with ExampleStore(workspace.db_path) as store:
        assert store.get(3).source == "pairs.jsonl:3"
        assert [entry["line"] for entry in store.quarantined()] == [7]


async def test_a_line_still_broken_keeps_the_edit_and_says_why(workspace: Workspace) -> None:
    quarantined_workspace(workspace)
    app = make_app(workspace, probe=Accelerator)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("q")
        await settle(pilot)
        raw = app.screen.query_one(TextArea)
        raw.load_text(BROKEN + ", ")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen.query_one(TextArea).text == BROKEN + ", "
        assert any(text.startswith("Still not importable: not JSON") for text in notifications(app))
    with ExampleStore(workspace.db_path) as store:
        kept = store.quarantined()[0]
        assert (kept["raw"], len(store.quarantined())) == (BROKEN + ", ", 2)
        assert kept["reasons"][0].startswith("not JSON")


async def test_a_fixed_sharegpt_line_becomes_a_chat_example(workspace: Workspace) -> None:
    quarantined_workspace(workspace)
    app = make_app(workspace, probe=Accelerator)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("q")
        await settle(pilot)
        await pilot.press("down")
        app.screen.query_one(TextArea).load_text(SHAREGPT)
        await pilot.press("ctrl+s")
        await settle(pilot)
    with ExampleStore(workspace.db_path) as store:
        assert [(m["role"], m["content"]) for m in store.get(3).messages] == [
            ("user", "hi"),
            ("assistant", "hello"),
        ]


async def test_discarding_a_line_asks_first(workspace: Workspace) -> None:
    quarantined_workspace(workspace)
    app = make_app(workspace, probe=Accelerator)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("q")
        await settle(pilot)
        screen = app.screen
        await pilot.click(screen.query_one("#quarantine-discard", Button))
        await pilot.press("y")
        await settle(pilot)
        assert screen.query_one(OptionList).option_count == 1
    with ExampleStore(workspace.db_path) as store:
        assert [entry["line"] for entry in store.quarantined()] == [7]
