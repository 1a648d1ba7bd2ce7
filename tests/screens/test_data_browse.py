"""The Data screen, browsing: rows, the detail pane, moving, search, filters, sort, empty states."""

from __future__ import annotations

from data_support import (
    SIZE,
    data_app,
    data_screen,
    detail_text,
    fill,
    pair,
    query_text,
    seo_records,
    settle,
    shown_ids,
)
from textual.message import Message
from textual.widgets import Input, Select

from screens.chat import ChatScreen
from screens.data import DataScreen
from screens.data_dialogs import ChoiceScreen, FilterScreen
from screens.widgets.examples_table import PAGE_SIZE, PAGES_KEPT, ExamplesTable
from workbench.data.store import ExampleStore
from workbench.workspace import Workspace


async def test_opens_on_the_first_rows_and_shows_the_first_example(workspace: Workspace) -> None:
    fill(workspace, seo_records(), source="seo_pairs.jsonl")
    async with data_app(workspace) as pilot:
        app = pilot.app
        assert shown_ids(app)[:3] == [1, 2, 3]
        assert len(shown_ids(app)) == SIZE[1] - 5  # header, search, counts, table header, footer
        assert query_text(app) == "121 examples"
        assert "Topic: Litter training a house rabbit" in detail_text(app)
        assert app.focused is data_screen(app).query_one(ExamplesTable)


async def test_j_and_k_move_and_the_detail_pane_follows(workspace: Workspace) -> None:
    fill(workspace, seo_records())
    async with data_app(workspace) as pilot:
        app = pilot.app
        await pilot.press("j", "j")
        await settle(pilot)
        assert data_screen(app).current.id == 3  # type: ignore[union-attr]
        assert "Topic: Growing an indoor herb garden" in detail_text(app)
        await pilot.press("k")
        await settle(pilot)
        assert "Topic: Baking no-knead bread" in detail_text(app)


async def test_a_large_table_loads_pages_as_it_scrolls(workspace: Workspace) -> None:
    count = PAGE_SIZE * 5 + 7
    fill(workspace, (pair(f"subject {i}", "answer " * (i % 50 + 1)) for i in range(count)))
    async with data_app(workspace) as pilot:
        app = pilot.app
        table = data_screen(app).query_one(ExamplesTable)
        assert table.total == count
        assert set(table._pages) == {0}
        await pilot.press("G")
        await settle(pilot)
        assert shown_ids(app)[-1] == count
        assert data_screen(app).current.id == count  # type: ignore[union-attr]
        assert len(table._pages) <= 3  # the first page, and the last one or two
        await pilot.press("g", "pagedown")
        await settle(pilot)
        rows_shown = len(shown_ids(app))
        assert table.cursor == rows_shown - 1  # a page down keeps one row in view
        assert shown_ids(app)[0] == 1


async def test_search_narrows_the_rows_as_you_type(workspace: Workspace) -> None:
    fill(workspace, seo_records())
    async with data_app(workspace) as pilot:
        app = pilot.app
        await pilot.press("slash", *"rabbit")
        await settle(pilot)
        assert shown_ids(app) == [1, 95]
        await pilot.press(*" h")  # a one-letter word waits for its second letter
        await settle(pilot)
        assert shown_ids(app) == [1, 95]
        await pilot.press(*"ouse")  # every word must match, as the start of a word
        await settle(pilot)
        assert shown_ids(app) == [1]
        assert query_text(app) == "1 of 121 examples · search “rabbit house”"
        await pilot.press("enter")
        assert isinstance(app.focused, ExamplesTable)
        assert "house rabbit" in detail_text(app)
        await pilot.press("slash", "escape")
        await settle(pilot)
        assert query_text(app) == "121 examples"
        assert data_screen(app).query_one("#data-search", Input).value == ""


async def test_a_search_that_matches_nothing_says_so(workspace: Workspace) -> None:
    fill(workspace, seo_records())
    async with data_app(workspace) as pilot:
        app = pilot.app
        await pilot.press("slash", *"zzzqqq")
        await settle(pilot)
        assert shown_ids(app) == []
        assert query_text(app).startswith("0 of 121 examples")
        table = data_screen(app).query_one(ExamplesTable)
        assert "No examples match" in table.render_line(1).text
        assert "No example selected" in detail_text(app)


