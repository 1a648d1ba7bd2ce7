"""Deterministic train / validation / test splits.

Each example's place is decided by a hash of the seed and its content, so the same examples and
seed always give the same split (whatever order they were imported in), and copies of an
example (same content, or near duplicates when asked) always land in the same split: a
validation set that repeats training examples measures nothing.

Candidates waiting for review (captured or synthetic, flagged needs-review: see
`store.CANDIDATE_TAGS`) get no split: they are not data yet. A split puts them back in
`unassigned`, and once accepted they join the next split.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from workbench.data.store import ExampleStore, Split
from workbench.data.validate import find_duplicates

Size = int | float
"""A number of examples (an int), or a share of them (a float below 1)."""


class SplitError(ValueError):
    """A split size that cannot be used; the message says what is allowed."""


def parse_size(text: str) -> Size:
    """`200` -> 200 examples; `0.1` or `10%` -> a share."""
    value = text.strip()
    try:
        if value.endswith("%"):
            share = float(value[:-1]) / 100
        elif "." in value:
            share = float(value)
        else:
            count = int(value)
            if count < 0:
                raise ValueError
            return count
    except ValueError:
        raise SplitError(
            f"{text!r}: give a number of examples (200) or a share (0.1, 10%)"
        ) from None
    if not 0 <= share < 1:
        raise SplitError(f"{text!r}: a share must be at least 0 and below 1")
    return share


def resolve_size(size: Size, total: int) -> int:
    """How many examples a size means out of `total`."""
    if isinstance(size, float):
        return round(size * total)
    return min(size, total)


def suggest_val_size(total: int) -> int:
    """A validation size for a dataset of `total` examples: none below 10, about 10% up to
    1,000, then growing with the square root (1,000 for 100,000), at most 2,000. Enough for a
    steady eval loss without starving training."""
    if total < 10:
        return 0
    if total <= 1000:
        return max(2, round(0.1 * total))
    return min(2000, round(100 * math.sqrt(total / 1000)))


@dataclass(frozen=True)
class SplitPlan:
    """Where every live example goes, and how many go where (candidates: `unassigned`)."""

    assignments: Mapping[int, Split]
    counts: Mapping[str, int]
    """train, val and test; candidates are counted in `held` only."""
    seed: int
    by_tag: bool
    note: str = ""
    held: int = 0
    """Candidates waiting for review, kept out of every split."""


def plan_split(
    store: ExampleStore,
    val: Size | None = None,
    test: Size = 0,
    seed: int = 0,
    by_tag: bool = False,
    near_duplicates: bool = False,
    near_threshold: float = 0.9,
) -> SplitPlan:
    """Assign every live example to train, val or test. `val` None: `suggest_val_size`.
    `by_tag`: each tag combination is split in the same proportions. `near_duplicates`: keep
    near duplicates together too (finding them takes a few seconds on 100k examples).
    Candidates waiting for review are left out of the sizes and go to `unassigned`."""
    held = store.candidate_ids()
    keys = [key for key in store.iter_keys() if key[0] not in held]
    total = len(keys)
    notes = [f"{len(held):,} candidates waiting for review stay unassigned"] if held else []
    if val is None:
        val = suggest_val_size(total)
        notes.insert(0, f"validation size suggested for {total:,} examples: {val:,}")
    n_val, n_test = resolve_size(val, total), resolve_size(test, total)
    if n_val + n_test > total:
        raise SplitError(f"val {n_val:,} + test {n_test:,} is more than the {total:,} examples")
    groups = _groups(keys, store if near_duplicates else None, near_threshold)
    strata = _strata(groups, keys, by_tag)
    assignments: dict[int, Split] = {}
    for stratum, quota in zip(strata, _quotas(strata, n_val, n_test, total), strict=True):
        assignments.update(_assign(stratum, seed, *quota))
    counts = {split: 0 for split in ("train", "val", "test")}
    for split in assignments.values():
        counts[split] += 1
    assignments.update(dict.fromkeys(sorted(held), "unassigned"))
    return SplitPlan(assignments, counts, seed, by_tag, "; ".join(notes), len(held))


def _groups(
    keys: Sequence[tuple[int, str, tuple[str, ...]]], store: ExampleStore | None, threshold: float
) -> list[tuple[str, list[int]]]:
    """(group key, ids): examples with the same content, or near duplicates when a store is
    given, form one group keyed by its first example's content hash. Near duplicates are found
    among all live examples; those not in `keys` (candidates) are skipped."""
    by_hash: dict[str, list[int]] = {}
    hash_of = {}
    for example_id, digest, _ in keys:
        by_hash.setdefault(digest, []).append(example_id)
        hash_of[example_id] = digest
    if store is not None:
        _, near = find_duplicates(store, threshold=threshold)
        for group in near:
            members = [i for i in (group.keep, *(c for c, _ in group.copies)) if i in hash_of]
            _merge(by_hash, [hash_of[i] for i in members])
    return list(by_hash.items())


def _merge(by_hash: dict[str, list[int]], digests: Sequence[str]) -> None:
    """Put the groups of `digests` into the first one's (near duplicates split together)."""
    if not digests:
        return
    keep = digests[0]
    for digest in digests[1:]:
        if digest != keep and digest in by_hash:
            by_hash[keep] += by_hash.pop(digest)


