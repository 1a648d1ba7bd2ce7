"""A plain statement that a screen's feature is not built yet, and what works meanwhile."""

from __future__ import annotations

from collections.abc import Sequence

from rich.markup import escape
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static


class NotBuiltYet(VerticalScroll, can_focus=True):
    """Says what the screen will do, that it does not do it yet, and what to use meanwhile."""

    HELP = "This screen's feature is not built yet; the text lists what works meanwhile."

    def __init__(self, title: str, promise: Sequence[str], meanwhile: Sequence[str]) -> None:
        super().__init__(classes="not-built")
        self.title = title
        self.promise = promise
        self.meanwhile = meanwhile

    def compose(self) -> ComposeResult:
        yield Static(f"[b]{escape(self.title)}[/b] · not built yet", classes="not-built-title")
        yield Static("This screen will:", classes="not-built-heading")
        yield Static("\n".join(f"  • {escape(item)}" for item in self.promise))
        if self.meanwhile:
            yield Static("Meanwhile:", classes="not-built-heading")
            yield Static("\n".join(f"  {escape(item)}" for item in self.meanwhile))