async def test_filters_by_split_flag_and_length(workspace: Workspace) -> None:
    ids = fill(workspace, seo_records())
    with ExampleStore(workspace.db_path) as store:
        store.set_split(ids[:10], "val")
        store.set_flag(ids[3:5], "bad")
    async with data_app(workspace) as pilot:
        app = pilot.app
        await pilot.press("f")
        dialog = app.screen
        assert isinstance(dialog, FilterScreen)
        dialog.query_one("#filter-split", Select).value = "val"
        dialog.query_one("#filter-flag", Select).value = "bad"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert shown_ids(app) == [4, 5]
        assert query_text(app) == "2 of 121 examples · split val · flag bad"
        await pilot.press("f")
        await pilot.press("ctrl+l")
        await pilot.press("f")
        app.screen.query_one("#filter-min", Input).value = "1000"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert shown_ids(app) == [95]  # the answer that rambles on for 2,000 words
        assert "output ≥ 1000 tok" in query_text(app)


async def test_filter_on_problems_and_tags(workspace: Workspace) -> None:
    ids = fill(workspace, [pair("a", "x"), pair("b", "y"), pair("c", "z")])
    with ExampleStore(workspace.db_path) as store:
        store.add_tag(ids[1:], "checked")
    async with data_app(workspace) as pilot:
        app = pilot.app
        await pilot.press("f")
        select = app.screen.query_one("#filter-tag", Select)
        select.value = "checked"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert shown_ids(app) == [2, 3]
        await pilot.press("f")
        app.screen.query_one("#filter-problems", Select).value = "yes"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert shown_ids(app) == []


async def test_sort_by_output_length(workspace: Workspace) -> None:
    fill(workspace, [pair("short", "a b"), pair("long", "word " * 300), pair("mid", "x " * 40)])
    async with data_app(workspace) as pilot:
        app = pilot.app
        await pilot.press("s")
        assert isinstance(app.screen, ChoiceScreen)
        await pilot.press("down", "enter")  # output length, longest first
        await settle(pilot)
        assert shown_ids(app) == [2, 3, 1]
        assert "sorted by output length, longest first" in query_text(app)
        header = data_screen(app).query_one(ExamplesTable).render_line(0).text
        assert "tok▼" in header


async def test_an_empty_workspace_says_how_to_import(workspace: Workspace) -> None:
    async with data_app(workspace) as pilot:
        app = pilot.app
        empty = data_screen(app).query_one("#data-empty")
        assert empty.display
        assert not data_screen(app).query_one(ExamplesTable).display
        text = str(empty.render())
        assert "Press i to import a file" in text
        assert "workbench data import FILE" in text


async def test_clicking_a_row_highlights_it(workspace: Workspace) -> None:
    fill(workspace, seo_records())
    async with data_app(workspace) as pilot:
        app = pilot.app
        table = data_screen(app).query_one(ExamplesTable)
        await pilot.click(table, offset=(10, 5))
        await settle(pilot)
        assert table.cursor == 4
        assert "Topic: Crate training a puppy" in detail_text(app)


async def test_open_in_chat_switches_screens_and_sends_the_example(workspace: Workspace) -> None:
    fill(workspace, seo_records())
    messages: list[Message] = []
    async with data_app(workspace, messages=messages) as pilot:
        app = pilot.app
        await pilot.press("j", "o")
        await settle(pilot)
        assert app.current_mode == "chat"
        chat = app.get_screen_stack("chat")[0]
        assert isinstance(chat, ChatScreen)
        sent = [m for m in messages if isinstance(m, DataScreen.ExampleSentToChat)]
        assert sent and {m.example.id for m in sent} == {2}


async def test_scrolling_far_keeps_a_bounded_page_cache(workspace: Workspace) -> None:
    count = PAGE_SIZE * (PAGES_KEPT + 4)
    fill(workspace, (pair(f"subject {i}", "answer") for i in range(count)))
    async with data_app(workspace) as pilot:
        app = pilot.app
        table = data_screen(app).query_one(ExamplesTable)
        # As when dragging the scrollbar down: each view straddles two pages.
        for row in range(PAGE_SIZE - 10, count - PAGE_SIZE, 2 * PAGE_SIZE):
            table.scroll_to(y=row, animate=False, immediate=True)
            await settle(pilot, rounds=2)
            assert shown_ids(app)[0] == row + 1
        assert len(table._pages) <= PAGES_KEPT
        assert table.cursor == 0  # scrolling does not move the highlight
