"""The Data screen, bulk actions: every example the search and filters select, after a confirm."""

from __future__ import annotations

from data_support import data_app, fill, notifications, pair, query_text, settle, shown_ids
from textual.widgets import Select

from screens.data_dialogs import ChoiceScreen, ConfirmScreen, PromptScreen
from workbench.data.store import ExampleStore, Query
from workbench.workspace import Workspace

TOPICS = ["bread baking", "rye bread", "tomato planting", "bike repair", "bread storage"]


def five(workspace: Workspace) -> None:
    fill(workspace, [pair(topic, f"About {topic}.") for topic in TOPICS])


def column(workspace: Workspace, name: str) -> list[object]:
    with ExampleStore(workspace.db_path) as store:
        return [getattr(store.get(i), name) for i in range(1, len(TOPICS) + 1)]


async def test_bulk_flag_applies_to_the_search_results_only(workspace: Workspace) -> None:
    five(workspace)
    async with data_app(workspace) as pilot:
        app = pilot.app
        await pilot.press("slash", *"bread", "enter")
        await settle(pilot)
        await pilot.press("b")
        assert isinstance(app.screen, ChoiceScreen)
        assert app.screen.title_text == "All 3 examples shown"
        await pilot.press("down", "down", "enter")  # flag…
        await pilot.press("down", "down", "enter")  # bad
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.question == "Flag bad all 3 examples shown? (u undoes it as one step)"
        await pilot.press("y")
        await settle(pilot)
        assert column(workspace, "flag") == ["bad", "bad", "ok", "ok", "bad"]
        assert "Flagged 3 examples bad." in notifications(app)
        await pilot.press("u")
        await settle(pilot)
        assert column(workspace, "flag") == ["ok"] * 5


async def test_bulk_tag_and_move_to_a_split(workspace: Workspace) -> None:
    five(workspace)
    async with data_app(workspace) as pilot:
        app = pilot.app
        await pilot.press("slash", *"bread", "enter", "b", "enter")  # add a tag…
        assert isinstance(app.screen, PromptScreen)
        await pilot.press(*"carbs", "enter", "y")
        await settle(pilot)
        assert column(workspace, "tags") == [("carbs",), ("carbs",), (), (), ("carbs",)]
        await pilot.press("b", "down", "down", "down", "enter")  # move to a split…
        await pilot.press("down", "enter", "y")  # val
        await settle(pilot)
        assert column(workspace, "split") == ["val", "val", "unassigned", "unassigned", "val"]


async def test_bulk_delete_of_a_filtered_set_and_declining(workspace: Workspace) -> None:
    five(workspace)
    with ExampleStore(workspace.db_path) as store:
        store.set_split([3, 4], "test")
    async with data_app(workspace) as pilot:
        app = pilot.app
        await pilot.press("f")
        app.screen.query_one("#filter-split", Select).value = "test"
        await pilot.press("ctrl+s")
        await settle(pilot)
        await pilot.press("b", "up", "enter")  # delete (the last choice)
        assert "Delete all 2 examples shown?" in app.screen.question  # type: ignore[attr-defined]
        await pilot.press("n")
        await settle(pilot)
        assert column(workspace, "deleted") == [False] * 5
        await pilot.press("b", "up", "enter", "y")
        await settle(pilot)
        assert column(workspace, "deleted") == [False, False, True, True, False]
        assert shown_ids(app) == []
        assert query_text(app).startswith("0 of 3 examples")


async def test_the_palette_offers_bulk_actions_on_the_filtered_set(workspace: Workspace) -> None:
    five(workspace)
    async with data_app(workspace) as pilot:
        app = pilot.app
        await pilot.press("ctrl+p", *"data: delete filtered")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.question.startswith("Delete all 5 examples shown?")
        await pilot.press("y")
        await settle(pilot)
    with ExampleStore(workspace.db_path) as store:
        assert store.count(Query()) == 0
