"""`workbench chat GGUF`: a plain terminal chat with a GGUF model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.cliutil import command, not_built


def register(commands: Any) -> None:
    sub = command(commands, "chat", "chat with a GGUF model in this terminal", not_built("chat"))
    sub.add_argument("gguf", type=Path, metavar="GGUF")
