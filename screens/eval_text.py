"""How the Eval screen words things: rates, money, outcomes and verdicts, as Rich text.

Pure functions of the engine's report objects, shared by the Eval screen and its widgets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from rich.text import Text

if TYPE_CHECKING:
    from workbench.evaluate.costs import CostRow
    from workbench.evaluate.events import Progress
    from workbench.evaluate.judge import Verdict
    from workbench.evaluate.report import EvalSummary, ReportItem


ItemFilter = Literal["all", "losses", "disagreements", "errors"]
FILTERS: tuple[ItemFilter, ...] = ("all", "losses", "disagreements", "errors")
FILTER_TITLES: dict[ItemFilter, str] = {
    "all": "all items",
    "losses": "losses only",
    "disagreements": "disagreements (the two orders differ)",
    "errors": "errors only",
}
OUTCOME_STYLES = {"win": "bold green", "tie": "yellow", "loss": "bold red", "error": "red"}
STATE_STYLES = {
    "finished": "green",
    "running": "bold yellow",
    "starting": "yellow",
    "queued": "yellow",
    "stopping": "yellow",
    "stopped": "yellow",
    "failed": "bold red",
    "lost": "bold red",
}
ACTIVE_STATES = frozenset({"starting", "running", "stopping"})
"""An eval whose process runs: followed live, and `s` stops it."""
RESUMABLE_STATES = frozenset({"queued", "stopped", "failed", "lost"})
"""An eval that did not finish: `r` (re)starts it."""


def pct(value: float | None, digits: int = 0) -> str:
    """`42%`; `n/a` when there is no value."""
    return "n/a" if value is None else f"{value * 100:.{digits}f}%"


def usd(value: float | None) -> str:
    """`$1,234.50` from a dollar up, `$0.00420` below; `n/a` when unknown."""
    if value is None:
        return "n/a"
    return f"${value:,.2f}" if value >= 1 else f"${value:.5f}"


def seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.2f} s"


def number(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def model_name(path: str) -> str:
    """The GGUF's file name (the spec keeps its absolute path)."""
    return Path(path).name


def win_rate_text(summary: EvalSummary, compact: bool = False) -> str:
    """`25% (95% CI 8%-50%)` (compact: `25% [8-50%]`), or `n/a` before the first outcome."""
    if summary.win_rate is None:
        return "n/a"
    if compact:
        low, high = pct(summary.ci_low).rstrip("%"), pct(summary.ci_high)
        return f"{pct(summary.win_rate)} [{low}-{high}]"
    return f"{pct(summary.win_rate)} (95% CI {pct(summary.ci_low)}-{pct(summary.ci_high)})"


def wtl(wins: int, ties: int, losses: int) -> Text:
    """`W/T/L 1/1/4` with each count in its colour."""
    return Text.assemble(
        "W/T/L ",
        (str(wins), OUTCOME_STYLES["win"]),
        "/",
        (str(ties), OUTCOME_STYLES["tie"]),
        "/",
        (str(losses), OUTCOME_STYLES["loss"]),
    )


def state_text(state: str) -> Text:
    return Text(state, STATE_STYLES.get(state, ""))


def outcome_of(entry: ReportItem) -> str:
    """win / tie / loss / error / pending."""
    if entry.error:
        return "error"
    return entry.outcome or "pending"


def outcome_text(entry: ReportItem) -> Text:
    outcome = outcome_of(entry)
    return Text(outcome, OUTCOME_STYLES.get(outcome, "dim italic"))


def orders_text(entry: ReportItem) -> Text:
    """Whether the two orders agreed (`disagree` stands out: it counts as a tie)."""
    if entry.disagreed:
        return Text("disagree", "bold yellow")
    if entry.result is not None and entry.result.identical:
        return Text("identical", "dim")
    if entry.result is not None and entry.outcome:
        return Text("agree", "dim")
    return Text("")


def filter_items(items: Sequence[ReportItem], chosen: ItemFilter) -> list[ReportItem]:
    """The items a filter keeps, in eval order."""
    if chosen == "losses":
        return [i for i in items if i.outcome == "loss" and not i.error]
    if chosen == "disagreements":
        return [i for i in items if i.disagreed]
    if chosen == "errors":
        return [i for i in items if i.error]
    return list(items)


