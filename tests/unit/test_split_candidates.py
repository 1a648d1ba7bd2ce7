"""Candidates waiting for review are not data yet: no split gets them and no run trains on them.

A candidate is an example flagged `needs-review` and tagged `captured` or `synthetic`. A split
leaves them (and only them) in `unassigned`; a run's frozen data leaves out candidates moved
into a split by hand, and examples flagged `bad`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from workbench.cli import main
from workbench.data.split import apply_split, plan_split
from workbench.data.store import ExampleStore
from workbench.train.data import collect_examples, write_frozen
from workbench.workspace import Workspace


def pair(n: int, answer: str = "") -> dict[str, Any]:
    return {
        "messages": [
            {"role": "user", "content": f"Question {n} about canoes and kayaks on lakes?"},
            {"role": "assistant", "content": answer or f"Answer {n}: paddle along the shore."},
        ]
    }


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ExampleStore]:
    with ExampleStore(tmp_path / "examples.db") as opened:
        yield opened


def add_candidates(store: ExampleStore, records: list[dict[str, Any]], tag: str) -> list[int]:
    return store.add_examples(records, tags=[tag], flag="needs-review")


def test_a_split_leaves_candidates_unassigned(store: ExampleStore) -> None:
    data = store.add_examples([pair(n) for n in range(20)])
    by_hand = store.add_examples([pair(100)], flag="needs-review")  # not a candidate
    near_copy = pair(3, "Answer 3: paddle along the shore!")
    captured = add_candidates(store, [pair(200), pair(0), near_copy], "captured")  # copies
    synthetic = add_candidates(store, [pair(300)], "synthetic")
    store.set_split(captured, "train")  # moved by hand before review
    plan = plan_split(store, val=0.25, test=0, seed=3, near_duplicates=True)
    assert plan.held == 4
    assert sum(plan.counts.values()) == 21 and plan.counts["val"] == 5
    assert "4 candidates waiting for review stay unassigned" in plan.note
    candidates = captured + synthetic
    assert {plan.assignments[i] for i in candidates} == {"unassigned"}
    assert {plan.assignments[i] for i in data + by_hand} <= {"train", "val"}
    apply_split(store, plan)
    assert {store.get(i).split for i in candidates} == {"unassigned"}
    assert store.split_counts()["unassigned"] == 4


def test_accepted_candidates_join_the_next_split(store: ExampleStore) -> None:
    store.add_examples([pair(n) for n in range(10)])
    captured = add_candidates(store, [pair(50), pair(51)], "captured")
    assert plan_split(store, val=2).held == 2
    store.set_flag(captured, "ok")
    plan = plan_split(store, val=2)
    assert plan.held == 0 and sum(plan.counts.values()) == 12
    assert {plan.assignments[i] for i in captured} <= {"train", "val"}


def test_a_run_trains_on_neither_bad_examples_nor_candidates(store: ExampleStore) -> None:
    train = store.add_examples([pair(n) for n in range(6)], split="train")
    val = store.add_examples([pair(n) for n in range(10, 13)], split="val")
    store.set_flag(train[:1], "bad")
    store.set_flag(train[1:2], "needs-review")  # flagged by hand: still the user's data
    captured = add_candidates(store, [pair(20)], "captured")
    synthetic = add_candidates(store, [pair(21), pair(22)], "synthetic")
    store.set_split(captured + synthetic[:1], "train")
    store.set_split(synthetic[1:], "val")
    data = collect_examples(store.path)
    assert data.train_ids == tuple(train[1:])
    assert data.val_ids == tuple(val)


def test_frozen_files_hold_no_candidate(store: ExampleStore, tmp_path: Path) -> None:
    store.add_examples([pair(n) for n in range(3)], split="train")
    store.add_examples([pair(9)], split="val")
    (candidate,) = add_candidates(store, [pair(30)], "synthetic")
    store.set_split([candidate], "train")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    manifest = write_frozen(run_dir, collect_examples(store.path))
    lines = (run_dir / "train.jsonl").read_text().splitlines()
    assert manifest["train_examples"] == 3
    assert candidate not in {json.loads(line)["id"] for line in lines}


def test_the_split_command_reports_held_candidates(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    with ExampleStore(workspace.db_path) as store:
        store.add_examples([pair(n) for n in range(10)])
        add_candidates(store, [pair(40)], "captured")
    args = ["data", "split", "-w", str(workspace.root), "--val", "2", "--test", "0", "--json"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["held_for_review"] == 1
    assert report["counts"] == {"train": 8, "val": 2, "test": 0}
