"""`workbench capture` and `workbench synth`: collect examples from traffic or from Claude."""

from __future__ import annotations

from typing import Any

from workbench.cliutil import command, not_built


def register(commands: Any) -> None:
    """Add `capture` and `synth` to the `workbench` command."""
    capture = command(
        commands,
        "capture",
        "a local proxy that stores the old pipeline's requests and answers as examples",
        not_built("capture"),
    )
    capture.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1")
    capture.add_argument("--upstream", default="anthropic", metavar="anthropic|openai URL")
    synth = command(
        commands,
        "synth",
        "generate new examples with Claude from a few seeds",
        not_built("synth"),
    )
    synth.add_argument("--count", type=int, default=50, help="how many examples to generate")
