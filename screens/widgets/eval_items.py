"""The items of one eval: outcome, whether the judge's two orders agreed, input and reason."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.text import Text
from textual import events
from textual.widgets import DataTable

from screens.eval_text import one_line, orders_text, outcome_text, reason_of

if TYPE_CHECKING:
    from workbench.evaluate.report import ReportItem

FIXED = (("#", 4), ("example", 7), ("outcome", 7), ("orders", 9), ("input", 34))
MIN_REASON = 20


def item_row(entry: ReportItem, reason_width: int) -> tuple[Text | str, ...]:
    """One item as a row: index, example id, outcome, orders, input and reason on one line."""
    return (
        str(entry.item.index),
        f"#{entry.item.example_id}",
        outcome_text(entry),
        orders_text(entry),
        one_line(entry.item.input_text, FIXED[-1][1]),
        Text(one_line(reason_of(entry), reason_width), "red" if entry.error else ""),
    )


class EvalItemsTable(DataTable[Text | str]):
    """The eval's items as the filter selects them; Enter shows one side by side."""

    HELP = """\
Each input of the eval: the outcome for the fine-tuned model (**win**, **tie**, **loss**, or
**error** with the reason), whether the judge's two orders agreed (**disagree** counts as a tie
and hints at position bias), the input and the judge's reason.

**Enter** shows the item side by side (input, both answers, both verdicts), where **s** sends
it to the training data. **f** cycles the filter: all, losses, disagreements, errors.
"""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(cursor_type="row", id=id)
        self.entries: list[ReportItem] = []

    def on_mount(self) -> None:
        for label, width in FIXED:
            self.add_column(label, width=width, key=label)
        self.add_column("reason (fine-tuned in slot A)", width=MIN_REASON, key="reason")

    @property
    def reason_width(self) -> int:
        """What the last column can use: the table's width less the others and the padding."""
        used = sum(width for _, width in FIXED) + 2 * self.cell_padding * (len(FIXED) + 1)
        return max(MIN_REASON, self.scrollable_content_region.width - used - 1)

    def show(self, entries: Sequence[ReportItem]) -> None:
        """Show these items, keeping the cursor on the same item when it is still there."""
        keep = self.current.item.index if self.current is not None else None
        self.entries = list(entries)
        self._fill()
        indexes = [entry.item.index for entry in self.entries]
        if keep in indexes:
            self.move_cursor(row=indexes.index(keep), animate=False)

    def _fill(self) -> None:
        width = self.reason_width
        self.clear()
        self.columns["reason"].width = width  # type: ignore[index]
        for entry in self.entries:
            self.add_row(*item_row(entry, width), key=str(entry.item.index))

    def on_resize(self, event: events.Resize) -> None:
        if self.entries and self.columns["reason"].width != self.reason_width:  # type: ignore[index]
            row = self.cursor_row
            self._fill()
            self.move_cursor(row=row, animate=False)

    @property
    def current(self) -> ReportItem | None:
        """The item under the cursor."""
        row = self.cursor_row
        return self.entries[row] if 0 <= row < len(self.entries) else None
