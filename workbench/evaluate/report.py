"""An eval's report: the summary (W/T/L, win rate and interval, position bias, judge cost),
the items side by side, the cost and latency table, and exports to Markdown and JSONL.

Everything is computed from the eval's files (`spec.json`, `items.jsonl`, `results.jsonl`), so a
report can be read while the eval runs, after it stopped, or months later.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from workbench.config import EvalSection, atomic_write_text
from workbench.evaluate.aggregate import bootstrap_interval
from workbench.evaluate.costs import CostRow, baseline_row, candidate_row
from workbench.evaluate.evalset import EvalItem, read_items
from workbench.evaluate.events import Outcome
from workbench.evaluate.results import (
    ItemResult,
    judge_totals,
    latest_results,
    outcome_tally,
    read_result_lines,
)
from workbench.evaluate.spec import EvalError, EvalSpec, load_spec
from workbench.jobs import observed_status

SUMMARY_FILE = "summary.json"
ITEMS_HEADER = (
    "| # | example | outcome | orders | input | reason (fine-tuned first) |\n"
    "|---|---|---|---|---|---|"
)


@dataclass(frozen=True)
class EvalSummary:
    """The headline numbers of one eval (the `--json` output of `workbench eval`)."""

    id: str
    state: str
    started_at: float
    model: str
    baseline: str
    judge_model: str
    total: int
    """Items in the eval set."""
    n: int
    """Items with an outcome (W + T + L)."""
    wins: int
    ties: int
    losses: int
    win_rate: float | None
    """(W + 0.5 T) / N for the fine-tuned model; 0.5 means as good as the old pipeline."""
    ci_low: float | None
    ci_high: float | None
    """95% bootstrap interval of the win rate."""
    disagreement_rate: float | None
    """Share of judged pairs where the two orders disagreed (position bias)."""
    disagreements: int
    identical: int
    """Pairs with identical outputs: ties without a judge call."""
    errors: int
    """Items without an outcome because something failed (each says why)."""
    pending: int
    """Items not done yet (a running or stopped eval)."""
    judge_calls: int
    cached_judgments: int
    judge_input_tokens: int
    """All input tokens the judge read, cache writes and reads included."""
    judge_output_tokens: int
    judge_cache_write_tokens: int
    judge_cache_read_tokens: int
    judge_cost_usd: float | None
    candidate_mean_words: float | None
    baseline_mean_words: float | None
    candidate_mean_chars: float | None
    baseline_mean_chars: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ReportItem:
    """One input with both answers and both verdicts (`result` None: not done yet)."""

    item: EvalItem
    result: ItemResult | None

    @property
    def outcome(self) -> Outcome | None:
        return self.result.outcome if self.result else None

    @property
    def error(self) -> str:
        return self.result.error if self.result else ""

    @property
    def disagreed(self) -> bool:
        return bool(self.result and self.result.disagreed)

    @property
    def candidate_text(self) -> str:
        gen = self.result.candidate if self.result else None
        return gen.text if gen else ""

    @property
    def baseline_text(self) -> str:
        gen = self.result.baseline if self.result else None
        return gen.text if gen else ""


@dataclass(frozen=True)
class EvalReport:
    """Everything the Eval screen and the exports show about one eval."""

    eval_dir: Path
    spec: EvalSpec
    summary: EvalSummary
    items: list[ReportItem]
    costs: list[CostRow]
    monthly_requests: int

    @property
    def eval_id(self) -> str:
        return self.eval_dir.name

    def losses(self) -> list[ReportItem]:
        return [i for i in self.items if i.outcome == "loss"]

    def disagreements(self) -> list[ReportItem]:
        return [i for i in self.items if i.disagreed]

    def failed(self) -> list[ReportItem]:
        return [i for i in self.items if i.error]


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def build_summary(eval_dir: Path) -> EvalSummary:
    """The summary computed from the eval's files (works while it runs)."""
    spec = load_spec(eval_dir)
    items = read_items(eval_dir)
    lines = read_result_lines(eval_dir)
    latest = latest_results(lines)
    counts = outcome_tally(latest.values())
    low, high = bootstrap_interval(counts.wins, counts.ties, counts.losses, seed=spec.seed)
    paid = judge_totals(lines, spec.judge_model, spec.prices)
    scored = [r for r in latest.values() if r.outcome and not r.error]
    cand = [r.candidate.text for r in scored if r.candidate]
    base = [r.baseline.text for r in scored if r.baseline]
    status = observed_status(eval_dir)
    return EvalSummary(
        id=eval_dir.name,
        state=status.state if status else "created",
        started_at=status.started_at if status else 0.0,
        model=spec.model,
        baseline=spec.baseline,
        judge_model=spec.judge_model,
        total=len(items),
        n=counts.n,
        wins=counts.wins,
        ties=counts.ties,
        losses=counts.losses,
        win_rate=counts.win_rate,
        ci_low=low,
        ci_high=high,
        disagreement_rate=counts.disagreement_rate,
        disagreements=counts.disagreements,
        identical=counts.identical,
        errors=sum(1 for r in latest.values() if r.error),
        pending=len(items) - len(latest),
        judge_calls=paid.calls,
        cached_judgments=paid.cached,
        judge_input_tokens=paid.input_tokens + paid.cache_write_tokens + paid.cache_read_tokens,
        judge_output_tokens=paid.output_tokens,
        judge_cache_write_tokens=paid.cache_write_tokens,
        judge_cache_read_tokens=paid.cache_read_tokens,
        judge_cost_usd=paid.cost_usd,
        candidate_mean_words=_mean([len(t.split()) for t in cand]),
        baseline_mean_words=_mean([len(t.split()) for t in base]),
        candidate_mean_chars=_mean([len(t) for t in cand]),
        baseline_mean_chars=_mean([len(t) for t in base]),
    )


