"""What every workbench screen shares: the header, the footer, help text and palette commands."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, cast

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer

from screens.widgets.header import WorkbenchHeader

if TYPE_CHECKING:
    from screens.app import WorkbenchApp


@dataclass(frozen=True)
class PaletteCommand:
    """One command-palette entry, titled `area: verb` (`train: stop run`)."""

    title: str
    help: str
    callback: Callable[[], Any]


class WorkbenchScreen(Screen[None]):
    """A top-level screen (one per mode): header, body, footer."""

    MODE: ClassVar[str] = ""
    HELP: ClassVar[str] = ""
    """Markdown shown by the help screen (F1) for this screen."""

    @property
    def workbench(self) -> WorkbenchApp:
        return cast("WorkbenchApp", self.app)

    def compose(self) -> ComposeResult:
        yield WorkbenchHeader(self.workbench.workspace.name, self.MODE)
        yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        """The screen's own widgets, between header and footer."""
        yield from ()

    def palette_commands(self) -> list[PaletteCommand]:
        """Commands that make sense on this screen (shown first in the palette)."""
        return []
