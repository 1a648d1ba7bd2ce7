"""The help screen (F1 or ?): help for the focused widget, the screen, and its keys."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Markdown

GLOBAL_HELP = """\
## Everywhere
Work moves left to right: **Data** → **Train** → **Chat** → **Eval**.
Long jobs (training, export, eval) run in the background: quitting the app or losing SSH stops
nothing. Press **Ctrl+P** for every command by name.
"""


def help_markdown(focused: Widget | None, screen_help: str, keys: list[tuple[str, str]]) -> str:
    """The help text: focused widget first, then the screen, then the keys, then the basics."""
    parts = []
    widget_help = getattr(focused, "HELP", "") if focused is not None else ""
    if widget_help:
        parts.append(f"## Here\n{widget_help}")
    if screen_help:
        parts.append(screen_help)
    if keys:
        rows = "\n".join(f"| `{key}` | {text} |" for key, text in keys)
        parts.append(f"## Keys\n| Key | Does |\n|---|---|\n{rows}")
    parts.append(GLOBAL_HELP)
    return "\n\n".join(parts)


class HelpScreen(ModalScreen[None]):
    """A scrollable help panel over the current screen; Esc, F1 or ? closes it."""

    BINDINGS = [
        Binding(
            "escape,f1,question_mark,q",
            "dismiss",
            "Close help",
            id="help.close",
            tooltip="Close this help and go back",
        ),
    ]

    def __init__(self, markdown: str) -> None:
        super().__init__(id="help-screen")
        self.markdown = markdown

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-panel") as panel:
            panel.border_title = "Help"
            panel.border_subtitle = "Esc closes"
            yield Markdown(self.markdown)