def write_summary(eval_dir: Path) -> EvalSummary:
    """Compute the summary and keep it in `summary.json` (for fast lists of past evals)."""
    summary = build_summary(eval_dir)
    atomic_write_text(eval_dir / SUMMARY_FILE, json.dumps(summary.as_dict(), indent=2) + "\n")
    return summary


def read_summary(eval_dir: Path) -> EvalSummary:
    """The summary: from `summary.json` once the eval has ended, else computed now."""
    status = observed_status(eval_dir)
    if status is not None and not status.active:
        try:
            raw = json.loads((eval_dir / SUMMARY_FILE).read_text(encoding="utf-8"))
            known = {f.name for f in fields(EvalSummary)}
            return EvalSummary(
                **{**{k: v for k, v in raw.items() if k in known}, "state": status.state}
            )
        except (OSError, ValueError, TypeError):
            pass
    return build_summary(eval_dir)


def list_evals(evals_dir: Path) -> list[EvalSummary]:
    """Every eval of a workspace (its `evals/` directory), oldest first."""
    found = []
    for eval_dir in sorted(p for p in evals_dir.iterdir() if p.is_dir()):
        try:
            found.append(read_summary(eval_dir))
        except (EvalError, OSError, ValueError, TypeError):
            continue
    return sorted(found, key=lambda s: (s.started_at, s.id))


def load_report(
    eval_dir: Path, pricing: EvalSection | None = None, monthly_requests: int | None = None
) -> EvalReport:
    """The full report. `pricing` (the workspace's current `[eval]`) sets the GPU price, API
    prices and the monthly volume of the cost table; without it, the spec's API prices."""
    spec = load_spec(eval_dir)
    pricing = pricing or EvalSection(prices=spec.prices)
    monthly = pricing.monthly_requests if monthly_requests is None else monthly_requests
    latest = latest_results(read_result_lines(eval_dir))
    items = [ReportItem(item, latest.get(item.index)) for item in read_items(eval_dir)]
    return EvalReport(
        eval_dir=eval_dir,
        spec=spec,
        summary=read_summary(eval_dir),
        items=items,
        costs=cost_table(items, spec, pricing, monthly),
        monthly_requests=monthly,
    )


def cost_table(
    items: Sequence[ReportItem], spec: EvalSpec, pricing: EvalSection, monthly: int
) -> list[CostRow]:
    """Old pipeline and fine-tuned model, per request and per month."""
    results = [i.result for i in items if i.result is not None]
    base = [r.baseline for r in results if r.baseline is not None]
    cand = [r.candidate for r in results if r.candidate is not None]
    return [
        baseline_row(base, spec.baseline, spec.baseline_model, pricing.prices, monthly),
        candidate_row(
            cand,
            Path(spec.model).name,
            pricing.gpu_hourly_usd,
            pricing.gpu_parallel_requests,
            monthly,
        ),
    ]


# --- exports --------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def _num(value: float | None, digits: int = 2, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}{unit}"


