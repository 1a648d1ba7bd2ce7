"""The detail pane: one example in full, its tags, flag, problems and every message."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Group, RenderableType
from rich.rule import Rule
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from workbench.data.store import Example, estimate_tokens

SYSTEM_CHARS_SHOWN = 240
"""A system prompt is usually the old pipeline's long instructions: its start suffices."""
ROLE_STYLES = {"system": "magenta", "user": "cyan", "assistant": "green", "tool": "yellow"}


def content_text(message: dict[str, Any]) -> str:
    """A message's content as text (structured content is shown as JSON)."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    return json.dumps(content, ensure_ascii=False, indent=2)


def summary_line(example: Example) -> Text:
    """`#12 · train · needs-review · seo, long` (the deleted and flagged parts stand out)."""
    text = Text.assemble((f"#{example.id}", "bold"), f" · {example.split}")
    if example.flag != "ok":
        text.append(f" · {example.flag}", "bold red" if example.flag == "bad" else "bold yellow")
    if example.tags:
        text.append(" · " + ", ".join(example.tags), "italic")
    if example.deleted:
        text.append(" · deleted (d restores)", "bold red")
    return text


def problem_lines(example: Example) -> list[Text]:
    return [
        Text.assemble(
            ("⚠ " if p.severity == "error" else "• ", "red" if p.severity == "error" else "yellow"),
            (p.code, "bold"),
            f" {p.message}",
        )
        for p in example.problems
    ]


def message_block(message: dict[str, Any]) -> list[RenderableType]:
    """A rule titled with the role (and token estimate), then the text."""
    role = str(message.get("role", "?"))
    text = content_text(message)
    title = f"{role} · {estimate_tokens(text):,} tok"
    body = Text(text)
    if role == "system" and len(text) > SYSTEM_CHARS_SHOWN * 1.5:
        body = Text(text[:SYSTEM_CHARS_SHOWN].rstrip() + "…")
        body.append(
            f"\n({len(text) - SYSTEM_CHARS_SHOWN:,} more characters: e shows them all)",
            "dim italic",
        )
    if not text.strip():
        body = Text("(empty)", "dim italic")
    return [Rule(title, style=ROLE_STYLES.get(role, "white"), align="left"), body]


def render_example(example: Example) -> Group:
    parts: list[RenderableType] = [summary_line(example)]
    if example.source:
        parts.append(Text(f"from {example.source}", "dim"))
    if example.note:
        parts.append(Text(f"note: {example.note}", "italic"))
    parts += problem_lines(example)
    for message in example.messages:
        parts += message_block(message)
    return Group(*parts)


class ConversationView(VerticalScroll, can_focus=True):
    """The highlighted example: summary, problems, then each message under its role."""

    HELP = """\
The highlighted example in full: split, flag, tags, what validation found, then each message
under its role with an estimate of its length in tokens.

Press **e** (or Enter in the table) to edit the messages, **t** to tag, **F** to flag,
**m** to move it to another split, **d** to delete it; **u** undoes any of these.
"""

    def compose(self) -> ComposeResult:
        yield Static("", id="conversation-body")

    def on_mount(self) -> None:
        self.border_title = "Example"

    def show(self, example: Example | None) -> None:
        """Show an example, or nothing (no example highlighted)."""
        body = self.query_one("#conversation-body", Static)
        if example is None:
            body.update(Text("No example selected.", "dim"))
            self.border_title = "Example"
            return
        body.update(render_example(example))
        self.border_title = f"Example #{example.id}"
        self.scroll_home(animate=False)
