"""Cost and latency per request: the old pipeline against the fine-tuned model, and per month
at a request volume the user types."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.reactive import reactive
from textual.validation import Integer
from textual.widgets import Input, Label, Static

from screens.eval_text import at_volume, number, savings_line, seconds, usd

if TYPE_CHECKING:
    from workbench.evaluate.costs import CostRow

PRICE_HINTS = {
    "gpu_hourly_usd": "`workbench config set eval.gpu_hourly_usd=2.49` (your GPU's hourly price)",
    "eval.prices": "add the model's [input, output] USD per million tokens to eval.prices",
}


def cost_table(rows: Sequence[CostRow], monthly: int) -> Table:
    """One row per pipeline: latency, tokens, speed, cost per request and per month."""
    table = Table(expand=True, box=None, padding=(0, 1), header_style="bold")
    table.add_column("pipeline", ratio=1)
    for label in ("latency p50", "p95", "tokens in / out", "tokens/s", "per request"):
        table.add_column(label, justify="right", no_wrap=True)
    table.add_column(f"per month ({monthly:,})", justify="right", no_wrap=True)
    for row in rows:
        table.add_row(
            pipeline_cell(row.pipeline),
            seconds(row.latency_p50_s),
            seconds(row.latency_p95_s),
            f"{number(row.mean_input_tokens)} / {number(row.mean_output_tokens)}",
            number(row.tokens_per_s, 1),
            usd(row.cost_per_request_usd),
            Text(usd(row.monthly_cost_usd), "bold"),
        )
    return table


def pipeline_cell(pipeline: str) -> Text:
    """`old pipeline (stored, claude-sonnet-5-5)` as the name, then its details below."""
    name, _, detail = pipeline.partition(" (")
    text = Text(name, "bold")
    if detail:
        text.append("\n" + detail.removesuffix(")"), "dim")
    return text


def notes(rows: Sequence[CostRow]) -> Text:
    """Each pipeline's note (how its numbers were got, or what to set), with the fix."""
    text = Text()
    for row in rows:
        if not row.note:
            continue
        hints = [hint for key, hint in PRICE_HINTS.items() if key in row.note]
        text.append(f"{row.pipeline.split(' (')[0]}: ", "bold")
        text.append("; ".join([row.note, *hints]) + "\n", "dim")
    return text


class MonthlyInput(Input):
    """The request volume the monthly costs are projected to."""

    HELP = """\
Requests a month, for the projected monthly cost of both pipelines (digits only; the default
is `eval.monthly_requests`). The table changes as you type; **Enter** goes back to the tabs.
Nothing is saved: **x** exports the report at this volume.
"""


class EvalCostPanel(VerticalScroll, can_focus=False):
    """The cost and latency table with a projected monthly cost."""

    HELP = """\
Cost and latency per request of both pipelines, measured on this eval's items. The old
pipeline's cost uses the API prices in `eval.prices` (stored answers: tokens estimated from
the text, no latency); the fine-tuned model's cost is the GPU's hourly price
(`eval.gpu_hourly_usd`) for the time it took to answer, divided by `eval.gpu_parallel_requests`.
Type a monthly request volume to project both costs; the config files are not changed.
"""

    rows: reactive[tuple[CostRow, ...]] = reactive(())
    monthly: reactive[int] = reactive(0)

    def compose(self) -> ComposeResult:
        yield Static("", id="eval-cost-table")
        with Horizontal(id="eval-monthly-row"):
            yield Label("Requests a month ", id="eval-monthly-label")
            yield MonthlyInput(
                type="integer",
                validators=[Integer(minimum=0)],
                compact=True,
                id="eval-monthly",
                placeholder="e.g. 100000",
            )
        yield Static("", id="eval-savings")
        yield Static("", id="eval-cost-notes")

    def _render_all(self) -> None:
        projected = at_volume(self.rows, self.monthly)
        table = self.query_one("#eval-cost-table", Static)
        if not projected:
            table.update(Text("No eval selected.", "dim"))
        else:
            table.update(cost_table(projected, self.monthly))
        self.query_one("#eval-savings", Static).update(savings_line(projected, self.monthly))
        self.query_one("#eval-cost-notes", Static).update(notes(projected))

    def watch_rows(self) -> None:
        self._render_all()

    def watch_monthly(self) -> None:
        self._render_all()
