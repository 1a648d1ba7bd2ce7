"""The runs list: newest first, with state, progress, best eval loss and duration."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import DataTable

from screens.widgets.train_live import duration
from workbench.train.runs import RunSummary

COLUMNS: tuple[tuple[str, int], ...] = (
    ("run", 22),
    ("state", 8),
    ("step", 7),
    ("best eval", 9),
    ("took", 6),
)
STATE_STYLES = {
    "running": "bold green",
    "starting": "green",
    "finished": "cyan",
    "failed": "bold red",
    "lost": "red",
    "stopped": "yellow",
    "stopping": "yellow",
}


def run_row(run: RunSummary, marked: bool) -> tuple[Text | str, ...]:
    """One run as a row; a ◆ marks the runs to overlay."""
    name = Text(overflow="ellipsis", no_wrap=True)
    name.append("◆ " if marked else "  ", "bold magenta")
    name.append(run.id + (f" {run.variant}" if run.variant else ""))
    best = f"{run.best_eval_loss:.4f}" if run.best_eval_loss is not None else "-"
    return (
        name,
        Text(run.state, STATE_STYLES.get(run.state, "")),
        f"{run.step}/{run.total_steps}",
        best,
        duration(run.duration_s),
    )


class RunsTable(DataTable[Text | str]):
    """Every run of the workspace, newest first; the highlighted one is shown on the right."""

    HELP = """\
Every training run of this workspace, newest first: its state, progress, best eval loss and
how long it has trained. **↑/↓** (or **j/k**) shows another run on the right; **space** marks
runs and **o** overlays the marked runs' curves; **s** stops, **r** resumes, **e** exports the
highlighted run.
"""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "j",
            "cursor_down",
            "Next run",
            id="train.runs.down",
            show=False,
            tooltip="Show the next (older) run",
        ),
        Binding(
            "k",
            "cursor_up",
            "Previous run",
            id="train.runs.up",
            show=False,
            tooltip="Show the previous (newer) run",
        ),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, id=id)
        self.ids: list[str] = []

    def on_mount(self) -> None:
        self.border_title = "Runs"
        for label, width in COLUMNS:
            self.add_column(label, width=width, key=label)

    def show(self, runs: Sequence[RunSummary], marked: set[str], selected: str | None) -> None:
        """Replace the rows, keeping the highlighted run highlighted."""
        newest_first = list(reversed(runs))
        ids = [run.id for run in newest_first]
        if ids == self.ids:
            for run in newest_first:
                for (label, _), cell in zip(COLUMNS, run_row(run, run.id in marked), strict=True):
                    self.update_cell(run.id, label, cell)
            return
        self.clear()
        self.ids = ids
        for run in newest_first:
            self.add_row(*run_row(run, run.id in marked), key=run.id)
        if selected in ids:
            self.move_cursor(row=ids.index(selected), animate=False)

    @property
    def highlighted_id(self) -> str | None:
        if not self.ids or not 0 <= self.cursor_row < len(self.ids):
            return None
        return self.ids[self.cursor_row]
