"""The Chat screen's prompt: a few lines of text; Enter sends, Ctrl+J starts a new line."""

from __future__ import annotations

from dataclasses import dataclass

from textual import events
from textual.message import Message
from textual.widgets import TextArea

NEWLINE_KEYS = frozenset({"ctrl+j", "alt+enter", "shift+enter"})


class ChatPromptInput(TextArea):
    """What you ask the model. Enter sends it; Ctrl+J (or Alt+Enter) adds a line break."""

    HELP = """\
Type a message and press **Enter** to send it to the model (to both models in compare mode).
**Ctrl+J** (or Alt+Enter) starts a new line; pasted text keeps its line breaks.
**Esc** stops an answer; when none is being written it leaves the message box for the
conversation (to scroll it, or to switch screens with the number keys; typing comes back here).
F2-F5 switch screens from here too.
"""

    @dataclass
    class Submitted(Message):
        """The user sent `text` (never empty)."""

        prompt: ChatPromptInput
        text: str

        @property
        def control(self) -> ChatPromptInput:
            return self.prompt

    def __init__(self, *, id: str | None = None, placeholder: str = "") -> None:
        super().__init__(
            "",
            id=id,
            compact=True,
            show_line_numbers=False,
            soft_wrap=True,
            tab_behavior="focus",
            placeholder=placeholder,
        )

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            self._submit()
            return
        if event.key in NEWLINE_KEYS:
            event.stop()
            event.prevent_default()
            self.insert("\n")
            return
        await super()._on_key(event)

    def _submit(self) -> None:
        if self.text.strip():
            self.post_message(self.Submitted(self, self.text.strip("\n")))
