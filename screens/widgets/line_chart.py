"""A line chart in braille cells: one or more series (x, y) with a colour each, and a legend."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

# Braille dot bits, by (column 0-1, row 0-3) inside one cell.
DOTS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))
BRAILLE = 0x2800
AXIS_WIDTH = 7
COLOURS = ("cyan", "magenta", "green", "yellow", "blue", "red", "white")


@dataclass(frozen=True)
class Series:
    """One curve: `markers` draws a dot per point (eval loss) instead of a line."""

    name: str
    points: tuple[tuple[float, float], ...]
    colour: str = "cyan"
    markers: bool = False


@dataclass(frozen=True)
class Bounds:
    x0: float
    x1: float
    y0: float
    y1: float


def finite_points(series: Sequence[Series]) -> list[tuple[float, float]]:
    return [(x, y) for item in series for x, y in item.points if math.isfinite(y)]


def bounds(series: Sequence[Series]) -> Bounds | None:
    """The box holding every finite point (a flat curve gets a little height)."""
    points = finite_points(series)
    if not points:
        return None
    xs, ys = [x for x, _ in points], [y for _, y in points]
    y0, y1 = min(ys), max(ys)
    if y1 - y0 < 1e-9:
        y0, y1 = y0 - 0.5, y1 + 0.5
    return Bounds(min(xs), max(max(xs), min(xs) + 1), y0, y1)


def distinct_dots(dots: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Dots without consecutive repeats: thousands of steps fall on a few hundred dots, and
    drawing a line between two equal dots only costs time."""
    kept: list[tuple[int, int]] = []
    for dot in dots:
        if not kept or kept[-1] != dot:
            kept.append(dot)
    return kept


class Canvas:
    """Cells of braille dots, each remembering the colour of the last series drawn into it."""

    def __init__(self, width: int, height: int, box: Bounds) -> None:
        self.width, self.height, self.box = width, height, box
        self.bits = [[0] * width for _ in range(height)]
        self.colours: list[list[str | None]] = [[None] * width for _ in range(height)]
        self.marks: dict[tuple[int, int], str] = {}

    def dot(self, x: float, y: float) -> tuple[int, int]:
        """The dot (column, row from the top) for a data point."""
        box = self.box
        col = round((x - box.x0) / (box.x1 - box.x0) * (self.width * 2 - 1))
        row = round((box.y1 - y) / (box.y1 - box.y0) * (self.height * 4 - 1))
        return col, row

    def set(self, col: int, row: int, colour: str) -> None:
        if 0 <= col < self.width * 2 and 0 <= row < self.height * 4:
            self.bits[row // 4][col // 2] |= DOTS[col % 2][row % 4]
            self.colours[row // 4][col // 2] = colour

    def line(self, start: tuple[int, int], end: tuple[int, int], colour: str) -> None:
        steps = max(abs(end[0] - start[0]), abs(end[1] - start[1]), 1)
        for i in range(steps + 1):
            self.set(
                round(start[0] + (end[0] - start[0]) * i / steps),
                round(start[1] + (end[1] - start[1]) * i / steps),
                colour,
            )

    def draw(self, series: Series) -> None:
        dots = distinct_dots(self.dot(x, y) for x, y in series.points if math.isfinite(y))
        if series.markers:
            for col, row in dots:
                self.marks[(row // 4, min(self.width - 1, col // 2))] = series.colour
            return
        for start, end in itertools.pairwise(dots):
            self.line(start, end, series.colour)
        if len(dots) == 1:
            self.set(*dots[0], series.colour)

    def rows(self) -> list[Text]:
        lines = []
        for y in range(self.height):
            text = Text()
            for x in range(self.width):
                if (mark := self.marks.get((y, x))) is not None:
                    text.append("●", style=f"bold {mark}")
                elif self.bits[y][x]:
                    text.append(chr(BRAILLE + self.bits[y][x]), style=self.colours[y][x] or "")
                else:
                    text.append(" ")
            lines.append(text)
        return lines


def render_chart(series: Sequence[Series], width: int, height: int, empty: str) -> Text:
    """The whole chart: y labels, the plot, an x axis line and a legend."""
    box = bounds(series)
    plot_width = max(4, width - AXIS_WIDTH)
    plot_height = max(2, height - 2)
    if box is None:
        return Text(empty, style="dim")
    canvas = Canvas(plot_width, plot_height, box)
    for item in series:
        canvas.draw(item)
    text = Text()
    for index, row in enumerate(canvas.rows()):
        text.append(_y_label(index, plot_height, box), style="dim")
        text.append_text(row)
        text.append("\n")
    text.append(_x_axis(box, plot_width), style="dim")
    text.append("\n")
    text.append_text(legend(series))
    return text


def _y_label(index: int, height: int, box: Bounds) -> str:
    if index == 0:
        return f"{box.y1:>6.4g}│"
    if index == height - 1:
        return f"{box.y0:>6.4g}│"
    return " " * (AXIS_WIDTH - 1) + "│"


def _x_axis(box: Bounds, width: int) -> str:
    left, right = f"{box.x0:g}", f"step {box.x1:g}"
    return " " * AXIS_WIDTH + left + " " * max(1, width - len(left) - len(right)) + right


def legend(series: Sequence[Series]) -> Text:
    text = Text(" " * AXIS_WIDTH)
    for item in series:
        symbol = "●" if item.markers else "━"
        text.append(f"{symbol} ", style=f"bold {item.colour}")
        text.append(f"{item.name}   ")
    return text


class LineChart(Widget):
    """Draws `series`; re-renders only when they are replaced."""

    DEFAULT_CSS = "LineChart { height: 12; }"

    series: reactive[tuple[Series, ...]] = reactive((), always_update=True)
    empty_text: reactive[str] = reactive("no points yet")

    def render(self) -> Text:
        return render_chart(self.series, self.size.width, self.size.height, self.empty_text)
