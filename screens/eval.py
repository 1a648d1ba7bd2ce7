"""The Eval screen: the fine-tuned model against the old pipeline, judged by Claude."""

from __future__ import annotations

from textual.app import ComposeResult

from screens.base import WorkbenchScreen
from screens.widgets.not_built import NotBuiltYet


class EvalScreen(WorkbenchScreen):
    MODE = "eval"
    HELP = """\
## Eval
Run the fine-tuned model on held-out inputs, put its answers beside the old pipeline's, and
let Claude judge each pair in both orders. Reports win/tie/loss with a confidence interval,
cost and latency.
"""

    def compose_body(self) -> ComposeResult:
        key_env = self.workbench.workspace.config.eval.api_key_env
        yield NotBuiltYet(
            "Eval",
            [
                "generate the fine-tuned model's answers on the test split",
                "take the old pipeline's answers (stored, or fresh calls)",
                "let Claude judge each pair in both orders",
                "report win/tie/loss with a confidence interval, cost and latency",
            ],
            [f"the judge reads its API key from ${key_env} (never written to disk)"],
        )
