"""A virtual table of examples: it asks the store for pages as the user scrolls.

Only the pages on screen (and the ones beside them) are loaded, so a table of 100,000 examples
opens as fast as one of 100. Rows are drawn with the Line API; the header is line 0 and stays put.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events, on, work
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.worker import Worker, WorkerState, get_current_worker

from workbench.data.store import ExampleRow, ExampleStore, Query

PAGE_SIZE = 200
"""Rows fetched per store call."""
PAGES_KEPT = 12
"""Pages kept in memory; the ones furthest from the cursor are dropped first."""

SORT_COLUMNS = {"id": "#", "split": "split", "flag": "flag", "output_tokens": "tok"}
SPLIT_LABELS = {"train": "train", "val": "val", "test": "test", "unassigned": "·"}
FLAG_LABELS = {"ok": "", "bad": "bad", "needs-review": "review"}
FLAG_COMPONENTS = {"bad": "examples-table--flag-bad", "needs-review": "examples-table--flag-review"}


@dataclass(frozen=True)
class Column:
    title: str
    width: int
    align: str = "left"


FIXED_COLUMNS = (
    Column("#", 5, "right"),
    Column("split", 5),
    Column("flag", 6),
    Column("tags", 10),
)
INPUT_COLUMN = "input (first line)"
TAIL_COLUMNS = (Column("tok", 5, "right"), Column("prob", 4, "right"))
"""Output length in tokens (estimated) and how many problems validation found."""
GAP = 1
NO_MATCH = "No examples match. Esc clears the search, f changes the filters."


def column_widths(width: int) -> list[int]:
    """Widths of the seven columns for a table this wide; the input column takes the rest."""
    fixed = [c.width for c in FIXED_COLUMNS] + [c.width for c in TAIL_COLUMNS]
    gaps = GAP * (len(fixed) + 1)
    preview = max(8, width - sum(fixed) - gaps)
    return [*fixed[: len(FIXED_COLUMNS)], preview, *fixed[len(FIXED_COLUMNS) :]]


def row_cells(row: ExampleRow) -> list[str]:
    """What a row shows, column by column."""
    return [
        str(row.id),
        SPLIT_LABELS.get(row.split, row.split),
        FLAG_LABELS.get(row.flag, row.flag),
        ", ".join(row.tags),
        row.preview,
        f"{row.output_tokens:,}",
        str(row.problem_count) if row.problem_count else "",
    ]


def header_cells(query: Query) -> list[str]:
    """Column titles, with ▲ or ▼ on the sorted column."""
    titles = [c.title for c in FIXED_COLUMNS] + [INPUT_COLUMN] + [c.title for c in TAIL_COLUMNS]
    if query.sort in SORT_COLUMNS:
        index = titles.index(SORT_COLUMNS[query.sort])
        titles[index] = f"{titles[index]}{'▼' if query.descending else '▲'}"
    return titles


ALIGNS = [c.align for c in FIXED_COLUMNS] + ["left"] + [c.align for c in TAIL_COLUMNS]


def fit(text: str, width: int, align: str) -> str:
    """Crop or pad to exactly `width` cells (an ellipsis marks a cropped text)."""
    text = " ".join(text.split())
    if cell_len(text) > width:
        text = set_cell_size(text, max(0, width - 1)) + "…"
    return set_cell_size(text.rjust(width) if align == "right" else text, width)


class ExamplesTable(ScrollView, can_focus=True):
    """The examples the current query selects, one per line, loaded a page at a time."""

    HELP = """\
The examples table: one line per example, only the visible pages are loaded.

- **j** / **k** (or ↓ / ↑) move, **PgDn** / **PgUp** jump a screen, **g** / **G** first and last
- the columns: **#** id, **split**, **flag**, **tags**, the first line of the input,
  **tok** the output's length in tokens (estimated), **prob** how many problems validation found
