"""The Chat screen's settings: the system prompt and how answers are sampled.

They start as the workspace's `[chat]` settings and apply to the next answer; a value out of
range is named right away (with the range workbench.toml allows) and keeps answers from
starting until it is fixed. Context size and GPU layers are chosen when a model is opened.
"""

from __future__ import annotations

from rich.markup import escape
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Input, Label, Static, TextArea

from screens.chat_session import SAMPLING_FIELDS, SettingsError, checked
from workbench.config import ChatSection

FIELD_HINTS = {
    "temperature": "0 is greedy; higher is more varied",
    "top_p": "keep the likeliest tokens up to this probability",
    "max_tokens": "longest answer, in tokens",
    "repeat_penalty": "1 is none; 1.1 discourages loops",
}


class ChatSettingsPanel(VerticalScroll, can_focus=False):
    """System prompt, temperature, top-p, max tokens and repeat penalty (Ctrl+T shows or hides)."""

    HELP = """\
How the next answer is made; changes apply from the next message on.

- **System prompt**: sent first in every request (the instructions the model was trained with,
  if any: a fine-tuned model usually needs none)
- **Temperature**: 0 always picks the likeliest token (greedy); higher is more varied
- **Top-p**: sample only from the likeliest tokens that together reach this probability
- **Max tokens**: the longest answer
- **Repeat penalty**: above 1 discourages repeating tokens

They start as the `[chat]` settings of `workbench.toml`. Context size and GPU layers are set
when you open a model (**Ctrl+O**). **Ctrl+T** hides this panel.
"""

    def __init__(self, section: ChatSection, *, id: str) -> None:
        super().__init__(id=id)
        self.section = section

    def compose(self) -> ComposeResult:
        yield Label("System prompt", classes="chat-setting-label")
        yield TextArea(
            self.section.system_prompt,
            id="chat-system",
            compact=True,
            soft_wrap=True,
            tab_behavior="focus",
            placeholder="none",
        )
        for key, label in SAMPLING_FIELDS:
            with Horizontal(classes="chat-setting-row"):
                yield Label(label, classes="chat-setting-label")
                yield Input(
                    _shown(getattr(self.section, key)),
                    id=f"chat-{key.replace('_', '-')}",
                    compact=True,
                    tooltip=FIELD_HINTS[key],
                )
        yield Static("", id="chat-settings-error")
        yield Static(
            "Context size and GPU layers: set when you open a model (Ctrl+O).",
            id="chat-settings-note",
        )

    def on_mount(self) -> None:
        self.border_title = "Settings"
        self.border_subtitle = "Ctrl+T hides"

    @property
    def system_prompt(self) -> str:
        return self.query_one("#chat-system", TextArea).text

    def set_system_prompt(self, text: str) -> None:
        self.query_one("#chat-system", TextArea).text = text

    def typed(self) -> dict[str, str]:
        """The sampling fields as typed."""
        return {
            key: self.query_one(f"#chat-{key.replace('_', '-')}", Input).value
            for key, _ in SAMPLING_FIELDS
        }

    def problem(self) -> str:
        """What is wrong with the typed values ('' when they are all in range)."""
        try:
            checked(self.section, self.typed(), dict(SAMPLING_FIELDS))
        except SettingsError as exc:
            return str(exc)
        return ""

    @on(Input.Changed)
    def _check(self, event: Input.Changed) -> None:
        problem = self.problem()
        error = self.query_one("#chat-settings-error", Static)
        error.update(escape(problem))
        error.set_class(bool(problem), "-shown")
        for key, label in SAMPLING_FIELDS:
            field = self.query_one(f"#chat-{key.replace('_', '-')}", Input)
            field.set_class(problem.startswith(f"{label}:"), "-invalid")


def _shown(value: float) -> str:
    """`0.7`, `512`: how a number reads in a field."""
    return f"{value:g}" if isinstance(value, float) else str(value)
