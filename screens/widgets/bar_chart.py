"""A vertical bar chart in text cells (eighth blocks), for histograms."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

BLOCKS = " ▁▂▃▄▅▆▇█"


def bar_column(value: int, peak: int, height: int) -> list[str]:
    """One bar, top line first, in eighths of a cell."""
    eighths = round(value / peak * height * 8) if peak else 0
    if value and not eighths:
        eighths = 1  # a non-empty bin never looks empty
    cells = []
    for line in range(height - 1, -1, -1):
        filled = max(0, min(8, eighths - line * 8))
        cells.append(BLOCKS[filled])
    return cells


def chart_lines(bars: Sequence[tuple[str, int]], width: int, height: int) -> tuple[list[str], int]:
    """The chart's lines (bars only) and the width of one bar."""
    if not bars:
        return [], 0
    bar_width = max(1, width // len(bars) - 1)
    peak = max(value for _, value in bars)
    columns = [bar_column(value, peak, height) for _, value in bars]
    lines = [" ".join(column[line] * bar_width for column in columns) for line in range(height)]
    return lines, bar_width


class BarChart(Widget):
    """Labelled bars: `bars` is a list of (label, value), drawn left to right."""

    bars: reactive[tuple[tuple[str, int], ...]] = reactive(())
    chart_height: reactive[int] = reactive(6)

    def render(self) -> Text:
        lines, bar_width = chart_lines(self.bars, self.size.width, self.chart_height)
        if not lines:
            return Text("no data", style="dim")
        text = Text("\n".join(lines), style="bold")
        text.append("\n" + self._axis(bar_width), style="dim")
        return text

    def _axis(self, bar_width: int) -> str:
        """Labels under their bars, left to right, skipping any that would overlap."""
        width = len(self.bars) * (bar_width + 1)
        line = [" "] * width
        free_from = 0
        for index, (label, _) in enumerate(self.bars):
            start = index * (bar_width + 1)
            if start >= free_from and start + len(label) <= width:
                line[start : start + len(label)] = label
                free_from = start + len(label) + 1
        return "".join(line)[: self.size.width]

    def get_content_height(self, container: object, viewport: object, width: int) -> int:
        return self.chart_height + 1
