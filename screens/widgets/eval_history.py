"""Past evals, newest first: one row each, to pick one and to compare them over time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.text import Text
from textual.widgets import DataTable

from screens.eval_text import model_name, state_text, usd, win_rate_text, wtl

if TYPE_CHECKING:
    from workbench.evaluate.report import EvalSummary

COLUMNS: tuple[tuple[str, int | None], ...] = (
    ("eval", 20),
    ("state", 8),
    ("model", 16),
    ("vs", 6),
    ("items", 7),
    ("outcomes", 13),
    ("win rate [95% CI]", 17),
    ("err", 3),
    ("judge $", 8),
)


def history_row(summary: EvalSummary) -> tuple[Text | str, ...]:
    """One eval as a row of the history table."""
    return (
        summary.id,
        state_text(summary.state),
        Text(model_name(summary.model), overflow="ellipsis", no_wrap=True),
        summary.baseline,
        f"{summary.n}/{summary.total}",
        wtl(summary.wins, summary.ties, summary.losses),
        win_rate_text(summary, compact=True),
        Text(str(summary.errors), "bold red" if summary.errors else "dim"),
        usd(summary.judge_cost_usd),
    )


class EvalHistoryTable(DataTable[Text | str]):
    """Every eval of the workspace, newest first; the highlighted one is shown below."""

    HELP = """\
Every eval of this workspace, newest first: the model, the old pipeline it was compared with,
wins/ties/losses and the win rate with its 95% interval. Compare rows to see whether a new
model is better than the last one (an interval that overlaps the previous one means the
difference may be noise). **↑/↓** shows another eval below; **n** starts a new one.
"""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, id=id)
        self.ids: list[str] = []

    def on_mount(self) -> None:
        self.border_title = "Evals"
        for label, width in COLUMNS:
            self.add_column(label, width=width, key=label)

    def show(self, evals: Sequence[EvalSummary], selected: str) -> None:
        """Fill the table (newest first) and keep the cursor on `selected`."""
        newest_first = list(reversed(evals))
        self.clear()
        self.ids = [summary.id for summary in newest_first]
        for summary in newest_first:
            self.add_row(*history_row(summary), key=summary.id)
        self.border_title = f"Evals ({len(self.ids)})"
        if selected in self.ids:
            self.move_cursor(row=self.ids.index(selected), animate=False)

    @property
    def highlighted_id(self) -> str:
        """The id of the eval under the cursor ('' when the table is empty)."""
        row = self.cursor_row
        return self.ids[row] if 0 <= row < len(self.ids) else ""
