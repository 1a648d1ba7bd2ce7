"""Splits (deterministic, sized from the data, duplicates kept together) and statistics."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from workbench.config import WorkbenchConfig
from workbench.data.importer import import_pending
from workbench.data.split import (
    SplitError,
    apply_split,
    parse_size,
    plan_split,
    suggest_val_size,
)
from workbench.data.stats import compute_stats
from workbench.data.store import ExampleStore
from workbench.data.validate import open_store, validate_store
from workbench.workspace import open_workspace


def pair(n: int, answer: str = "") -> dict[str, Any]:
    return {
        "messages": [
            {"role": "user", "content": f"Question {n}?"},
            {"role": "assistant", "content": answer or f"Answer {n}."},
        ]
    }


@pytest.fixture
def store(tmp_path: Path) -> ExampleStore:
    with ExampleStore(tmp_path / "examples.db") as opened:
        yield opened


def test_sizes_from_the_command_line() -> None:
    assert parse_size("200") == 200
    assert parse_size("0.1") == 0.1 and parse_size("5%") == 0.05
    with pytest.raises(SplitError, match="a number of examples"):
        parse_size("lots")
    with pytest.raises(SplitError, match="below 1"):
        parse_size("1.5")


@pytest.mark.parametrize(
    ("total", "val"), [(5, 0), (120, 12), (1000, 100), (100_000, 1000), (10_000_000, 2000)]
)
def test_a_validation_size_is_suggested_from_the_size(total: int, val: int) -> None:
    assert suggest_val_size(total) == val


def test_the_split_is_deterministic_and_sized(store: ExampleStore) -> None:
    store.add_examples([pair(n) for n in range(200)])
    plan = plan_split(store, val=0.1, test=20, seed=7)
    assert plan.counts == {"train": 160, "val": 20, "test": 20}
    assert plan_split(store, val=0.1, test=20, seed=7).assignments == plan.assignments
    assert plan_split(store, val=0.1, test=20, seed=8).assignments != plan.assignments
    assert apply_split(store, plan) == 200
    assert store.split_counts() == {"train": 160, "val": 20, "test": 20, "unassigned": 0}
    assert store.undo() == "split 160/20/20 (seed 7)"


def test_the_split_does_not_depend_on_import_order(tmp_path: Path) -> None:
    plans = []
    for name, order in (("a", range(100)), ("b", reversed(range(100)))):
        with ExampleStore(tmp_path / f"{name}.db") as store:
            store.add_examples([pair(n) for n in order])
            plan = plan_split(store, val=10, seed=1)
            plans.append(
                {store.get(i).messages[0]["content"]: s for i, s in plan.assignments.items()}
            )
    assert plans[0] == plans[1]


def test_copies_land_in_the_same_split(store: ExampleStore) -> None:
    ids = store.add_examples([pair(n % 50) for n in range(100)])
    plan = plan_split(store, val=0.2, test=0.2)
    for first, second in zip(ids[:50], ids[50:], strict=True):
        assert plan.assignments[first] == plan.assignments[second]


def test_near_duplicates_land_in_the_same_split(store: ExampleStore) -> None:
    text = " ".join(f"word{n}" for n in range(80))
    ids = store.add_examples(
        [pair(n) for n in range(40)] + [pair(99, text), pair(99, text.replace("word5 ", "wordX "))]
    )
    for seed in range(5):
        plan = plan_split(store, val=0.3, seed=seed, near_duplicates=True)
        assert plan.assignments[ids[-1]] == plan.assignments[ids[-2]]


def test_by_tag_keeps_proportions(store: ExampleStore) -> None:
    ids = store.add_examples([pair(n) for n in range(100)])
    store.add_tag(ids[:20], "rare")
    plan = plan_split(store, val=0.1, test=0.1, by_tag=True)
    rare = [plan.assignments[i] for i in ids[:20]]
    assert rare.count("val") == 2 and rare.count("test") == 2
    assert plan.counts == {"train": 80, "val": 10, "test": 10}


def test_too_big_a_split_is_refused(store: ExampleStore) -> None:
    store.add_examples([pair(n) for n in range(10)])
    with pytest.raises(SplitError, match="more than the 10 examples"):
        plan_split(store, val=8, test=5)


def test_stats_of_the_sample(sample_workspace: Path) -> None:
    workspace = open_workspace(sample_workspace)
    import_pending(workspace)
    with open_store(workspace) as store:
        list(validate_store(store, WorkbenchConfig(), threading.Event()))
        stats = compute_stats(store, workspace.config)
    assert stats.examples == 120 and stats.quarantined == 1
    assert stats.splits["unassigned"] == 120
    assert (stats.exact_duplicates, stats.near_duplicates) == (3, 3)
    tokens = stats.tokens
    assert tokens.limit == workspace.config.train.max_seq_length
    assert tokens.max > 3000 and tokens.p50 < 1500
    assert sum(tokens.histogram.counts) == 120
    assert tokens.histogram.rows()[-1][0].endswith("+")
    assert "estimates" in tokens.note
    problems = {code: count for _, code, count in stats.problems}
    assert problems == {
        "too-long": 1,
        "duplicate": 3,
        "near-duplicate": 3,
        "truncated": 2,
        "language": 1,
    }
