"""Edit one example's conversation: every message's role and text; add, remove, reorder.

Ctrl+S saves through the store in a thread. When the save fails (a validator refuses, the
database is read-only, the disk is full) the dialog stays open with the text as typed and says
why, so nothing the user wrote is lost.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from screens.data_dialogs import ConfirmScreen
from screens.widgets.message_editor import MessageEditor
from workbench.data.store import Example, ExampleStore, StoreError


def next_role(messages: list[dict[str, Any]]) -> str:
    """The role a new message most likely has: the other side of the last one."""
    return "assistant" if messages and messages[-1].get("role") == "user" else "user"


class MessageEditorScreen(ModalScreen[Example | None]):
    """The conversation of one example as editable messages; dismissed with the saved example."""

    HELP = MessageEditor.HELP
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Save", id="editor.save", tooltip="Save the conversation"),
        Binding(
            "ctrl+n",
            "add",
            "Add message",
            id="editor.add",
            tooltip="Add a message below the one being edited",
        ),
        Binding(
            "escape",
            "close",
            "Close",
            id="editor.close",
            tooltip="Close without saving (asks first when something changed)",
        ),
    ]

    @dataclass
    class Saved(Message):
        example: Example

    @dataclass
    class SaveFailed(Message):
        reason: str

    def __init__(self, store: ExampleStore, example: Example) -> None:
        super().__init__(classes="data-dialog", id="message-editor-screen")
        self.store = store
        self.example = example
        self.structure_changed = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="data-dialog-panel", id="editor-panel") as panel:
            panel.border_title = f"Edit example #{self.example.id}"
            panel.border_subtitle = "Ctrl+S saves · Ctrl+N adds a message · Esc closes"
            with VerticalScroll(id="editor-messages"):
                for message in self.example.messages:
                    yield MessageEditor(message)
            yield Static("", id="editor-error")
            with Horizontal(classes="data-dialog-buttons"):
                yield Button("Save (Ctrl+S)", variant="primary", id="editor-save")
                yield Button("+ Message (Ctrl+N)", id="editor-add")
                yield Button("Cancel (Esc)", id="editor-cancel")

    def on_mount(self) -> None:
        editors = self.editors()
        if editors:
            editors[-1].focus_text()

    def editors(self) -> list[MessageEditor]:
        return list(self.query(MessageEditor))

    def messages(self) -> list[dict[str, Any]]:
        """The conversation as it is on screen now."""
        return [editor.value() for editor in self.editors()]

    @property
    def changed(self) -> bool:
        return self.structure_changed or any(editor.changed for editor in self.editors())

    # --- saving -----------------------------------------------------------------------------

    def action_save(self) -> None:
        self.query_one("#editor-save", Button).loading = True
        self.save(self.messages())

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="example-save",
        description="save the example",
    )
    def save(self, messages: list[dict[str, Any]]) -> None:
        try:
            example = self.store.update_messages(self.example.id, messages)
        except (StoreError, sqlite3.Error) as exc:
            self.post_message(self.SaveFailed(str(exc)))
        else:
            self.post_message(self.Saved(example))

    @on(Saved)
    def saved(self, message: Saved) -> None:
        self.dismiss(message.example)

    @on(SaveFailed)
    def save_failed(self, message: SaveFailed) -> None:
        self.query_one("#editor-save", Button).loading = False
        error = self.query_one("#editor-error", Static)
        error.update(f"Not saved: {escape(message.reason)}. Your text is still here.")
        error.add_class("-shown")
        self.notify(f"Not saved: {message.reason}", severity="error", timeout=8)

    # --- structure --------------------------------------------------------------------------

    def action_add(self) -> None:
        editors = self.editors()
        after = next((e for e in editors if e.has_focus_within), editors[-1] if editors else None)
        upto = editors[: editors.index(after) + 1] if after else []
        editor = MessageEditor({"role": next_role([e.value() for e in upto]), "content": ""})
        container = self.query_one("#editor-messages", VerticalScroll)
        container.mount(editor, after=after) if after else container.mount(editor)
        self.structure_changed = True
        self.call_after_refresh(editor.focus_text)

    @on(MessageEditor.MoveRequested)
    def move(self, message: MessageEditor.MoveRequested) -> None:
        editors = self.editors()
        index = editors.index(message.editor) + message.delta
        if not 0 <= index < len(editors):
            return
        container = self.query_one("#editor-messages", VerticalScroll)
        if message.delta < 0:
            container.move_child(message.editor, before=editors[index])
        else:
            container.move_child(message.editor, after=editors[index])
        self.structure_changed = True
        self.call_after_refresh(message.editor.focus_text)

    @on(MessageEditor.RemoveRequested)
    def remove_message(self, message: MessageEditor.RemoveRequested) -> None:
        editors = self.editors()
        index = editors.index(message.editor)
        message.editor.remove()
        self.structure_changed = True
        rest = [e for e in editors if e is not message.editor]
        if rest:
            self.call_after_refresh(rest[min(index, len(rest) - 1)].focus_text)

    @on(Button.Pressed, "#editor-save")
    def save_pressed(self) -> None:
        self.action_save()

    @on(Button.Pressed, "#editor-add")
    def add_pressed(self) -> None:
        self.action_add()

    @on(Button.Pressed, "#editor-cancel")
    def cancel_pressed(self) -> None:
        self.action_close()

    # --- closing ----------------------------------------------------------------------------

    def action_close(self) -> None:
        if not self.changed:
            self.dismiss(None)
            return
        self.app.push_screen(
            ConfirmScreen("Discard your changes to this example?", "Discard"), self._discard
        )

    def _discard(self, discard: bool | None) -> None:
        if discard:
            self.dismiss(None)
