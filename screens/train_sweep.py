"""A sweep's summary: its variants ranked by best eval loss; k keeps the best one's weights."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from screens.widgets.train_live import duration
from workbench.train.runs import RunSummary


def sweep_rows(runs: Sequence[RunSummary]) -> list[tuple[str, ...]]:
    """One row per variant, best first (the order `sweep_summary` gives)."""
    return [
        (
            str(rank),
            run.variant or "-",
            run.id,
            run.state,
            f"{run.best_eval_loss:.4f}" if run.best_eval_loss is not None else "-",
            str(run.best_step or "-"),
            duration(run.duration_s),
        )
        for rank, run in enumerate(runs, 1)
    ]


class SweepScreen(ModalScreen[bool]):
    """Ranked variants of one sweep; dismissed with True when the user asks to keep the best."""

    HELP = """\
The variants of the latest sweep, ranked by their best eval loss (lowest first).
**k** keeps the best variant and deletes the other variants' weights (their logs stay);
**Esc** closes. Start a sweep with `workbench sweep start FILE`.
"""
    BINDINGS = [
        Binding("k", "keep", "Keep best", id="sweep.keep", tooltip="Keep the best variant only"),
        Binding("escape,w", "close", "Close", id="sweep.close", tooltip="Close the summary"),
    ]

    def __init__(self, sweep_dir: Path, runs: Sequence[RunSummary], kept: str = "") -> None:
        super().__init__(classes="data-dialog")
        self.sweep_dir = sweep_dir
        self.runs = list(runs)
        self.kept = kept

    def compose(self) -> ComposeResult:
        with Vertical(id="train-sweep-panel") as panel:
            panel.border_title = f"Sweep {self.sweep_dir.name}"
            panel.border_subtitle = "k keeps the best · Esc closes"
            table: DataTable[str] = DataTable(id="train-sweep-table", cursor_type="row")
            table.add_columns("#", "variant", "run", "state", "best eval", "at step", "took")
            table.add_rows(sweep_rows(self.runs))
            yield table
            note = f"kept: [b]{self.kept}[/b]" if self.kept else "no variant kept yet"
            yield Static(note, id="train-sweep-note")

    def action_keep(self) -> None:
        self.dismiss(True)

    def action_close(self) -> None:
        self.dismiss(False)
