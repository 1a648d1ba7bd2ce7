"""What an eval keeps per item: `generations.jsonl` (each answer as soon as it exists) and
`results.jsonl` (each finished item: both answers, both verdicts, the outcome or the error).

Both files are append-only; for an item the last line wins, so a retried item simply adds a
line. A resumed eval reuses every answer and every finished item and redoes only the rest.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

from workbench.evaluate.aggregate import Tally, tally
from workbench.evaluate.costs import api_cost
from workbench.evaluate.events import Outcome
from workbench.evaluate.generate import Generation
from workbench.evaluate.judge import Verdict, verdict_from_dict

GENERATIONS_FILE = "generations.jsonl"
RESULTS_FILE = "results.jsonl"
Side = Literal["candidate", "baseline"]


@dataclass(frozen=True)
class ItemResult:
    """One finished item. `error` set: it has no outcome (and is redone on resume)."""

    index: int
    example_id: int
    candidate: Generation | None = None
    baseline: Generation | None = None
    cb: Verdict | None = None
    """The verdict with the candidate in slot A."""
    bc: Verdict | None = None
    """The verdict with the baseline in slot A."""
    outcome: Outcome | None = None
    disagreed: bool = False
    identical: bool = False
    error: str = ""

    @property
    def verdicts(self) -> list[Verdict]:
        return [v for v in (self.cb, self.bc) if v is not None]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def result_from_dict(raw: Mapping[str, Any]) -> ItemResult:
    """An ItemResult read back from JSON."""
    names = {f.name for f in fields(ItemResult)}
    values = {key: value for key, value in raw.items() if key in names}
    for side in ("candidate", "baseline"):
        if isinstance(values.get(side), dict):
            values[side] = generation_from_dict(values[side])
    for order in ("cb", "bc"):
        if isinstance(values.get(order), dict):
            values[order] = verdict_from_dict(values[order])
    return ItemResult(**values)


def generation_from_dict(raw: Mapping[str, Any]) -> Generation:
    names = {f.name for f in fields(Generation)}
    return Generation(**{key: value for key, value in raw.items() if key in names})


def _read_lines(path: Path) -> Iterator[dict[str, Any]]:
    """The whole JSON lines of a file (a torn last line from a crash is skipped)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return
    for line in text.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            yield value


def _append(path: Path, value: Mapping[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(value, ensure_ascii=False) + "\n")


def append_result(eval_dir: Path, result: ItemResult) -> None:
    _append(eval_dir / RESULTS_FILE, result.to_dict())


def read_result_lines(eval_dir: Path) -> list[ItemResult]:
    """Every result line, superseded ones included (what was paid for), oldest first."""
    return [result_from_dict(raw) for raw in _read_lines(eval_dir / RESULTS_FILE) if "index" in raw]


def latest_results(lines: Iterable[ItemResult]) -> dict[int, ItemResult]:
    """The latest result of each item, by index."""
    return {result.index: result for result in lines}


def read_results(eval_dir: Path) -> dict[int, ItemResult]:
    """The latest result of each item, by index."""
    return latest_results(read_result_lines(eval_dir))


def append_generation(eval_dir: Path, index: int, side: Side, generation: Generation) -> None:
    _append(eval_dir / GENERATIONS_FILE, {"index": index, "side": side, **asdict(generation)})


def read_generations(eval_dir: Path) -> dict[tuple[int, str], Generation]:
    """The answers produced so far, by (index, side); failed ones are not kept."""
    found: dict[tuple[int, str], Generation] = {}
    for raw in _read_lines(eval_dir / GENERATIONS_FILE):
        generation = generation_from_dict(raw)
        if generation.ok and "index" in raw:
            found[(int(raw["index"]), str(raw.get("side")))] = generation
    return found


def outcome_tally(results: Iterable[ItemResult]) -> Tally:
    """W/T/L, disagreements and identical pairs over the items that have an outcome."""
    return tally(
        (r.outcome, r.disagreed, r.identical) for r in results if r.outcome and not r.error
    )


@dataclass(frozen=True)
class JudgeTotals:
    """What judging cost this eval (cached verdicts were paid by an earlier one)."""

    calls: int = 0
    cached: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    cost_usd: float | None = 0.0


def judge_totals(
    results: Iterable[ItemResult], model: str, prices: Mapping[str, Any]
) -> JudgeTotals:
    """Sum the verdicts paid for in these result lines (pass every line, superseded ones
    included: an item redone after an error reuses its good verdict from the cache)."""
    totals = dict.fromkeys(
        ("calls", "cached", "input_tokens", "output_tokens", "cache_write_tokens"), 0
    )
    totals["cache_read_tokens"] = 0
    cost: float | None = 0.0
    for verdict in (v for r in results for v in r.verdicts):
        if verdict.cached:
            totals["cached"] += 1
            continue
        totals["calls"] += verdict.calls
        for name in ("input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens"):
            totals[name] += getattr(verdict, name)
        one = api_cost(
            model,
            prices,
            verdict.input_tokens,
            verdict.output_tokens,
            verdict.cache_write_tokens,
            verdict.cache_read_tokens,
            batch=verdict.batch,
        )
        cost = None if one is None or cost is None else cost + one
    return JudgeTotals(cost_usd=cost, **totals)