def _strata(
    groups: list[tuple[str, list[int]]],
    keys: Sequence[tuple[int, str, tuple[str, ...]]],
    by_tag: bool,
) -> list[list[tuple[str, list[int]]]]:
    if not by_tag:
        return [groups]
    tags = {example_id: example_tags for example_id, _, example_tags in keys}
    strata: dict[tuple[str, ...], list[tuple[str, list[int]]]] = {}
    for group in groups:
        strata.setdefault(tags[group[1][0]], []).append(group)
    return [strata[key] for key in sorted(strata)]


def _quotas(
    strata: Sequence[Sequence[tuple[str, list[int]]]], n_val: int, n_test: int, total: int
) -> list[tuple[int, int]]:
    """(val, test) per stratum, in proportion to its size (largest remainders), summing to the
    totals."""
    sizes = [sum(len(ids) for _, ids in stratum) for stratum in strata]
    vals = _apportion(sizes, n_val, total)
    tests = _apportion(sizes, n_test, total)
    return list(zip(vals, tests, strict=True))


def _apportion(sizes: Sequence[int], wanted: int, total: int) -> list[int]:
    if total == 0:
        return [0 for _ in sizes]
    exact = [size * wanted / total for size in sizes]
    shares = [math.floor(x) for x in exact]
    order = sorted(range(len(sizes)), key=lambda i: (shares[i] - exact[i], i))
    for i in order[: wanted - sum(shares)]:
        shares[i] += 1
    return shares


def _assign(
    groups: Iterable[tuple[str, list[int]]], seed: int, n_val: int, n_test: int
) -> dict[int, Split]:
    """Groups in seeded-hash order: test first, then val, then train."""
    ranked = sorted(groups, key=lambda group: _rank(seed, group[0]))
    assignments: dict[int, Split] = {}
    taken = {"test": 0, "val": 0}
    for _, ids in ranked:
        split: Split = "train"
        if taken["test"] < n_test:
            split = "test"
        elif taken["val"] < n_val:
            split = "val"
        if split != "train":
            taken[split] += len(ids)
        assignments.update(dict.fromkeys(ids, split))
    return assignments


def _rank(seed: int, digest: str) -> str:
    return hashlib.sha256(f"{seed}:{digest}".encode()).hexdigest()


def apply_split(store: ExampleStore, plan: SplitPlan) -> int:
    """Put every example in its split (candidates back in `unassigned`) as one undoable action;
    returns how many moved."""
    label = f"split {plan.counts['train']}/{plan.counts['val']}/{plan.counts['test']}"
    return store.assign_splits(plan.assignments, f"{label} (seed {plan.seed})")
