"""kill -9 in the middle of an import or of edits leaves a consistent database: at most the
transaction in flight is lost, and undo still works afterwards."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workbench.data.store import ExampleStore, _search_text

IMPORT = """
import sys
from pathlib import Path
from workbench.data import importer
from workbench.data.store import ExampleStore
importer.BATCH_ROWS = 200
with ExampleStore(Path(sys.argv[1])) as store:
    print("ready", flush=True)
    for _ in importer.import_files(store, [Path(sys.argv[2])]):
        pass
print("done", flush=True)
"""

EDIT = """
import sys
from pathlib import Path
from workbench.data.store import ExampleStore
with ExampleStore(Path(sys.argv[1])) as store:
    ids = store.ids()
    print("ready", flush=True)
    for step in range(1_000_000):
        example_id = ids[step % len(ids)]
        if step % 5 == 4:
            store.set_split([example_id], ("train", "val", "test")[step % 3])
        else:
            messages = [{"role": "user", "content": f"question {example_id}"},
                        {"role": "assistant", "content": f"edit {step} of {example_id}"}]
            store.update_messages(example_id, messages)
"""


def start(code: str, *args: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    return process


def kill_after(process: subprocess.Popen[str], seconds: float) -> None:
    time.sleep(seconds)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def assert_consistent(path: Path) -> None:
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        db.execute("INSERT INTO examples_fts (examples_fts) VALUES ('integrity-check')")
        examples = dict(db.execute("SELECT id, messages FROM examples"))
        indexed = dict(db.execute("SELECT rowid, text FROM examples_fts"))
        assert indexed == {i: _search_text(json.loads(m)) for i, m in examples.items()}
        counts = db.execute(
            "SELECT count(*) FROM examples e WHERE problem_count !="
            " (SELECT count(*) FROM problems p WHERE p.example_id = e.id)"
        ).fetchone()[0]
        assert counts == 0
    finally:
        db.close()


@pytest.fixture
def pairs(tmp_path: Path) -> Path:
    path = tmp_path / "pairs.jsonl"
    with path.open("w") as handle:
        for n in range(1, 20_001):
            record = {
                "messages": [
                    {"role": "user", "content": f"Question {n} about gardens?"},
                    {"role": "assistant", "content": f"Answer {n}: water less."},
                ]
            }
            handle.write(json.dumps(record) + "\n")
    return path


@pytest.mark.parametrize("delay", [0.05, 0.4, 0.8])
def test_kill_during_import(tmp_path: Path, pairs: Path, delay: float) -> None:
    db = tmp_path / "examples.db"
    process = start(IMPORT, db, pairs)
    kill_after(process, delay)
    assert_consistent(db)
    with ExampleStore(db) as store:
        imported = store.count()
        print(f"killed after {delay} s: {imported} imported")
        sources = [example.source for example in store.iter_examples()]
        assert sources == [f"{pairs}:{n}" for n in range(1, imported + 1)]
        if imported:
            assert store.undo() == f"import {pairs}"
            assert store.count() == 0


@pytest.mark.parametrize("delay", [0.1, 0.5])
def test_kill_during_edits(tmp_path: Path, delay: float) -> None:
    db = tmp_path / "examples.db"
    with ExampleStore(db) as store:
        store.add_examples(
            [
                {
                    "messages": [
                        {"role": "user", "content": f"question {n}"},
                        {"role": "assistant", "content": "first answer"},
                    ]
                }
                for n in range(50)
            ]
        )
    process = start(EDIT, db)
    kill_after(process, delay)
    assert_consistent(db)
    with ExampleStore(db) as store:
        for example_id in store.ids():
            history = store.history(example_id)
            last_edit = [h for h in history if h.after is not None and "messages" in h.after]
            expected = (
                json.loads(last_edit[-1].after["messages"])[1]["content"]
                if last_edit
                else "first answer"
            )
            assert store.get(example_id).messages[1]["content"] == expected
        print(f"killed after {delay} s: {len(store.history(1))} changes of example 1")
        label = store.undo_label()
        assert label is not None and store.undo() == label
