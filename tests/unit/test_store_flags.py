"""New examples carry their flag from the insert on: a candidate is never stored unflagged.

Capture and synth add candidates flagged `needs-review`. When the flag was a second transaction,
a crash between the two left candidates that looked like accepted examples (and one undo took
only the flag away). The flag is now written with the rows: one transaction, one action.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from workbench.collect.dedupe import DuplicateIndex
from workbench.collect.fake_upstream import anthropic_message
from workbench.collect.pairs import Exchange
from workbench.collect.sink import StoreSink
from workbench.collect.synth import SynthSpec, _apply
from workbench.data.store import ExampleStore, NewExample, Query, StoreError


def pair(n: int) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "user", "content": f"Title for page {n}?"},
            {"role": "assistant", "content": f"Page {n}: a title"},
        ]
    }


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ExampleStore]:
    with ExampleStore(tmp_path / "examples.db") as opened:
        yield opened


def assert_added_in_one_action(store: ExampleStore, ids: list[int], label: str) -> None:
    """Each example was created by the one action `label`, flagged from its first row on, and
    one undo removes them all (none is left behind, unflagged, as if accepted)."""
    assert ids and all(store.get(i).flag == "needs-review" for i in ids)
    for example_id in ids:
        (entry,) = store.history(example_id)
        assert (entry.label, entry.before, entry.after) == (label, None, None)
    assert store.undo() == label
    assert store.count() == 0
    assert store.redo() == label
    assert [store.get(i).flag for i in ids] == ["needs-review"] * len(ids)


def test_examples_are_added_with_their_flag_in_the_same_action(store: ExampleStore) -> None:
    ids = store.add_examples(
        [pair(1), pair(2)], source="test", label="add two", tags=["captured"], flag="needs-review"
    )
    assert store.ids(Query(flag="needs-review", tag="captured")) == ids
    assert_added_in_one_action(store, ids, "add two")


def test_an_unknown_flag_refuses_the_whole_batch(store: ExampleStore) -> None:
    items = [NewExample(pair(1)), NewExample(pair(2), flag="maybe")]  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="unknown flag 'maybe'"):
        store.add_batch(items, label="mixed")
    with pytest.raises(StoreError, match="unknown flag"):
        store.add_examples([pair(3)], flag="later")  # type: ignore[arg-type]
    assert store.count_all() == 0 and store.undo_label() is None


def test_examples_added_without_a_flag_are_ok(store: ExampleStore) -> None:
    (example_id,) = store.add_examples([pair(1)])
    assert store.get(example_id).flag == "ok"


def exchange(n: int) -> Exchange:
    request = {"model": "claude-x", "max_tokens": 20, "messages": [pair(n)["messages"][0]]}
    answer = anthropic_message("claude-x", f"Page {n}: a title", 20)
    return Exchange(
        api="anthropic",
        path="/v1/messages",
        request_body=json.dumps(request).encode(),
        status=200,
        response_body=json.dumps(answer).encode(),
        started_at=1_800_000_000.0,
    )


def test_captured_pairs_are_stored_flagged_in_one_action(tmp_path: Path) -> None:
    sink = StoreSink.for_database(tmp_path / "examples.db")
    for n in range(3):
        sink.submit(exchange(n))
    sink.close()
    assert sink.stats().stored == 3
    with ExampleStore(tmp_path / "examples.db") as store:
        ids = store.ids(Query(tag="captured"))
        assert len(ids) == 3
        (label,) = {store.history(i)[0].label for i in ids}
        assert label.startswith("capture ")
        assert_added_in_one_action(store, ids, label)


def test_synthetic_examples_are_stored_flagged_in_one_action(store: ExampleStore) -> None:
    generated = [{"input": f"Title for page {n}?", "output": f"Page {n}"} for n in range(3)]
    spec = SynthSpec(seeds=[], model="claude-x", job_id="job-1")
    result = _apply(spec, store, DuplicateIndex(), generated, {"cost_usd": 0.03}, 0, {})
    assert result["added"] == 3
    ids = store.ids(Query(tag="synthetic"))
    assert_added_in_one_action(store, ids, "synthesize 3 example(s)")
