"""The examples store: edits, history, undo/redo across restarts, search, quarantine."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from workbench.config import WorkbenchConfig
from workbench.data.store import (
    FORMAT_KEY,
    ExampleStore,
    NewExample,
    Problem,
    QuarantinedLine,
    Query,
    StoreError,
)
from workbench.data.validate import make_validator


def chat(user: str, answer: str, **extra: Any) -> dict[str, Any]:
    return {
        "messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}],
        **extra,
    }


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "examples.db"


@pytest.fixture
def store(db: Path) -> ExampleStore:
    with ExampleStore(db, validator=make_validator(WorkbenchConfig())) as opened:
        yield opened


def add_three(store: ExampleStore) -> list[int]:
    return store.add_examples(
        [
            chat("How do I repot a fern?", "Pick a pot one size up."),
            chat("Best time to prune roses?", "Late winter, before buds break."),
            chat("Why do tomatoes split?", "Uneven watering."),
        ],
        source="garden.jsonl",
    )


def test_an_example_keeps_its_fields(store: ExampleStore) -> None:
    record = chat("Hi", "Hello.", id="x1", **{FORMAT_KEY: {"shape": "sharegpt"}})
    (example_id,) = store.add_batch([NewExample(record, "in.jsonl:4", split="val")])
    example = store.get(example_id)
    assert example.source == "in.jsonl:4" and example.split == "val"
    assert example.record() == chat("Hi", "Hello.", id="x1")
    assert example.format_hint == {"shape": "sharegpt"}


def test_edit_undo_redo_survive_a_restart(db: Path, store: ExampleStore) -> None:
    first, *_ = add_three(store)
    new = [
        {"role": "user", "content": "How do I repot a fern?"},
        {"role": "assistant", "content": "Pick a pot one size up, in spring."},
    ]
    store.update_messages(first, new)
    store.close()
    with ExampleStore(db) as reopened:
        assert reopened.undo_label() == f"edit example {first}"
        assert reopened.undo() == f"edit example {first}"
        assert reopened.get(first).messages[1]["content"] == "Pick a pot one size up."
    with ExampleStore(db) as again:
        assert again.redo() == f"edit example {first}"
        assert again.get(first).messages == new
        history = again.history(first)
        assert [entry.label for entry in history] == [
            "add examples from garden.jsonl",
            f"edit example {first}",
        ]
        assert history[1].before is not None and history[1].after is not None
        assert json.loads(history[1].after["messages"]) == new


def test_delete_and_restore_are_undoable(store: ExampleStore) -> None:
    ids = add_three(store)
    assert store.delete(ids[:2]) == 2
    assert store.count() == 1 and store.count(Query(deleted=True)) == 2
    store.undo()
    assert store.count() == 3
    store.redo()
    assert store.count() == 1
    assert store.restore([ids[0]]) == 1 and store.count() == 2


def test_a_new_change_discards_the_redo(store: ExampleStore) -> None:
    ids = add_three(store)
    store.set_flag([ids[0]], "bad")
    store.undo()
    store.set_note(ids[1], "check this")
    assert store.redo() is None and store.get(ids[0]).flag == "ok"


def test_undoing_an_import_removes_its_examples(store: ExampleStore) -> None:
    add_three(store)
    assert store.undo() == "add examples from garden.jsonl"
    assert store.count() == 0
    store.redo()
    assert store.count() == 3


def test_bulk_changes_are_one_action_each(store: ExampleStore) -> None:
    ids = add_three(store)
    assert store.assign_splits({ids[0]: "train", ids[1]: "val", ids[2]: "test"}) == 3
    assert store.split_counts() == {"train": 1, "val": 1, "test": 1, "unassigned": 0}
    store.update_messages_many(
        {
            i: [{"role": "user", "content": "q"}, {"role": "assistant", "content": f"a{i}."}]
            for i in ids
        },
        "rewrite answers",
    )
    store.add_tags({ids[0]: ["duplicate"], ids[1]: ["near-duplicate", "duplicate"]}, "duplicates")
    assert store.undo() == "tag duplicates" and store.all_tags() == []
    assert store.undo() == "rewrite answers"
    assert store.get(ids[2]).messages[1]["content"] == "Uneven watering."
    assert store.undo() == "split"
    assert store.split_counts()["unassigned"] == 3


def test_moving_examples_does_not_copy_their_conversations(store: ExampleStore) -> None:
    ids = add_three(store)
    store.set_split(ids, "train")
    entry = store.history(ids[0])[-1]
    assert entry.before is not None and entry.after is not None
    assert entry.before["split"] == "unassigned" and entry.after["split"] == "train"
    assert "messages" not in entry.after


def test_tags_must_be_words_without_commas(store: ExampleStore) -> None:
    ids = add_three(store)
    with pytest.raises(StoreError, match="without commas"):
        store.add_tag(ids, "a,b")
    assert store.add_tag(ids[:2], " review ") == 2
    assert store.all_tags() == [("review", 2)]


def test_search_finds_words_by_prefix_and_filters(store: ExampleStore) -> None:
    ids = add_three(store)
    store.set_split([ids[1]], "val")
    assert store.count(Query(text="prun")) == 1
    assert [row.id for row in store.rows(Query(text="pot"))] == [ids[0]]
    assert store.count(Query(text="roses", split="train")) == 0
    assert store.count(Query(text="roses", split="val")) == 1


def test_validator_runs_on_add_and_on_every_edit(store: ExampleStore) -> None:
    (example_id,) = store.add_examples([chat("Hi", "")])
    assert [p.code for p in store.get(example_id).problems] == ["empty-content"]
    store.update_messages(example_id, chat("Hi", "Hello!")["messages"])
    assert store.get(example_id).problems == ()
    assert store.count(Query(has_problems=True)) == 0
    store.undo()
    assert store.count(Query(has_problems=True)) == 1


def test_problems_of_one_kind_are_replaced(store: ExampleStore) -> None:
    ids = store.add_examples([chat("Hi", ""), chat("Yo", "Hey.")])
    store.replace_problems(["duplicate"], {ids[1]: [Problem("warning", "duplicate", "copy")]})
    store.replace_problems(["duplicate"], {ids[0]: [Problem("warning", "duplicate", "copy")]})
    assert [p.code for p in store.get(ids[0]).problems] == ["empty-content", "duplicate"]
    assert store.get(ids[1]).problems == ()
    assert [row.problem_count for row in store.rows()] == [2, 0]


def test_exact_duplicates_by_content(store: ExampleStore) -> None:
    ids = store.add_examples([chat("a", "b."), chat("c", "d."), chat("a", "b.", id=3)])
    assert store.duplicate_groups() == [[ids[0], ids[2]]]


def test_quarantine_fix_becomes_an_example(store: ExampleStore) -> None:
    store.add_batch([], quarantine=[QuarantinedLine("in.jsonl", 7, "{bad", ["not JSON"])])
    (line,) = store.quarantined()
    assert (line["source"], line["line"], line["reasons"]) == ("in.jsonl", 7, ["not JSON"])
    store.update_quarantined(line["id"], '{"messages": []}', ["'messages' is empty"])
    assert store.quarantined()[0]["reasons"] == ["'messages' is empty"]
    example_id = store.admit_quarantined(line["id"], NewExample(chat("q", "a."), "in.jsonl:7"))
    assert store.quarantine_count() == 0 and store.get(example_id).source == "in.jsonl:7"
    assert store.undo() == "add fixed line in.jsonl:7" and store.count() == 0


def test_iter_examples_reads_tags_and_problems_in_batches(store: ExampleStore) -> None:
    ids = store.add_examples([chat(f"q{i}", "" if i % 3 == 0 else f"a{i}.") for i in range(10)])
    store.add_tag(ids[::2], "even")
    examples = list(store.iter_examples(batch=3))
    assert [e.id for e in examples] == ids
    assert [bool(e.tags) for e in examples] == [i % 2 == 0 for i in range(10)]
    assert [bool(e.problems) for e in examples] == [i % 3 == 0 for i in range(10)]


QUERIES = [
    (Query(), "examples_live"),
    (Query(split="val"), "examples_split"),
    (Query(flag="bad"), "examples_flag"),
    (Query(has_problems=True), "examples_problems"),
    (Query(min_tokens=100, sort="output_tokens"), "examples_tokens"),
    (Query(tag="review"), "tags_by_tag"),
    (Query(text="rose"), "INTEGER PRIMARY KEY"),
    (Query(text="rose", split="train"), "examples_fts"),
]


def plan(store: ExampleStore, sql: str, params: list[Any]) -> str:
    return " ; ".join(row[3] for row in store._db.execute(f"EXPLAIN QUERY PLAN {sql}", params))


@pytest.mark.parametrize(("query", "index"), QUERIES)
def test_count_and_first_page_use_indexes(store: ExampleStore, query: Query, index: str) -> None:
    """The Data screen's queries never read the whole table, and the first page in the
    default order needs no sort."""
    add_three(store)
    where, params = store._where(query)
    order = {"id": "e.id", "output_tokens": "e.output_tokens, e.id"}[query.sort]
    page = plan(
        store, f"SELECT e.id FROM examples e WHERE {where} ORDER BY {order} LIMIT 200", params
    )
    count = plan(store, f"SELECT count(*) FROM examples e WHERE {where}", params)
    assert index in page, page
    for found in (page, count):
        assert re.search(r"\bSCAN e\b", found) is None, found
        assert "USING" in found, found
    if not query.text and query.sort == "id" and not (query.tag or query.has_problems):
        assert "TEMP B-TREE" not in page, page


def test_a_text_search_counts_only_live_examples(store: ExampleStore) -> None:
    ids = add_three(store)
    store.add_examples([chat("How do I prune apple trees?", "In winter.")])
    assert store.count(Query(text="prune")) == 2
    store.delete([ids[1]])
    assert store.count(Query(text="prune")) == 1
    assert store.count(Query(text="prune", sort="output_tokens")) == 1
    assert store.count(Query(text="prune", deleted=True)) == 1


def test_undo_of_an_expected_action_refuses_a_newer_one(db: Path, store: ExampleStore) -> None:
    """A screen undoing its own change must not undo what another process wrote meanwhile."""
    ids = add_three(store)
    store.set_flag([ids[0]], "ok")
    mine = store.last_action()
    assert mine is not None
    with ExampleStore(db) as other:  # a capture proxy, say, adds a candidate
        other.add_examples([chat("New?", "Yes.")], label="capture 1 example(s)")
    with pytest.raises(StoreError, match="capture 1 example"):
        store.undo(expected=mine[0])
    assert store.count() == 4  # nothing undone
    with ExampleStore(db) as other:
        assert other.undo() == "capture 1 example(s)"
    assert store.undo(expected=mine[0]) == mine[1]
