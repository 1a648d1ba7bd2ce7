"""The review queue the Data screen shows: list, accept, edit and reject candidates."""

from __future__ import annotations

import pytest

from workbench.collect import review
from workbench.data.store import ExampleStore, Query, StoreError
from workbench.workspace import Workspace


def chat(question: str, answer: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


@pytest.fixture
def store(workspace: Workspace):  # type: ignore[no-untyped-def]
    with ExampleStore(workspace.db_path) as opened:
        opened.add_examples([{"messages": chat("Reviewed?", "Long ago.")}], source="import")
        captured = opened.add_examples(
            [
                {
                    "messages": chat("Title for boots?", "Wide Boots"),
                    "capture": {
                        "model": "claude-x",
                        "latency_ms": 812.5,
                        "usage": {"input_tokens": 9, "output_tokens": 2},
                        "tag": "titles",
                        "time": "2026-11-27T10:00:00Z",
                    },
                },
                {"messages": chat("Title for tents?", "Tents")},
            ],
            source="capture",
            tags=["captured", "model:claude-x"],
        )
        synthetic = opened.add_examples(
            [
                {
                    "messages": chat("Title for socks?", "Warm Socks"),
                    "synth": {"model": "claude-s", "topic": "winter", "cost_usd": 0.0021},
                }
            ],
            source="synth",
            tags=["synthetic"],
        )
        opened.set_flag(captured + synthetic, "needs-review")
        yield opened


def test_candidates_are_listed_with_where_they_came_from(store: ExampleStore) -> None:
    assert review.count_candidates(store) == {"captured": 2, "synthetic": 1}
    first, second, third = review.list_candidates(store)
    assert (first.origin, first.model, first.tag, first.latency_ms) == (
        "captured",
        "claude-x",
        "titles",
        812.5,
    )
    assert first.usage == {"input_tokens": 9, "output_tokens": 2}
    assert first.preview == "Title for boots?"
    assert (third.origin, third.tag, third.cost_usd) == ("synthetic", "winter", 0.0021)
    assert [c.id for c in review.list_candidates(store, "captured", offset=1)] == [second.id]


def test_accept_edit_and_reject(store: ExampleStore) -> None:
    boots, tents, socks = review.list_candidates(store)
    assert review.accept(store, [boots.id]) == 1
    assert store.get(boots.id).flag == "ok" and "captured" in store.get(boots.id).tags

    edited = review.edit(store, tents.id, chat("Title for tents?", "Light Tents for Two"))
    assert edited.messages[-1]["content"] == "Light Tents for Two"
    assert store.get(tents.id).flag == "needs-review"  # still waiting until accepted

    assert review.reject(store, [socks.id]) == 1
    assert store.get(socks.id).deleted
    assert [c.id for c in review.list_candidates(store)] == [tents.id]

    store.undo()  # the rejection is an ordinary, undoable delete
    assert not store.get(socks.id).deleted
    assert review.accept_all(store) == 2
    assert review.count_candidates(store) == {"captured": 0, "synthetic": 0}
    assert store.count(Query(flag="ok")) == 4


def test_editing_an_example_that_is_not_a_candidate_is_refused(store: ExampleStore) -> None:
    with pytest.raises(StoreError, match="not waiting for review"):
        review.edit(store, 1, chat("x", "y"))
