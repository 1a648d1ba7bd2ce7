"""Exact and near duplicates, in time and memory that scale to millions of examples.

Exact duplicates share a content hash. Near duplicates are found with MinHash over word 3-grams
(64 hash functions) and locality-sensitive hashing (bands of rows): only examples that agree on a
whole band become candidates, and each candidate pair is confirmed with the exact Jaccard
similarity of its 3-gram sets against the threshold. Examples are keyed by small integers (an
example id, or a record's position in a file); only band hashes are kept per example.
"""

from __future__ import annotations

import re
import zlib
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

_PERMUTATIONS = 64
_FLUSH_DOCS = 1000
_WORD = re.compile(r"\w+")
_MIX = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F), np.uint64(0x165667B19E3779F9))
_MAX_WORD_CACHE = 500_000
MAX_COMPARED_CHARS = 20_000
"""Characters of each message compared for near duplicates (a 50 MB answer is not shingled
whole; two answers that agree on their first 20,000 characters are near duplicates anyway)."""


class _WordIds(dict[str, int]):
    """A stable number per word (CRC-32), computed once per word."""

    def __missing__(self, word: str) -> int:
        value = self[word] = zlib.crc32(word.encode("utf-8")) + 1
        return value


@dataclass(frozen=True)
class DuplicateGroup:
    """Examples that say the same thing: keep the first, the others are copies."""

    keep: int
    copies: tuple[tuple[int, float], ...]
    """(key, similarity to the kept one); similarity 1.0 for an exact copy."""
    exact: bool


def comparable_text(messages: Sequence[Mapping[str, Any]]) -> str:
    """What near-duplicate detection compares: the user and assistant turns (a shared system
    prompt would make every pair look alike), each cut to its first MAX_COMPARED_CHARS."""
    return "\n".join(
        str(m.get("content") or "")[:MAX_COMPARED_CHARS]
        for m in messages
        if isinstance(m, dict) and m.get("role") != "system"
    )


def hash64(digest: str) -> int:
    """A signed 64-bit integer from a hex content hash (for compact arrays)."""
    return int(digest[:16], 16) - (1 << 63)


