"""Importing: progress events, the quarantine, cancelling, undo, the sample workspace."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from workbench.config import WorkbenchConfig
from workbench.data import importer
from workbench.data.importer import (
    FileFailed,
    FileImported,
    FileStarted,
    ImportFinished,
    ImportProgress,
    fix_quarantined,
    import_files,
    import_pending,
    pending_imports,
)
from workbench.data.store import ExampleStore, Query
from workbench.data.validate import make_validator, open_store
from workbench.workspace import Workspace, open_workspace

INVALID = Path(__file__).parent / "fixtures" / "data" / "invalid"


@pytest.fixture
def store(tmp_path: Path) -> ExampleStore:
    with ExampleStore(tmp_path / "examples.db", validator=make_validator(WorkbenchConfig())) as s:
        yield s


def write_pairs(path: Path, count: int, broken: tuple[int, ...] = ()) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for number in range(1, count + 1):
            if number in broken:
                handle.write('{"messages": [\n')
                continue
            record = {
                "messages": [
                    {"role": "user", "content": f"Question number {number}?"},
                    {"role": "assistant", "content": f"Answer number {number}."},
                ]
            }
            handle.write(json.dumps(record) + "\n")
    return path


def test_bad_lines_are_quarantined_and_the_rest_imports(
    store: ExampleStore, tmp_path: Path
) -> None:
    path = write_pairs(tmp_path / "pairs.jsonl", 50, broken=(7, 31))
    events = list(import_files(store, [path], root=tmp_path))
    assert isinstance(events[0], FileStarted) and "detected" in events[0].format
    finished = events[-1]
    assert isinstance(finished, ImportFinished)
    assert (finished.imported, finished.quarantined) == (48, 2)
    (result,) = finished.files
    assert isinstance(result, FileImported)
    assert [f.line() for f in result.quarantine] == [
        "pairs.jsonl:7: error: not JSON: Expecting value (column 15)",
        "pairs.jsonl:31: error: not JSON: Expecting value (column 15)",
    ]
    assert [(q["source"], q["line"]) for q in store.quarantined()] == [
        ("pairs.jsonl", 7),
        ("pairs.jsonl", 31),
    ]
    assert store.get(store.ids()[6]).source == "pairs.jsonl:8"


def test_invalid_examples_are_quarantined_with_every_reason(store: ExampleStore) -> None:
    finished = list(import_files(store, [INVALID / "empty-content.jsonl"]))[-1]
    assert isinstance(finished, ImportFinished) and finished.quarantined == 2
    reasons = [q["reasons"] for q in store.quarantined()]
    assert reasons == [
        ["message 2 (assistant): empty content"],
        ["message 1 (user): empty content"],
    ]


def test_warnings_import_with_the_example(store: ExampleStore) -> None:
    list(import_files(store, [INVALID / "duplicate.jsonl"]))
    assert store.count() == 3
    assert [row.problem_count for row in store.rows()] == [0, 0, 1]
    assert [p.code for p in store.get(store.ids()[2]).problems] == ["duplicate"]


def test_progress_comes_on_a_time_budget(
    store: ExampleStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer, "PROGRESS_SECONDS", 0.0)
    path = write_pairs(tmp_path / "pairs.jsonl", 3000)
    progress = [e for e in import_files(store, [path]) if isinstance(e, ImportProgress)]
    assert len(progress) > 10
    assert progress[-1].done == progress[-1].total == path.stat().st_size
    assert progress[-1].imported == 3000
    assert [p.done for p in progress] == sorted(p.done for p in progress)


def test_cancel_stops_between_batches_and_undo_takes_all_back(
    store: ExampleStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer, "BATCH_ROWS", 100)
    monkeypatch.setattr(importer, "PROGRESS_SECONDS", 0.0)
    path = write_pairs(tmp_path / "pairs.jsonl", 2000)
    cancel = threading.Event()
    for event in import_files(store, [path], cancel=cancel):
        if isinstance(event, ImportProgress) and event.done > 10_000:
            cancel.set()
        if isinstance(event, ImportFinished):
            finished = event
    assert finished.cancelled and 0 < finished.imported < 2000
    assert store.count() == finished.imported
    assert store.undo() == "import " + str(path)
    assert store.count() == 0


def test_one_unreadable_file_does_not_stop_the_others(store: ExampleStore, tmp_path: Path) -> None:
    odd = tmp_path / "odd.jsonl"
    odd.write_text('{"question": "a", "reply": "b"}\n')
    good = write_pairs(tmp_path / "good.jsonl", 5)
    finished = list(import_files(store, [odd, good], root=tmp_path))[-1]
    assert isinstance(finished, ImportFinished)
    failed, done = finished.files
    assert isinstance(failed, FileFailed) and "pass --format" in failed.error
    assert isinstance(done, FileImported) and done.imported == 5
    assert finished.undo_label == "import 2 files"


def test_a_fixed_quarantined_line_becomes_an_example(store: ExampleStore, tmp_path: Path) -> None:
    path = write_pairs(tmp_path / "pairs.jsonl", 3, broken=(2,))
    list(import_files(store, [path], root=tmp_path))
    (line,) = store.quarantined()
    still_bad = fix_quarantined(
        store, line["id"], '{"messages": [{"role": "user", "content": "Q"}]}'
    )
    assert still_bad.example_id is None
    assert [p.code for p in still_bad.problems] == ["no-assistant"]
    assert store.quarantined()[0]["reasons"] == ["no assistant message: nothing to learn"]
    fixed = '{"instruction": "Question number 2?", "output": "Answer number 2."}'
    result = fix_quarantined(store, line["id"], fixed)
    assert result.example_id is not None and store.quarantine_count() == 0
    example = store.get(result.example_id)
    assert example.source == "pairs.jsonl:2"
    assert example.messages[0] == {"role": "user", "content": "Question number 2?"}


def test_the_sample_workspace_imports_once(sample_workspace: Path) -> None:
    workspace = open_workspace(sample_workspace)
    assert [p.name for p in pending_imports(workspace)] == ["seo_pairs.jsonl"]
    finished = import_pending(workspace)
    assert finished is not None
    assert (finished.imported, finished.quarantined) == (120, 1)
    assert (finished.exact_duplicates, finished.near_duplicates) == (3, 3)
    assert pending_imports(workspace) == [] and import_pending(workspace) is None
    with open_store(workspace) as store:
        assert store.count() == 120
        assert store.quarantined()[0]["line"] == 75
        assert store.count(Query(text="dahlias")) >= 1
        assert store.get(store.ids()[0]).source == "imports/seo_pairs.jsonl:1"


def test_captured_examples_first_do_not_block_the_sample_import(sample_workspace: Path) -> None:
    """A capture proxy may create the database before the app first opens the workspace."""
    workspace = open_workspace(sample_workspace)
    captured = {
        "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    }
    with open_store(workspace) as store:
        store.add_examples([captured], source="capture", tags=["captured"], flag="needs-review")
    assert [p.name for p in pending_imports(workspace)] == ["seo_pairs.jsonl"]
    finished = import_pending(workspace)
    assert finished is not None and finished.imported == 120
    with open_store(workspace) as store:
        assert store.count() == 121
        store.delete(store.ids())
    assert pending_imports(workspace) == [], "deleting every example must not import again"


def test_accepted_candidates_are_data_of_their_own(sample_workspace: Path) -> None:
    """A workspace whose data came from a capture, reviewed and accepted, imports nothing more."""
    workspace = open_workspace(sample_workspace)
    captured = {
        "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    }
    with open_store(workspace) as store:
        ids = store.add_examples([captured], tags=["captured"], flag="needs-review")
        store.set_flag(ids, "ok")
    assert pending_imports(workspace) == []


def test_an_empty_workspace_has_nothing_pending(workspace: Workspace) -> None:
    assert pending_imports(workspace) == []
