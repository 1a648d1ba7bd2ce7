"""`workbench eval ...`: the fine-tuned model against the old pipeline, judged by Claude."""

from __future__ import annotations

from typing import Any

from workbench.cliutil import command, json_option, not_built


def register(commands: Any) -> None:
    sub = command(
        commands, "eval", "judge the fine-tuned model against the old pipeline", not_built("eval")
    )
    actions = sub.add_subparsers(title="actions", metavar="ACTION")
    command(actions, "run", "start an evaluation in the background", not_built("eval run"))
    report = command(
        actions,
        "report",
        "win/tie/loss, cost and latency of an evaluation",
        not_built("eval report"),
    )
    report.add_argument("eval_id", metavar="ID")
    json_option(report)
