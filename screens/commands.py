"""The command palette (Ctrl+P): the current screen's commands first, then the app's."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

from screens.base import PaletteCommand, WorkbenchScreen
from screens.widgets.header import SCREEN_TABS

if TYPE_CHECKING:
    from screens.app import WorkbenchApp


def screen_palette(screen: object) -> list[PaletteCommand]:
    """The commands of the screen under the palette: a mode's (`WorkbenchScreen`) or a pushed
    screen's that offers some (the review queue), else none."""
    if isinstance(screen, WorkbenchScreen):
        return screen.palette_commands()
    offered = getattr(screen, "palette_commands", None)
    return list(offered()) if callable(offered) else []


class WorkbenchCommands(Provider):
    """Commands titled `area: verb`; those of the screen under the palette come first."""

    def commands(self) -> list[PaletteCommand]:
        app = cast("WorkbenchApp", self.app)
        screen_commands = screen_palette(self.screen)
        go = [
            PaletteCommand(
                f"go: {title.split()[1].lower()} screen",
                f"Switch to the {title.split()[1]} screen (key {title.split()[0]})",
                partial(app.action_show, mode),
            )
            for mode, title in SCREEN_TABS
        ]
        return [
            *screen_commands,
            *go,
            PaletteCommand("app: help", "Help for this screen and its keys (F1)", app.action_help),
            PaletteCommand("app: quit", "Quit; background jobs keep running (Ctrl+Q)", app.exit),
        ]

    async def discover(self) -> Hits:
        for command in self.commands():
            yield DiscoveryHit(command.title, command.callback, help=command.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in self.commands():
            score = matcher.match(command.title)
            if score > 0:
                yield Hit(
                    score, matcher.highlight(command.title), command.callback, help=command.help
                )
