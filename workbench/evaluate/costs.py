"""Prices, latency percentiles and the cost table: old pipeline against the fine-tuned model.

API prices come from `eval.prices` (USD per million tokens, [input, output]); cache writes cost
1.25x the input price, cache reads 0.1x, and Message Batches half of everything. The fine-tuned
model costs its GPU's hourly price (`eval.gpu_hourly_usd`) for the time it takes to answer,
divided by the requests the GPU serves at once (`eval.gpu_parallel_requests`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from workbench.evaluate.generate import Generation

CACHE_WRITE_FACTOR = 1.25
CACHE_READ_FACTOR = 0.1
BATCH_FACTOR = 0.5
Prices = Mapping[str, Sequence[float]]


def price_of(model: str, prices: Prices) -> tuple[float, float] | None:
    """[input, output] USD per million tokens: the exact name, else the longest listed name
    the model's name starts with (`claude-sonnet-4-5` prices `claude-sonnet-4-5-20250929`)."""
    if model in prices:
        pair = prices[model]
        return float(pair[0]), float(pair[1])
    matches = [name for name in prices if model.startswith(name)]
    if not matches:
        return None
    pair = prices[max(matches, key=len)]
    return float(pair[0]), float(pair[1])


def api_cost(
    model: str,
    prices: Prices,
    input_tokens: int,
    output_tokens: int,
    cache_write_tokens: int = 0,
    cache_read_tokens: int = 0,
    batch: bool = False,
) -> float | None:
    """USD for one or more calls; None when the model has no price."""
    price = price_of(model, prices)
    if price is None:
        return None
    per_input, per_output = price[0] / 1e6, price[1] / 1e6
    cost = (
        input_tokens * per_input
        + cache_write_tokens * per_input * CACHE_WRITE_FACTOR
        + cache_read_tokens * per_input * CACHE_READ_FACTOR
        + output_tokens * per_output
    )
    return cost * (BATCH_FACTOR if batch else 1.0)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100), linear between closest ranks; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class CostRow:
    """One pipeline's cost and latency per request, and its projected monthly cost."""

    pipeline: str
    requests: int
    latency_p50_s: float | None
    latency_p95_s: float | None
    mean_input_tokens: float | None
    mean_output_tokens: float | None
    tokens_per_s: float | None
    cost_per_request_usd: float | None
    monthly_cost_usd: float | None
    note: str = ""


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _latency_and_tokens(gens: Sequence[Generation]) -> dict[str, float | None]:
    latencies = [g.latency_s for g in gens if g.latency_s is not None and not g.estimated]
    speeds = [s for g in gens if (s := g.tokens_per_s) is not None]
    return {
        "latency_p50_s": percentile(latencies, 50),
        "latency_p95_s": percentile(latencies, 95),
        "mean_input_tokens": _mean([g.input_tokens for g in gens]),
        "mean_output_tokens": _mean([g.output_tokens for g in gens]),
        "tokens_per_s": _mean(speeds),
    }


def _monthly(per_request: float | None, monthly_requests: int) -> float | None:
    return None if per_request is None else per_request * monthly_requests


def baseline_row(
    gens: Sequence[Generation], kind: str, model: str, prices: Prices, monthly_requests: int
) -> CostRow:
    """The old pipeline: API price of its model per request (estimated for stored answers)."""
    gens = [g for g in gens if g.ok]
    stats = _latency_and_tokens(gens)
    per_request: float | None = None
    note = ""
    if kind == "cmd":
        note = "a shell command: its cost is unknown"
    elif gens:
        costs = [api_cost(model, prices, g.input_tokens, g.output_tokens) for g in gens]
        per_request = _mean([c for c in costs if c is not None]) if None not in costs else None
        if per_request is None:
            note = f"no price for {model} in eval.prices"
    if kind == "stored":
        note = "; ".join(filter(None, [note, "stored answers: tokens estimated, latency unknown"]))
    return CostRow(
        pipeline=f"old pipeline ({kind}, {model})" if kind != "cmd" else "old pipeline (cmd)",
        requests=len(gens),
        cost_per_request_usd=per_request,
        monthly_cost_usd=_monthly(per_request, monthly_requests),
        note=note,
        **stats,
    )


def candidate_row(
    gens: Sequence[Generation],
    name: str,
    gpu_hourly_usd: float,
    parallel_requests: int,
    monthly_requests: int,
) -> CostRow:
    """The fine-tuned model: GPU time per request at the GPU's hourly price."""
    gens = [g for g in gens if g.ok]
    stats = _latency_and_tokens(gens)
    mean_latency = _mean([g.latency_s for g in gens if g.latency_s is not None])
    per_request: float | None = None
    note = "latency measured on this machine"
    if gpu_hourly_usd <= 0:
        note += "; set eval.gpu_hourly_usd for its cost"
    elif mean_latency is not None:
        per_request = gpu_hourly_usd / 3600 * mean_latency / parallel_requests
    return CostRow(
        pipeline=f"fine-tuned ({name})",
        requests=len(gens),
        cost_per_request_usd=per_request,
        monthly_cost_usd=_monthly(per_request, monthly_requests),
        note=note,
        **stats,
    )
