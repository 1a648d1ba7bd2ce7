"""Statistics of the workspace's examples: counts per split and flag, token lengths (with a
histogram), duplicates and problems."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from workbench.config import WorkbenchConfig
from workbench.data.store import ExampleStore, Severity
from workbench.data.tokens import TokenCounter, estimate_counter
from workbench.data.validate import find_duplicates

_BATCH = 512
NEAR_DUPLICATE_LIMIT = 200_000
"""Near duplicates are counted up to this many examples (a few seconds per 100k)."""


@dataclass(frozen=True)
class Histogram:
    """Examples per token-length bucket: bucket i holds lengths in [edges[i], edges[i + 1])."""

    edges: tuple[int, ...]
    counts: tuple[int, ...]

    def rows(self) -> list[tuple[str, int]]:
        """(`256-511`, count) per bucket, the last one open-ended (`4096+`)."""
        labels = [f"{lo}-{hi - 1}" for lo, hi in zip(self.edges, self.edges[1:], strict=False)]
        labels.append(f"{self.edges[-1]}+")
        return list(zip(labels, self.counts, strict=True))


@dataclass(frozen=True)
class TokenStats:
    """Token lengths of whole conversations (prompt and answer)."""

    total: int
    mean: float
    p50: int
    p90: int
    p99: int
    max: int
    over_limit: int
    """Longer than train.max_seq_length."""
    limit: int
    histogram: Histogram
    note: str


@dataclass(frozen=True)
class DataStats:
    examples: int
    deleted: int
    quarantined: int
    splits: dict[str, int]
    flags: dict[str, int]
    tags: list[tuple[str, int]]
    tokens: TokenStats
    exact_duplicates: int
    """Copies (examples beyond the first of each group)."""
    near_duplicates: int | None
    """Copies; None when not counted (more than NEAR_DUPLICATE_LIMIT examples)."""
    problems: list[tuple[Severity, str, int]]
    """(severity, code, examples), as recorded by the last validation."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def histogram(lengths: np.ndarray) -> Histogram:
    """Power-of-two buckets from 64 tokens up to the longest example."""
    top = int(lengths.max()) if lengths.size else 0
    edges = [0, 64]
    while edges[-1] <= top:
        edges.append(edges[-1] * 2)
    edges = edges[:-1] if len(edges) > 2 else edges
    counts = np.histogram(lengths, bins=[*edges, max(top + 1, edges[-1] + 1)])[0]
    return Histogram(tuple(edges), tuple(int(c) for c in counts))


def token_stats(lengths: Sequence[int], limit: int, note: str) -> TokenStats:
    values = np.asarray(lengths, dtype=np.int64)
    if not values.size:
        return TokenStats(0, 0.0, 0, 0, 0, 0, 0, limit, histogram(values), note)

    def percentile(q: float) -> int:
        return int(np.percentile(values, q, method="nearest"))

    return TokenStats(
        total=int(values.sum()),
        mean=round(float(values.mean()), 1),
        p50=percentile(50),
        p90=percentile(90),
        p99=percentile(99),
        max=int(values.max()),
        over_limit=int((values > limit).sum()),
        limit=limit,
        histogram=histogram(values),
        note=note,
    )


def compute_stats(
    store: ExampleStore,
    config: WorkbenchConfig,
    counter: TokenCounter | None = None,
    cancel: threading.Event | None = None,
) -> DataStats:
    """Everything `workbench data stats` shows; token counts exact when `counter` is."""
    counter = counter or estimate_counter()
    lengths: list[int] = []
    batch: list[Any] = []
    for _, messages in store.iter_messages():
        batch.append(messages)
        if len(batch) >= _BATCH:
            lengths += counter.count_many(batch)
            batch = []
            if cancel is not None and cancel.is_set():
                break
    lengths += counter.count_many(batch) if batch else []
    examples = store.count()
    near = None
    if examples <= NEAR_DUPLICATE_LIMIT:
        _, groups = find_duplicates(store, threshold=config.data.near_duplicate_threshold)
        near = sum(len(group.copies) for group in groups)
    return DataStats(
        examples=examples,
        deleted=store.count_all() - examples,
        quarantined=store.quarantine_count(),
        splits=store.split_counts(),
        flags=store.flag_counts(),
        tags=store.all_tags(),
        tokens=token_stats(lengths, config.train.max_seq_length, counter.note),
        exact_duplicates=sum(len(ids) - 1 for ids in store.duplicate_groups()),
        near_duplicates=near,
        problems=store.problem_counts(),
    )