def one_line(text: str, width: int) -> str:
    """Whitespace collapsed, cut to `width` with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: max(0, width - 1)] + "…"


def reason_of(entry: ReportItem) -> str:
    """The error, else the judge's reason in the fine-tuned-first order (else the other)."""
    if entry.error:
        return entry.error
    result = entry.result
    for verdict in (result.cb, result.bc) if result else ():
        if verdict is not None and verdict.ok and verdict.reason:
            return verdict.reason
    return ""


def verdict_line(verdict: Verdict | None, candidate_first: bool) -> Text:
    """`fine-tuned in slot A → old pipeline wins: reason` (slot letters turned into names)."""
    order = "fine-tuned in slot A" if candidate_first else "old pipeline in slot A"
    line = Text.assemble((order, "bold"), " → ")
    if verdict is None:
        line.append("not judged", "dim italic")
        return line
    if not verdict.ok:
        line.append(f"error: {verdict.error}", "red")
        return line
    line.append_text(_winner(verdict.winner, candidate_first))
    if verdict.cached:
        line.append(" (cached)", "dim")
    if verdict.reason:
        line.append(f": {verdict.reason}")
    return line


def _winner(winner: str, candidate_first: bool) -> Text:
    if winner not in ("A", "B"):
        return Text("tie", OUTCOME_STYLES["tie"])
    candidate_won = (winner == "A") == candidate_first
    if candidate_won:
        return Text("fine-tuned wins", OUTCOME_STYLES["win"])
    return Text("old pipeline wins", OUTCOME_STYLES["loss"])


def progress_line(progress: Progress) -> Text:
    """`4/6 done · W/T/L 1/1/2 · 0 errors` for a running eval."""
    line = Text.assemble(
        (f"{progress.done}/{progress.total}", "bold"), " done · ", wtl(*_counts(progress))
    )
    errors = f"{progress.errors} error{'' if progress.errors == 1 else 's'}"
    line.append(" · ")
    line.append(errors, "bold red" if progress.errors else "")
    return line


def _counts(progress: Progress) -> tuple[int, int, int]:
    return progress.wins, progress.ties, progress.losses


def judge_line(
    calls: int, cached: int, input_tokens: int, output_tokens: int, cost: float | None
) -> str:
    """`judge: 12 calls (0 cached) · 10,234 in / 512 out tokens · $0.01230`."""
    price = usd(cost) if cost is not None else "no price in eval.prices"
    return (
        f"judge: {calls:,} calls ({cached:,} cached) · {input_tokens:,} in / "
        f"{output_tokens:,} out tokens · {price}"
    )


def at_volume(rows: Sequence[CostRow], monthly: int) -> list[CostRow]:
    """The cost rows projected to `monthly` requests a month."""
    return [
        replace(
            row,
            monthly_cost_usd=None
            if row.cost_per_request_usd is None
            else row.cost_per_request_usd * monthly,
        )
        for row in rows
    ]


def savings_line(rows: Sequence[CostRow], monthly: int) -> Text:
    """What the fine-tuned model saves (or costs) a month against the old pipeline."""
    if len(rows) < 2:
        return Text("")
    old, new = rows[0], rows[1]
    if old.monthly_cost_usd is None or new.monthly_cost_usd is None:
        return Text(
            "The monthly comparison needs both costs per request: see the notes above.", "dim"
        )
    saved = old.monthly_cost_usd - new.monthly_cost_usd
    line = Text(f"At {monthly:,} requests a month the fine-tuned model ")
    if saved >= 0:
        line.append(f"saves {usd(saved)}", "bold green")
        ratio = old.monthly_cost_usd / new.monthly_cost_usd if new.monthly_cost_usd else None
        line.append(f" ({ratio:,.0f}x cheaper)" if ratio else "")
    else:
        line.append(f"costs {usd(-saved)} more", "bold red")
    line.append(f": {usd(new.monthly_cost_usd)} instead of {usd(old.monthly_cost_usd)}.")
    return line
