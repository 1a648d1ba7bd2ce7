"""One message of a conversation, editable: its role, its text, and buttons to move or drop it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Label, Select, TextArea

from screens.widgets.conversation import content_text
from workbench.data.store import estimate_tokens

ROLES = ("system", "user", "assistant", "tool")


class MessageEditor(Vertical):
    """A role picker and a multi-line text area for one message."""

    HELP = """\
One message: pick its role, edit its text (a full multi-line editor: Ctrl+Z undoes,
shift+arrows select, Ctrl+X/C/V cut, copy and paste).

- **Alt+↑** / **Alt+↓** move the message up or down, **Alt+R** cycles its role,
  **Alt+D** removes it, **Ctrl+N** adds a message below it
- **Ctrl+S** saves the whole conversation, **Esc** closes without saving
"""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("alt+up", "move(-1)", "Move up", id="message.up", tooltip="Move this message up"),
        Binding(
            "alt+down",
            "move(1)",
            "Move down",
            id="message.down",
            tooltip="Move this message down",
        ),
        Binding(
            "alt+r",
            "cycle_role",
            "Role",
            id="message.role",
            tooltip="Change this message's role (system, user, assistant, tool)",
        ),
        Binding("alt+d", "remove", "Remove", id="message.remove", tooltip="Remove this message"),
    ]

    @dataclass
    class MoveRequested(Message):
        editor: MessageEditor
        delta: int

    @dataclass
    class RemoveRequested(Message):
        editor: MessageEditor

    def __init__(self, message: dict[str, Any]) -> None:
        super().__init__(classes="message-editor")
        role = str(message.get("role", "user"))
        self.roles = ROLES if role in ROLES else (*ROLES, role)
        self.initial_role = role
        self.initial_text = content_text(message)
        self.extra = {k: v for k, v in message.items() if k not in ("role", "content")}

    def compose(self) -> ComposeResult:
        with Horizontal(classes="message-editor-bar"):
            yield Select(
                [(role, role) for role in self.roles],
                value=self.initial_role,
                allow_blank=False,
                compact=True,
                classes="message-role",
            )
            yield Label(self._tokens(self.initial_text), classes="message-tokens")
            yield Button("↑", classes="message-up", compact=True, tooltip="Move up (Alt+↑)")
            yield Button("↓", classes="message-down", compact=True, tooltip="Move down (Alt+↓)")
            yield Button("✕", classes="message-remove", compact=True, tooltip="Remove (Alt+D)")
        yield TextArea(
            self.initial_text, soft_wrap=True, tab_behavior="focus", classes="message-text"
        )

    @staticmethod
    def _tokens(text: str) -> str:
        return f"~{estimate_tokens(text):,} tokens"

    @property
    def role(self) -> str:
        return str(self.query_one(Select).value)

    @property
    def text(self) -> str:
        return self.query_one(TextArea).text

    def value(self) -> dict[str, Any]:
        """The message as it is now (any other keys of the original message kept)."""
        return {"role": self.role, "content": self.text, **self.extra}

    @property
    def changed(self) -> bool:
        return self.role != self.initial_role or self.text != self.initial_text

    def focus_text(self) -> None:
        self.query_one(TextArea).focus()

    @on(TextArea.Changed)
    def count_tokens(self, event: TextArea.Changed) -> None:
        self.query_one(".message-tokens", Label).update(self._tokens(event.text_area.text))

    @on(Button.Pressed, ".message-up")
    def up_pressed(self) -> None:
        self.action_move(-1)

    @on(Button.Pressed, ".message-down")
    def down_pressed(self) -> None:
        self.action_move(1)

    @on(Button.Pressed, ".message-remove")
    def remove_pressed(self) -> None:
        self.action_remove()

    def action_remove(self) -> None:
        self.post_message(self.RemoveRequested(self))

    def action_move(self, delta: int) -> None:
        self.post_message(self.MoveRequested(self, delta))

    def action_cycle_role(self) -> None:
        select = self.query_one(Select)
        select.value = self.roles[(self.roles.index(self.role) + 1) % len(self.roles)]
