"""The Chat screen: talk to an exported GGUF model."""

from __future__ import annotations

from textual.app import ComposeResult

from screens.base import WorkbenchScreen
from screens.widgets.not_built import NotBuiltYet


class ChatScreen(WorkbenchScreen):
    MODE = "chat"
    HELP = """\
## Chat
Talk to an exported GGUF model to judge it by hand; send good answers back into the data.
"""

    def compose_body(self) -> ComposeResult:
        yield NotBuiltYet(
            "Chat",
            [
                "open any GGUF (this workspace's exports first) and stream its answers",
                "show time to first token and tokens/s; Esc stops generation",
                "compare two models side by side on one prompt",
                "send a good or corrected answer back into the data",
            ],
            ["workbench demo-model DIR     build a tiny offline model to try the pipeline"],
        )
