"""The Data screen, changing one example: edit messages, undo/redo, delete, tag, flag, split."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from data_support import (
    data_app,
    data_screen,
    detail_text,
    fill,
    notifications,
    pair,
    query_text,
    settle,
    shown_ids,
    stored,
)
from textual.widgets import Select, TextArea

from screens.data_dialogs import ChoiceScreen, PromptScreen
from screens.message_editor import MessageEditorScreen
from screens.widgets.message_editor import MessageEditor
from workbench.data.store import Problem, StoreError
from workbench.workspace import Workspace

TOPICS = ["Baking bread", "Planting tomatoes", "Fixing a bike"]


def three_pairs(workspace: Workspace) -> list[int]:
    return fill(workspace, [pair(topic, f"All about {topic.lower()}.") for topic in TOPICS])


def editor_texts(app: Any) -> list[str]:
    return [editor.text for editor in app.screen.query(MessageEditor)]


async def test_edit_a_message_saves_it_and_undo_redo_restore(workspace: Workspace) -> None:
    three_pairs(workspace)
    async with data_app(workspace) as pilot:
        app = pilot.app
        await pilot.press("j", "e")
        await settle(pilot)
        assert isinstance(app.screen, MessageEditorScreen)
        assert isinstance(app.focused, TextArea)  # the answer, ready to edit
        await pilot.press("end", *" Knead well.", "ctrl+s")
        await settle(pilot)
        assert not isinstance(app.screen, MessageEditorScreen)
        answer = "All about planting tomatoes. Knead well."
        assert stored(workspace, 2).messages[1]["content"] == answer
        assert answer in detail_text(app)
        await pilot.press("u")
        await settle(pilot)
        assert stored(workspace, 2).messages[1]["content"] == "All about planting tomatoes."
        assert "Undone: edit example 2. Ctrl+R redoes." in notifications(app)
        assert "Knead well." not in detail_text(app)
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert stored(workspace, 2).messages[1]["content"] == answer
        assert answer in detail_text(app)


async def test_add_reorder_change_role_and_remove_messages(workspace: Workspace) -> None:
    three_pairs(workspace)
    async with data_app(workspace) as pilot:
        app = pilot.app
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("ctrl+n")  # a new message below the answer: the user's turn
        await pilot.pause()
        await pilot.press(*"And rye?")
        await pilot.press("alt+up")  # now before the answer
        await pilot.pause()
        assert editor_texts(app) == [
            "Topic: Baking bread\nKeywords: baking bread",
            "And rye?",
            "All about baking bread.",
        ]
        await pilot.press("alt+r")  # user -> assistant
        first = app.screen.query(MessageEditor).first()
        first.query_one(Select).value = "system"
        await pilot.click(first.query_one(".message-remove"))
        await pilot.press("ctrl+s")
        await settle(pilot)
    assert stored(workspace, 1).messages == [
        {"role": "assistant", "content": "And rye?"},
        {"role": "assistant", "content": "All about baking bread."},
    ]


async def test_a_refused_edit_keeps_the_text_and_says_why(workspace: Workspace) -> None:
    three_pairs(workspace)

    def refuse(record: Mapping[str, Any]) -> list[Problem]:
        raise StoreError("the answer may not mention rye")

    async with data_app(workspace) as pilot:
        app = pilot.app
        data_screen(app).store.validator = refuse  # type: ignore[union-attr]
        await pilot.press("e", "end", *" Rye too.", "ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, MessageEditorScreen)
        assert editor_texts(app)[-1] == "All about baking bread. Rye too."
        error = str(app.screen.query_one("#editor-error").render())
        assert "Not saved: the answer may not mention rye" in error
        assert "Not saved: the answer may not mention rye" in notifications(app)
    assert stored(workspace, 1).messages[1]["content"] == "All about baking bread."


async def test_an_edit_the_database_cannot_write_keeps_the_text(workspace: Workspace) -> None:
    three_pairs(workspace)
    async with data_app(workspace) as pilot:
        app = pilot.app
        data_screen(app).store._db.execute("PRAGMA query_only = ON")  # type: ignore[union-attr]
        await pilot.press("e", "end", *" More.", "ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, MessageEditorScreen)
        assert editor_texts(app)[-1] == "All about baking bread. More."
        assert any("readonly database" in text for text in notifications(app))


async def test_closing_the_editor_with_changes_asks_first(workspace: Workspace) -> None:
    three_pairs(workspace)
    async with data_app(workspace) as pilot:
        app = pilot.app
        await pilot.press("e", *"x", "escape")
        assert "Discard your changes" in str(app.screen.query_one("#confirm-question").render())
        await pilot.press("n")
        assert isinstance(app.screen, MessageEditorScreen)
        await pilot.press("escape", "y")
        await settle(pilot)
        assert not isinstance(app.screen, MessageEditorScreen)
    assert stored(workspace, 1).messages[1]["content"] == "All about baking bread."


async def test_delete_hides_the_example_and_undo_brings_it_back(workspace: Workspace) -> None:
    three_pairs(workspace)
    async with data_app(workspace) as pilot:
        app = pilot.app
        await pilot.press("j", "d")
        await settle(pilot)
        assert shown_ids(app) == [1, 3]
        assert query_text(app) == "2 examples"
        assert stored(workspace, 2).deleted
        assert data_screen(app).current.id == 3  # type: ignore[union-attr]
        await pilot.press("u")
        await settle(pilot)
        assert shown_ids(app) == [1, 2, 3]
        assert not stored(workspace, 2).deleted


async def test_tag_and_untag(workspace: Workspace) -> None:
    three_pairs(workspace)
    async with data_app(workspace) as pilot:
        app = pilot.app
        await pilot.press("t")
        assert isinstance(app.screen, PromptScreen)
        await pilot.press(*"baking", "enter")
        await settle(pilot)
        assert stored(workspace, 1).tags == ("baking",)
        assert "baking" in detail_text(app)
        await pilot.press("j", "t", *"ba")
        await pilot.pause()
        await pilot.press("right", "enter")  # accepts the suggestion of a tag in use
        await settle(pilot)
        assert stored(workspace, 2).tags == ("baking",)
        await pilot.press("t", *"-baking", "enter")
        await settle(pilot)
        assert stored(workspace, 2).tags == ()


async def test_flag_and_move_to_a_split(workspace: Workspace) -> None:
    three_pairs(workspace)
    async with data_app(workspace) as pilot:
        app = pilot.app
        await pilot.press("F")
        assert isinstance(app.screen, ChoiceScreen)
        await pilot.press("down", "down", "enter")
        await settle(pilot)
        assert stored(workspace, 1).flag == "bad"
        await pilot.press("m")
        await pilot.press("up", "up", "enter")  # from unassigned (highlighted) up to val
        await settle(pilot)
        assert stored(workspace, 1).split == "val"
        assert data_screen(app).query_one("#data-table").row_at(0).split == "val"
        await pilot.press("u", "u")
        await settle(pilot)
        assert (stored(workspace, 1).flag, stored(workspace, 1).split) == ("ok", "unassigned")
