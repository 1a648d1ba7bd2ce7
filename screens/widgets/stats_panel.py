"""The stats panel: examples per split, flags, problems, duplicates, and a length histogram."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from rich.console import JustifyMethod
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import Static

from screens.widgets.bar_chart import BarChart
from workbench.data.store import SPLITS, ExampleStore, Query

if TYPE_CHECKING:
    from workbench.data.stats import DataStats as EngineStats

BINS = 10


@dataclass(frozen=True)
class DataStats:
    """What the panel shows; every count is of live (not deleted) examples."""

    total: int
    splits: dict[str, int]
    flags: dict[str, int]
    with_problems: int
    deleted: int
    histogram: tuple[tuple[str, int], ...]
    """(label, count) per output-length bin; the last bin also holds the longest outliers."""
    duplicates: int | None = None
    """Copies of another example (exact); None until the full count is in."""
    near_duplicates: int | None = None
    """Copies of another example with small changes; None until counted."""
    quarantined: int | None = None
    problems: tuple[tuple[str, str, int], ...] = ()
    """(severity, code, examples) as the last validation recorded them."""
    notes: tuple[str, ...] = field(default=())


def with_full_stats(quick: DataStats, full: EngineStats) -> DataStats:
    """The quick counts completed with what a full pass over the examples found."""
    tokens = full.tokens
    estimated = " (estimated)" if tokens.note else ""
    notes = [
        f"Conversations{estimated}: median {tokens.p50:,} tok, 90% ≤ {tokens.p90:,},"
        f" longest {tokens.max:,}; {tokens.over_limit:,} over max_seq_length {tokens.limit:,}."
    ]
    return replace(
        quick,
        duplicates=full.exact_duplicates,
        near_duplicates=full.near_duplicates,
        quarantined=full.quarantined,
        problems=tuple(full.problems),
        notes=tuple(notes),
    )


def nice_step(span: float, bins: int = BINS) -> int:
    """A round bin width (1, 2 or 5 times a power of ten) giving about `bins` bins."""
    raw = max(1.0, span / bins)
    power = 10 ** math.floor(math.log10(raw))
    return int(next(m * power for m in (1, 2, 5, 10) if m * power >= raw))


def token_at(store: ExampleStore, offset: int) -> int:
    """The output length at a rank (shortest first)."""
    rows = store.rows(Query(sort="output_tokens"), offset=offset, limit=1)
    return rows[0].output_tokens if rows else 0


def histogram(store: ExampleStore, total: int) -> tuple[tuple[str, int], ...]:
    """Output-token histogram up to the 98th percentile, counted bin by bin with the index."""
    if not total:
        return ()
    top = token_at(store, min(total - 1, int(total * 0.98)))
    step = nice_step(top + 1)
    bars = []
    for lo in range(0, top + 1, step):
        last = lo + step > top
        query = Query(min_tokens=lo, max_tokens=None if last else lo + step - 1)
        bars.append((f"{lo}+" if last else str(lo), store.count(query)))
    return tuple(bars)


def stats_from_store(store: ExampleStore) -> DataStats:
    """Everything the panel shows, from indexed counts (fast on 100k examples)."""
    total = store.count(Query())
    return DataStats(
        total=total,
        splits=store.split_counts(),
        flags={flag: store.count(Query(flag=flag)) for flag in ("bad", "needs-review")},
        with_problems=store.count(Query(has_problems=True)),
        deleted=store.count(Query(deleted=True)),
        histogram=histogram(store, total),
    )


def summary_table(stats: DataStats) -> Table:
    """Two columns: the splits on the left, what needs attention on the right."""
    table = Table.grid(padding=(0, 1))
    justifies: tuple[JustifyMethod, ...] = ("left", "right", "left", "right")
    for justify in justifies:
        table.add_column(justify=justify)
    left = [("examples", Text(f"{stats.total:,}", style="bold"))] + [
        (split, Text(f"{stats.splits.get(split, 0):,}")) for split in SPLITS
    ]
    right = [
        ("with problems", _count(stats.with_problems, "red")),
        ("flagged bad", _count(stats.flags.get("bad", 0), "red")),
        ("needs review", _count(stats.flags.get("needs-review", 0), "yellow")),
        ("duplicates", _duplicates(stats)),
        ("quarantined", _maybe(stats.quarantined, "red")),
        ("deleted", Text(f"{stats.deleted:,}")),
    ]
    left += [("", Text(""))] * (len(right) - len(left))
    for (name, value), (other, count) in zip(left, right, strict=True):
        table.add_row(Text(name, style="dim"), value, Text(f"  {other}", style="dim"), count)
    return table


def _duplicates(stats: DataStats) -> Text:
    if stats.duplicates is None:
        return Text("…", style="dim")
    text = _count(stats.duplicates, "yellow")
    if stats.near_duplicates:
        text.append(f" +{stats.near_duplicates:,} near", style="yellow")
    return text


def _maybe(value: int | None, style: str) -> Text:
    return Text("…", style="dim") if value is None else _count(value, style)


def problem_lines(stats: DataStats, shown: int = 4) -> str:
    """`error empty-content: 1 · warning duplicate: 3 ...` (the most frequent first)."""
    ranked = sorted(stats.problems, key=lambda p: (p[0] != "error", -p[2]))
    return "  ".join(f"{code} {count:,}" for _, code, count in ranked[:shown])


def _count(value: int, style: str) -> Text:
    return Text(f"{value:,}", style=style if value else "")


class StatsPanel(Vertical, can_focus=True):
    """Counts per split, flags, problems and duplicates; a histogram of output lengths."""

    HELP = """\
Stats of every live example (deleted ones aside): how many per split, how many flagged or with
problems, exact duplicates, and a histogram of the answers' length in tokens (estimated;
the last bar also holds the longest few percent). Duplicates and whole-conversation lengths
take a pass over every example: they show a moment later. **x** hides the panel.
"""

    stats: reactive[DataStats | None] = reactive(None)

    def compose(self) -> ComposeResult:
        yield Static("Counting…", id="stats-summary")
        yield Static("Output length (tokens)", classes="stats-heading")
        yield BarChart(id="stats-chart")
        yield Static("", id="stats-notes")

    def on_mount(self) -> None:
        self.border_title = "Stats"

    def watch_stats(self, stats: DataStats | None) -> None:
        if stats is None:
            return
        self.query_one("#stats-summary", Static).update(summary_table(stats))
        self.query_one("#stats-chart", BarChart).bars = stats.histogram
        problems = problem_lines(stats)
        notes = [f"Problems: {problems}" if problems else "", *stats.notes]
        self.query_one("#stats-notes", Static).update("\n".join(n for n in notes if n))