def _usd(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"${value:,.2f}" if value >= 1 else f"${value:.5f}"


def _cell(text: str, width: int = 70) -> str:
    flat = " ".join(text.split()).replace("|", "\\|")
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def result_lines(summary: EvalSummary) -> list[str]:
    """The headline in a few lines of plain text (CLI and Markdown)."""
    s = summary
    return [
        f"fine-tuned vs old pipeline: {s.wins} wins, {s.ties} ties, {s.losses} losses (N={s.n})",
        f"win rate {_pct(s.win_rate)} (95% CI {_pct(s.ci_low)} to {_pct(s.ci_high)}); "
        "50% = as good as the old pipeline",
        f"orders disagreed on {_pct(s.disagreement_rate)} of judged pairs (position bias); "
        f"{s.identical} identical pair(s)",
        f"mean length: fine-tuned {_num(s.candidate_mean_words, 0)} words, "
        f"old pipeline {_num(s.baseline_mean_words, 0)} words",
        f"judge: {s.judge_calls} calls, {s.cached_judgments} cached, "
        f"{s.judge_input_tokens:,} input / {s.judge_output_tokens:,} output tokens, "
        f"{_usd(s.judge_cost_usd)}",
        f"errors: {s.errors}; pending: {s.pending}",
    ]


def cost_markdown(rows: Sequence[CostRow], monthly: int) -> str:
    """The cost and latency table, as Markdown."""
    head = (
        "| pipeline | latency p50 | latency p95 | tokens in / out | tokens/s | cost / request"
        f" | per month ({monthly:,} requests) | note |\n|---|---|---|---|---|---|---|---|"
    )
    body = [
        f"| {r.pipeline} | {_num(r.latency_p50_s, 2, ' s')} | {_num(r.latency_p95_s, 2, ' s')}"
        f" | {_num(r.mean_input_tokens, 0)} / {_num(r.mean_output_tokens, 0)}"
        f" | {_num(r.tokens_per_s, 1)} | {_usd(r.cost_per_request_usd)}"
        f" | {_usd(r.monthly_cost_usd)} | {r.note} |"
        for r in rows
    ]
    return "\n".join([head, *body])


def report_markdown(report: EvalReport) -> str:
    """The whole report as Markdown: result, cost table, items, and the losses in full."""
    s, spec = report.summary, report.spec
    parts = [
        f"# Eval {report.eval_id}",
        f"- Fine-tuned model: `{spec.model}`\n- Old pipeline: {spec.baseline}"
        f" ({spec.baseline_model})\n- Judge: {spec.judge_model}, both orders per pair\n"
        f"- State: {s.state}; {s.total} items",
        "## Result",
        "\n".join(f"- {line}" for line in result_lines(s)),
        "## Cost and latency per request",
        cost_markdown(report.costs, report.monthly_requests),
        "## Items",
        "\n".join([ITEMS_HEADER, *(_item_row(i) for i in report.items)]),
    ]
    for title, chosen in (("Losses", report.losses()), ("Errors", report.failed())):
        if chosen:
            parts.append(f"## {title}")
            parts.extend(_item_detail(i) for i in chosen)
    return "\n\n".join(parts) + "\n"


def _item_row(entry: ReportItem) -> str:
    result = entry.result
    outcome = entry.outcome or ("error" if entry.error else "pending")
    orders = "disagree" if entry.disagreed else ("identical" if result and result.identical else "")
    reason = entry.error or (result.cb.reason if result and result.cb else "")
    return (
        f"| {entry.item.index} | {entry.item.example_id} | {outcome} | {orders}"
        f" | {_cell(entry.item.input_text, 50)} | {_cell(reason)} |"
    )


def _item_detail(entry: ReportItem) -> str:
    result = entry.result
    lines = [f"### Item {entry.item.index} (example {entry.item.example_id})"]
    if entry.error:
        lines.append(f"Error: {entry.error}")
    for order, label in (("cb", "fine-tuned in slot A"), ("bc", "old pipeline in slot A")):
        verdict = getattr(result, order, None) if result else None
        if verdict is not None and verdict.ok:
            lines.append(f"- Verdict ({label}): {verdict.winner}: {verdict.reason}")
    for title, text in (
        ("Input", entry.item.input_text),
        ("Fine-tuned", entry.candidate_text),
        ("Old pipeline", entry.baseline_text),
    ):
        lines.append(f"**{title}**\n\n```text\n{text}\n```")
    return "\n\n".join(lines)


def report_records(report: EvalReport) -> list[dict[str, Any]]:
    """The report as JSON objects: one summary line, then one line per item."""
    records: list[dict[str, Any]] = [
        {
            "type": "summary",
            **report.summary.as_dict(),
            "costs": [asdict(row) for row in report.costs],
        }
    ]
    for entry in report.items:
        result = entry.result
        records.append(
            {
                "type": "item",
                "index": entry.item.index,
                "example_id": entry.item.example_id,
                "input": entry.item.input_text,
                "messages": entry.item.messages,
                "candidate": entry.candidate_text,
                "baseline": entry.baseline_text,
                "outcome": entry.outcome,
                "disagreed": entry.disagreed,
                "identical": bool(result and result.identical),
                "error": entry.error,
                "verdict_candidate_first": asdict(result.cb) if result and result.cb else None,
                "verdict_baseline_first": asdict(result.bc) if result and result.bc else None,
                "candidate_generation": asdict(result.candidate)
                if result and result.candidate
                else None,
                "baseline_generation": asdict(result.baseline)
                if result and result.baseline
                else None,
            }
        )
    return records


def write_markdown(report: EvalReport, path: Path) -> Path:
    """Export the report as Markdown."""
    atomic_write_text(path, report_markdown(report))
    return path


def write_jsonl(report: EvalReport, path: Path) -> Path:
    """Export the report as JSON lines (summary first, then the items)."""
    lines = (json.dumps(r, ensure_ascii=False) for r in report_records(report))
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path
