"""Duplicates of new examples among the existing ones: exact (content hash) and near.

Near duplicates are as the data tools define them (`workbench.data.dedupe`): word 3-grams of the
user and assistant turns, Jaccard similarity at the workspace's threshold. That module groups a
whole dataset at once; generation needs one lookup per new example as it arrives, so this index
keeps an inverted index from shingle to example: a lookup costs in proportion to the examples
that share words with the new one, not to the size of the dataset.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from workbench.data.dedupe import comparable_text
from workbench.data.store import ExampleStore, Query, content_hash

_WORD = re.compile(r"\w+", re.UNICODE)


def example_text(messages: Sequence[Mapping[str, Any]]) -> str:
    """What two examples are compared on: every turn but the system prompt."""
    return comparable_text(messages)


def shingles(text: str, size: int = 3) -> frozenset[str]:
    """The word `size`-grams of `text` (lowercased); a short text is one shingle."""
    words = _WORD.findall(text.lower())
    if len(words) <= size:
        return frozenset([" ".join(words)]) if words else frozenset()
    return frozenset(" ".join(words[i : i + size]) for i in range(len(words) - size + 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """|a & b| / |a | b| (0 for two empty sets)."""
    if not a or not b:
        return 0.0
    shared = len(a & b)
    return shared / (len(a) + len(b) - shared)


@dataclass(frozen=True)
class Duplicate:
    """What a new example duplicates: the key of the existing one and how similar it is."""

    key: Any
    similarity: float
    exact: bool


@dataclass
class DuplicateIndex:
    """Examples seen so far, for `find` (exact first, then near) and `add`."""

    threshold: float = 0.9
    _hashes: dict[str, Any] = field(default_factory=dict)
    _shingles: dict[Any, frozenset[str]] = field(default_factory=dict)
    _postings: dict[str, list[Any]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self._hashes)

    def add(self, key: Any, messages: Sequence[Mapping[str, Any]]) -> None:
        """Remember an example under `key`."""
        self._hashes.setdefault(content_hash(messages), key)
        grams = shingles(example_text(messages))
        self._shingles[key] = grams
        for gram in grams:
            self._postings.setdefault(gram, []).append(key)

    def find(self, messages: Sequence[Mapping[str, Any]]) -> Duplicate | None:
        """The example this one duplicates (the most similar), or None."""
        exact = self._hashes.get(content_hash(messages))
        if exact is not None:
            return Duplicate(exact, 1.0, True)
        grams = shingles(example_text(messages))
        if not grams:
            return None
        shared: Counter[Any] = Counter()
        for gram in grams:
            shared.update(self._postings.get(gram, ()))
        best: Duplicate | None = None
        for key, count in shared.most_common():
            # Jaccard <= shared / len(grams): once that is under the threshold, so is the rest.
            if count < self.threshold * len(grams):
                break
            other = self._shingles[key]
            similarity = count / (len(grams) + len(other) - count)
            if similarity >= self.threshold and (best is None or similarity > best.similarity):
                best = Duplicate(key, similarity, False)
        return best

    def add_many(self, items: Iterable[tuple[Any, Sequence[Mapping[str, Any]]]]) -> None:
        for key, messages in items:
            self.add(key, messages)


def index_store(store: ExampleStore, threshold: float) -> DuplicateIndex:
    """An index of every example in the store, deleted ones included (a rejected candidate
    stays rejected: it is not generated again)."""
    index = DuplicateIndex(threshold)
    for example in store.iter_examples(include_bad=True):
        index.add(example.id, example.messages)
    for example_id in store.ids(Query(deleted=True)):
        index.add(example_id, store.get(example_id).messages)
    return index
