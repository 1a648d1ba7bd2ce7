"""The review queue: captured and synthetic examples waiting for a person to look at them.

A candidate is an example in the workspace's store flagged `needs-review` and tagged
`captured` or `synthetic`. Reviewing it is an ordinary, undoable store change:

- accept: flag it `ok` (it becomes a normal example; its tags keep where it came from),
- edit: replace its conversation (it stays in the queue until accepted),
- reject: delete it (undoable; a rejected synthetic example is not generated again).

The Data screen lists candidates with `list_candidates` (a page at a time) and `count_candidates`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from workbench.data.store import (
    CANDIDATE_TAGS,
    REVIEW_FLAG,
    Example,
    ExampleStore,
    Query,
    StoreError,
    preview_of,
)

Origin = Literal["captured", "synthetic"]
ORIGINS = cast(tuple[Origin, ...], CANDIDATE_TAGS)
"""The store decides what a candidate is (`workbench.data.store.CANDIDATE_TAGS`)."""
META_KEYS: dict[Origin, str] = {"captured": "capture", "synthetic": "synth"}
"""The record key holding each origin's metadata (model, time, latency, usage, cost)."""


@dataclass(frozen=True)
class Candidate:
    """One example waiting for review, with what is known about where it came from."""

    id: int
    origin: Origin
    messages: list[dict[str, Any]]
    preview: str
    model: str = ""
    time: str = ""
    tag: str = ""
    """The user's tag (captured) or the topic (synthetic)."""
    latency_ms: float | None = None
    usage: dict[str, int] = field(default_factory=dict)
    cost_usd: float | None = None
    tags: tuple[str, ...] = ()


def candidate_query(origin: Origin) -> Query:
    """The store query selecting the candidates of one origin (for the examples table)."""
    return Query(flag=REVIEW_FLAG, tag=origin)


def review_query(origin: Origin | None = None) -> Query:
    """What the review screen lists: one origin's candidates or, with None, every example
    waiting for review (candidates of both origins, and examples flagged `needs-review` by
    hand). One store query either way, so the list pages from the store like the Data table."""
    return Query(flag=REVIEW_FLAG) if origin is None else candidate_query(origin)


def origin_of(example: Example) -> Origin | None:
    """Where a waiting example came from; None for one flagged for review by hand."""
    return next((origin for origin in ORIGINS if origin in example.tags), None)


def count_candidates(store: ExampleStore) -> dict[Origin, int]:
    """How many candidates wait, per origin."""
    return {origin: store.count(candidate_query(origin)) for origin in ORIGINS}


def candidate_ids(store: ExampleStore, origin: Origin | None = None) -> list[int]:
    """Every candidate id (of one origin, or both), oldest first."""
    origins = ORIGINS if origin is None else (origin,)
    ids = {i for o in origins for i in store.ids(candidate_query(o))}
    return sorted(ids)


def list_candidates(
    store: ExampleStore, origin: Origin | None = None, offset: int = 0, limit: int = 100
) -> list[Candidate]:
    """One page of candidates, oldest first."""
    page = candidate_ids(store, origin)[offset : offset + limit]
    return [to_candidate(store.get(example_id)) for example_id in page]


def to_candidate(example: Example) -> Candidate:
    """The review view of a stored example."""
    origin: Origin = "captured" if "captured" in example.tags else "synthetic"
    meta = example.extra.get(META_KEYS[origin]) or {}
    latency = meta.get("latency_ms")
    cost = meta.get("cost_usd")
    return Candidate(
        id=example.id,
        origin=origin,
        messages=example.messages,
        preview=preview_of(example.messages),
        model=str(meta.get("model", "")),
        time=str(meta.get("time", "")),
        tag=str(meta.get("tag") or meta.get("topic") or ""),
        latency_ms=float(latency) if isinstance(latency, int | float) else None,
        usage=dict(meta.get("usage") or {}),
        cost_usd=float(cost) if isinstance(cost, int | float) else None,
        tags=example.tags,
    )


def accept(store: ExampleStore, ids: Sequence[int]) -> int:
    """Accept candidates: flag them ok. Returns how many changed."""
    return store.set_flag(list(ids), "ok")


def accept_all(store: ExampleStore, origin: Origin | None = None) -> int:
    """Accept every waiting candidate (of one origin, or both)."""
    return accept(store, candidate_ids(store, origin))


def edit(
    store: ExampleStore, example_id: int, messages: list[dict[str, Any]], accept_it: bool = False
) -> Candidate:
    """Replace a candidate's conversation (and accept it when `accept_it`)."""
    if example_id not in set(candidate_ids(store)):
        raise StoreError(f"example {example_id} is not waiting for review")
    store.update_messages(example_id, messages)
    if accept_it:
        accept(store, [example_id])
    return to_candidate(store.get(example_id))


def reject(store: ExampleStore, ids: Sequence[int]) -> int:
    """Reject candidates: delete them (undoable). Returns how many were deleted."""
    return store.delete(list(ids))