class ExactDuplicates:
    """Collects (key, content hash) pairs; `groups()` gives the keys that share a hash."""

    def __init__(self) -> None:
        self.keys = array("q")
        self.hashes = array("q")

    def add(self, key: int, digest: str) -> None:
        self.keys.append(key)
        self.hashes.append(hash64(digest))

    def groups(self) -> list[DuplicateGroup]:
        """One group per hash seen more than once; the first key added is kept."""
        if not self.keys:
            return []
        hashes = np.frombuffer(self.hashes, dtype=np.int64)
        order = np.argsort(hashes, kind="stable")
        ordered = hashes[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        ends = np.r_[starts[1:], len(ordered)]
        keys = np.frombuffer(self.keys, dtype=np.int64)[order]
        found = [
            DuplicateGroup(int(keys[s]), tuple((int(k), 1.0) for k in keys[s + 1 : e]), True)
            for s, e in zip(starts, ends, strict=True)
            if e - s > 1
        ]
        return sorted(found, key=lambda group: group.keep)


def lsh_shape(threshold: float) -> tuple[int, int]:
    """(bands, rows per band) for a similarity threshold: pairs at the threshold become
    candidates with high probability (>= 0.98 at 0.9 with 8 x 8), unrelated pairs rarely."""
    return (8, 8) if threshold >= 0.85 else (16, 4)


class NearDuplicates:
    """MinHash + LSH over word 3-grams. `add` texts, then `groups(text_of)`."""

    def __init__(self, threshold: float, seed: int = 1) -> None:
        self.threshold = threshold
        self.bands, self.rows = lsh_shape(threshold)
        rng = np.random.default_rng(seed)
        # MinHash permutations: x -> a * x + b (mod 2**32), a odd: a bijection per function.
        self.a = rng.integers(1, 2**32, size=_PERMUTATIONS, dtype=np.uint32) | np.uint32(1)
        self.b = rng.integers(0, 2**32, size=_PERMUTATIONS, dtype=np.uint32)
        self.mix = rng.integers(1, 2**63, size=self.rows, dtype=np.uint64) | np.uint64(1)
        self.keys = array("q")
        self.band_chunks: list[np.ndarray] = []
        self._pending_keys: list[int] = []
        self._pending: list[np.ndarray] = []
        self._words = _WordIds()

    def __len__(self) -> int:
        return len(self.keys) + len(self._pending_keys)

    def shingles(self, text: str) -> np.ndarray:
        """64-bit hashes of the text's word 3-grams (its words, if it has fewer than 3)."""
        if len(self._words) > _MAX_WORD_CACHE:
            self._words.clear()
        found = _WORD.findall(text.lower())
        words = np.fromiter(map(self._words.__getitem__, found), np.uint64, len(found))
        if len(words) < 3:
            return words * _MIX[0]
        return (words[:-2] * _MIX[0]) ^ (words[1:-1] * _MIX[1]) ^ (words[2:] * _MIX[2])

    def add(self, key: int, text: str) -> None:
        """Take one text; texts without words are skipped."""
        shingles = self.shingles(text)
        if not shingles.size:
            return
        self._pending_keys.append(key)
        self._pending.append(shingles)
        if len(self._pending) >= _FLUSH_DOCS:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        lengths = np.fromiter((len(s) for s in self._pending), dtype=np.int64)
        offsets = np.r_[0, np.cumsum(lengths)[:-1]]
        values = (np.concatenate(self._pending) >> np.uint64(32)).astype(np.uint32)
        signature = np.empty((_PERMUTATIONS, len(self._pending)), dtype=np.uint32)
        for start in range(0, _PERMUTATIONS, 16):
            hashed = values[None, :] * self.a[start : start + 16, None]
            hashed += self.b[start : start + 16, None]
            signature[start : start + 16] = np.minimum.reduceat(hashed, offsets, axis=1)
        bands = signature.reshape(self.bands, self.rows, -1)
        combined = (bands.astype(np.uint64) * self.mix[None, :, None]).sum(axis=1, dtype=np.uint64)
        self.band_chunks.append(combined.T.copy())
        self.keys.extend(self._pending_keys)
        self._pending, self._pending_keys = [], []

    def candidates(self) -> Iterator[tuple[int, int]]:
        """Pairs of keys that agree on at least one band (each pair at most once per band):
        every member of a bucket is paired with the bucket's first member and its neighbour."""
        self._flush()
        if not self.band_chunks:
            return
        bands = np.concatenate(self.band_chunks)
        keys = np.frombuffer(self.keys, dtype=np.int64)
        for band in range(self.bands):
            column = bands[:, band]
            order = np.argsort(column, kind="stable")
            ordered = column[order]
            same = np.flatnonzero(ordered[1:] == ordered[:-1])
            if not same.size:
                continue
            starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
            first_of = starts[np.searchsorted(starts, same, side="right") - 1]
            for left, right in zip(first_of, same + 1, strict=True):
                yield int(keys[order[left]]), int(keys[order[right]])
            for left in same[np.isin(same, first_of, invert=True)]:
                yield int(keys[order[left]]), int(keys[order[left + 1]])

    def groups(
        self,
        text_of: Callable[[Iterable[int]], Mapping[int, str]],
        same_content: Callable[[int, int], bool] = lambda a, b: False,
    ) -> list[DuplicateGroup]:
        """Confirmed near-duplicate groups (exact copies left out: `same_content`).

        `text_of(keys)` returns the texts of the candidate keys (read again from the source).
        """
        pairs = {tuple(sorted(pair)) for pair in self.candidates() if pair[0] != pair[1]}
        pairs = {pair for pair in pairs if not same_content(*pair)}
        if not pairs:
            return []
        texts = text_of(sorted({key for pair in pairs for key in pair}))
        sets = {key: set(self.shingles(text).tolist()) for key, text in texts.items()}
        confirmed = []
        for a, b in sorted(pairs):
            if a in sets and b in sets:
                similarity = _jaccard(sets[a], sets[b])
                if similarity >= self.threshold:
                    confirmed.append((a, b, similarity))
        return _cluster(confirmed)


def _jaccard(a: set[int], b: set[int]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def _cluster(pairs: Sequence[tuple[int, int, float]]) -> list[DuplicateGroup]:
    """Union-find over confirmed pairs; the smallest key of each cluster is kept."""
    parent: dict[int, int] = {}

    def root(key: int) -> int:
        parent.setdefault(key, key)
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for a, b, _ in pairs:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    best: dict[int, float] = {}
    for a, b, similarity in pairs:
        for key in (a, b):
            if key != root(key):
                best[key] = max(best.get(key, 0.0), similarity)
    members: dict[int, list[int]] = {}
    for key in parent:
        if key != root(key):
            members.setdefault(root(key), []).append(key)
    return [
        DuplicateGroup(keep, tuple((key, round(best[key], 3)) for key in sorted(copies)), False)
        for keep, copies in sorted(members.items())
    ]
