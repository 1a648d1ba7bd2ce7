"""What every workbench screen shares: the header, the footer, help text and palette commands."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, cast

from textual.app import ComposeResult
from textual.binding import Binding
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


BindingsShown = tuple[tuple[str, Binding, bool, str], ...]


class WorkbenchFooter(Footer):
    """Textual's footer, rebuilt only when the keys it would show have changed.

    Textual's footer removes and mounts all its key widgets again whenever the screen's
    bindings may have changed: on every screen switch and focus change, about 10 ms each, and
    the churn of widgets wakes the garbage collector. Coming back to a screen usually shows the
    same keys, so the widgets already there are kept.
    """

    def __init__(self) -> None:
        super().__init__()
        self._shown: BindingsShown | None = None

    def bindings_changed(self, screen: Screen[object]) -> None:
        if self._will_recompose(screen):
            shown = _bindings_shown(screen, self.app.COMMAND_PALETTE_BINDING)
            if shown == self._shown:
                return
            self._shown = shown
        super().bindings_changed(screen)

    def _will_recompose(self, screen: Screen[object]) -> bool:
        """Textual's own conditions for rebuilding the keys (its `bindings_changed`)."""
        return bool(screen.app.app_focus and self.is_attached and screen is self.screen)


def _bindings_shown(screen: Screen[object], palette_key: str) -> BindingsShown:
    """What the footer draws: each shown binding, whether it is enabled, its tooltip."""
    return tuple(
        (key, binding, enabled, tooltip)
        for key, (_node, binding, enabled, tooltip) in screen.active_bindings.items()
        if binding.show or key == palette_key
    )


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
        yield WorkbenchFooter()

    def on_mount(self) -> None:
        self._styles_are_current()

    def _styles_are_current(self) -> None:
        """Every widget here was just styled from the app's current stylesheet: say so, or the
        next visit has Textual re-parse all the CSS and restyle every screen (40-70 ms). Textual
        only records it for a screen that was already mounted when it was first shown."""
        self._css_update_count = self.app._css_update_count

    def compose_body(self) -> ComposeResult:
        """The screen's own widgets, between header and footer."""
        yield from ()

    def palette_commands(self) -> list[PaletteCommand]:
        """Commands that make sense on this screen (shown first in the palette)."""
        return []
