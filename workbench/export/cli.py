"""`workbench export RUN_ID`: merge the adapter and write GGUF files."""

from __future__ import annotations

from typing import Any

from workbench.cliutil import command, not_built


def register(commands: Any) -> None:
    sub = command(
        commands, "export", "merge a run's adapter and write GGUF files", not_built("export")
    )
    sub.add_argument("run_id", metavar="RUN_ID")
    sub.add_argument("--checkpoint", default="best", metavar="best|last|N")
    sub.add_argument("--quant", default="q8_0", metavar="f16,q8_0,q4_k_m")