- the pane on the right shows the highlighted example in full
"""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j,down", "move(1)", "Next", id="table.next", show=False, tooltip="Next example"),
        Binding(
            "k,up",
            "move(-1)",
            "Previous",
            id="table.previous",
            show=False,
            tooltip="Previous example",
        ),
        Binding(
            "pagedown",
            "page(1)",
            "Page down",
            id="table.page_down",
            show=False,
            tooltip="One screen of examples down",
        ),
        Binding(
            "pageup",
            "page(-1)",
            "Page up",
            id="table.page_up",
            show=False,
            tooltip="One screen of examples up",
        ),
        Binding(
            "g,home",
            "first",
            "First",
            id="table.first",
            show=False,
            tooltip="The first example",
        ),
        Binding("G,end", "last", "Last", id="table.last", show=False, tooltip="The last example"),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "examples-table--header",
        "examples-table--cursor",
        "examples-table--cursor-blurred",
        "examples-table--pending",
        "examples-table--flag-bad",
        "examples-table--flag-review",
        "examples-table--problems",
        "examples-table--dim",
    }

    cursor: reactive[int] = reactive(0)
    """Index of the highlighted row within the query's results."""
    total: reactive[int] = reactive(0)
    """How many rows the query selects."""

    @dataclass
    class RowsLoaded(Message):
        """Pages of rows arrived from the store (`total` only when they were counted)."""

        table: ExamplesTable
        generation: int
        pages: dict[int, list[ExampleRow]]
        total: int | None
        fresh: bool = False
        """The first rows of a new query: they replace whatever the table showed."""

    @dataclass
    class RowHighlighted(Message):
        """The cursor is on this row (posted once its page is loaded)."""

        table: ExamplesTable
        index: int
        row: ExampleRow

    @dataclass
    class Counted(Message):
        """The query was counted: `total` rows match it."""

        table: ExamplesTable
        total: int

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.store: ExampleStore | None = None
        self.view = Query()
        self.generation = 0
        self._pages: dict[int, list[ExampleRow]] = {}
        self._in_flight: set[int] = set()
        self._announced: tuple[int, int] | None = None
        self._fetch_scheduled = False
        self._fresh = False
        """False from a new query until its count arrives: rows on screen are the old ones."""

    # --- loading -----------------------------------------------------------------------

    def show(self, store: ExampleStore, query: Query, keep_cursor: bool = False) -> None:
        """Show what `query` selects. Rows on screen stay until the new ones arrive."""
        self.store = store
        self.view = query
        self.generation += 1
        self._in_flight.clear()
        self._announced = None
        self._fresh = False
        if not keep_cursor:
            self.cursor = 0
            self.scroll_to(y=0, animate=False, immediate=True)
        self._fetch_query(store, query, self.generation, self._visible_pages())

    def reload(self) -> None:
        """Read the rows again (after a change), keeping the cursor where it is."""
        if self.store is not None:
            self.show(self.store, self.view, keep_cursor=True)

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="examples-query",
        description="search the examples",
    )
    def _fetch_query(
        self, store: ExampleStore, query: Query, generation: int, pages: tuple[int, ...]
    ) -> None:
        """The visible rows first (they are what the user waits for), then the count."""
        worker = get_current_worker()
        loaded = {page: store.rows(query, page * PAGE_SIZE, PAGE_SIZE) for page in pages}
        first = loaded.get(0)
        exact = len(first) if first is not None and len(first) < PAGE_SIZE else None
        self.post_message(self.RowsLoaded(self, generation, loaded, exact, fresh=True))
        if exact is None and not worker.is_cancelled:
            self.post_message(self.RowsLoaded(self, generation, {}, store.count(query)))

    @work(
        thread=True,
        exclusive=False,  # pages accumulate: a new page never makes another one stale
        exit_on_error=False,
        group="examples-pages",
        description="load examples",
    )
    def _fetch_pages(
        self, store: ExampleStore, query: Query, generation: int, pages: tuple[int, ...]
    ) -> None:
        loaded = {page: store.rows(query, page * PAGE_SIZE, PAGE_SIZE) for page in pages}
        self.post_message(self.RowsLoaded(self, generation, loaded, None))

    @on(RowsLoaded)
    def _rows_loaded(self, message: RowsLoaded) -> None:
        message.stop()
        if message.generation != self.generation:
            return
        if message.fresh:
            self._pages.clear()
            self._fresh = True
        self._pages.update(message.pages)
        self._in_flight.difference_update(message.pages)
        self._forget_far_pages()
        if message.total is not None:
            self.total = message.total
            self.post_message(self.Counted(self, message.total))
        elif message.fresh:
            # Until the count arrives, only the scrollbar may be off: the rows on screen are
            # all in the first pages, and a result shorter than a page is counted exactly.
            self.total = max(self.total, self._rows_loaded_from_top())
        clamped = min(self.cursor, max(0, self.total - 1))
        if clamped != self.cursor:
            self.cursor = clamped  # scrolls to it and announces it
        else:
            self._announce()  # its row may just have arrived; the view stays where it is
        self.refresh()

    def _rows_loaded_from_top(self) -> int:
        """Rows known to exist before the count arrives: the loaded pages from the first."""
        known = 0
        while (page := self._pages.get(known // PAGE_SIZE)) is not None:
            known += len(page)
            if len(page) < PAGE_SIZE:
                break
        return known

    @on(Worker.StateChanged)
    def _fetch_failed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR:
            self._in_flight.clear()  # the app reports the error; scrolling asks again

    def _forget_far_pages(self) -> None:
        """Keep PAGES_KEPT pages, dropping those furthest from what is on screen."""
        here = int(self.scroll_y) // PAGE_SIZE
        while len(self._pages) > PAGES_KEPT:
            del self._pages[max(self._pages, key=lambda page: abs(page - here))]

    def _visible_pages(self) -> tuple[int, ...]:
        first = int(self.scroll_y) // PAGE_SIZE
        last = (int(self.scroll_y) + max(self.size.height, 1)) // PAGE_SIZE
        return tuple(range(first, last + 1))

    def _want(self, page: int) -> None:
        """Note a missing page; one fetch after this refresh loads every missing page."""
        if page in self._in_flight or page in self._pages:
            return
        self._in_flight.add(page)
        if not self._fetch_scheduled:
            self._fetch_scheduled = True
            self.call_after_refresh(self._fetch_wanted)

    def _fetch_wanted(self) -> None:
        self._fetch_scheduled = False
        wanted = tuple(sorted(p for p in self._in_flight if p not in self._pages))
        if wanted and self.store is not None:
            self._fetch_pages(self.store, self.view, self.generation, wanted)

    @property
    def is_current(self) -> bool:
        """Whether the rows on screen are those of the query shown (not the previous one's)."""
        return self._fresh

    def row_at(self, index: int) -> ExampleRow | None:
        """The row at `index` if its page is loaded."""
        page = self._pages.get(index // PAGE_SIZE)
        offset = index % PAGE_SIZE
        return page[offset] if page is not None and offset < len(page) else None

    @property
    def current_row(self) -> ExampleRow | None:
        """The highlighted row, if loaded."""
        return self.row_at(self.cursor)

    # --- cursor ----------------------------------------------------------------------------

    def watch_total(self, total: int) -> None:
        self.virtual_size = Size(self.scrollable_content_region.width, total + 1)

    def on_resize(self) -> None:
        self.virtual_size = Size(self.scrollable_content_region.width, self.total + 1)

    def validate_cursor(self, cursor: int) -> int:
        return max(0, min(cursor, self.total - 1))

    def watch_cursor(self, old: int, new: int) -> None:
        self._scroll_to_cursor()
        self.refresh()
        self._announce()

    def _announce(self) -> None:
        if not self._fresh:
            return
        row = self.current_row
        if row is None or self._announced == (self.generation, row.id):
            if row is None and self.total:
                self._want(self.cursor // PAGE_SIZE)
            return
        self._announced = (self.generation, row.id)
        self.post_message(self.RowHighlighted(self, self.cursor, row))

    def _scroll_to_cursor(self) -> None:
        rows_shown = max(1, self.size.height - 1)
        top = int(self.scroll_y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, immediate=True)
        elif self.cursor >= top + rows_shown:
            self.scroll_to(y=self.cursor - rows_shown + 1, animate=False, immediate=True)

    def action_move(self, delta: int) -> None:
        self.cursor += delta

    def action_page(self, direction: int) -> None:
        self.cursor += direction * max(1, self.size.height - 2)

    def action_first(self) -> None:
        self.cursor = 0

    def action_last(self) -> None:
        self.cursor = self.total - 1

    def on_click(self, event: events.Click) -> None:
        if event.y >= 1:
            self.cursor = int(self.scroll_y) + event.y - 1

    # --- drawing --------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        if y == 0:
            return self._line(header_cells(self.view), width, "examples-table--header")
        index = int(self.scroll_y) + y - 1
        if index >= self.total:
            if index == 0 and self._fresh:
                return self._line([NO_MATCH], width, "examples-table--pending")
            return Strip.blank(width, self.rich_style)
        row = self.row_at(index)
        if row is None:
            self._want(index // PAGE_SIZE)
            return self._line(["…"], width, "examples-table--pending")
        return self._row_line(row, width, highlight=index == self.cursor)

    def _cursor_style(self) -> Style:
        if self.has_focus:
            return self._part("examples-table--cursor")
        return self._part("examples-table--cursor-blurred")

    def _part(self, component: str) -> Style:
        """A component's own style (its colours, not the widget's background)."""
        return self.get_component_rich_style(component, partial=True)

    def _row_line(self, row: ExampleRow, width: int, highlight: bool) -> Strip:
        base = self.rich_style + (self._cursor_style() if highlight else Style())
        styles = [base] * 7
        if not highlight:
            dim = base + self._part("examples-table--dim")
            styles[0] = styles[1] = styles[3] = dim
            styles[6] = base + self._part("examples-table--problems")
            if row.flag in FLAG_COMPONENTS:
                styles[2] = base + self._part(FLAG_COMPONENTS[row.flag])
        return self._segments(row_cells(row), width, styles, base)

    def _line(self, cells: list[str], width: int, component: str) -> Strip:
        style = self.rich_style + self.get_component_rich_style(component)
        if len(cells) == 1:
            return Strip([Segment(fit(f" {cells[0]}", width, "left"), style)], width)
        return self._segments(cells, width, [style] * len(cells), style)

    def _segments(self, cells: list[str], width: int, styles: list[Style], base: Style) -> Strip:
        segments: list[Segment] = [Segment(" " * GAP, base)]
        for text, size, align, style in zip(
            cells, column_widths(width), ALIGNS, styles, strict=True
        ):
            segments += [Segment(fit(text, size, align), style), Segment(" " * GAP, base)]
        return Strip(segments).adjust_cell_length(width, base)

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    def rows_on_screen(self) -> Iterable[ExampleRow]:
        """The loaded rows currently visible (for tests and the benchmark)."""
        top = int(self.scroll_y)
        for index in range(top, min(self.total, top + self.size.height - 1)):
            row = self.row_at(index)
            if row is not None:
                yield row
