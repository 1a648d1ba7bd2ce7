"""The examples database (`examples.db`): SQLite in WAL mode, full-text search, full history.

Every change is one transaction and one undoable *action*: the rows it touched are snapshotted
before and after, so undo and redo work across restarts and a crash loses at most the
transaction in flight. Deletes are soft (`deleted = 1`) so they can be undone too.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

Split = Literal["train", "val", "test", "unassigned"]
Flag = Literal["ok", "bad", "needs-review"]
Severity = Literal["error", "warning"]
SortKey = Literal["id", "output_tokens", "updated", "split", "flag"]

SPLITS: tuple[Split, ...] = get_args(Split)
FLAGS: tuple[Flag, ...] = get_args(Flag)
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS examples (
    id INTEGER PRIMARY KEY,
    messages TEXT NOT NULL,
    extra TEXT NOT NULL DEFAULT '{}',
    split TEXT NOT NULL DEFAULT 'unassigned'
        CHECK (split IN ('train', 'val', 'test', 'unassigned')),
    flag TEXT NOT NULL DEFAULT 'ok' CHECK (flag IN ('ok', 'bad', 'needs-review')),
    note TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT '',
    deleted INTEGER NOT NULL DEFAULT 0,
    content_hash TEXT NOT NULL,
    preview TEXT NOT NULL DEFAULT '',
    output_tokens INTEGER NOT NULL DEFAULT 0,
    problem_count INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS examples_split ON examples (deleted, split, id);
CREATE INDEX IF NOT EXISTS examples_flag ON examples (deleted, flag, id);
CREATE INDEX IF NOT EXISTS examples_hash ON examples (content_hash);
CREATE INDEX IF NOT EXISTS examples_tokens ON examples (deleted, output_tokens);
CREATE TABLE IF NOT EXISTS tags (
    example_id INTEGER NOT NULL,
    tag TEXT NOT NULL,
    PRIMARY KEY (example_id, tag)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tags_by_tag ON tags (tag, example_id);
CREATE TABLE IF NOT EXISTS problems (
    example_id INTEGER NOT NULL,
    severity TEXT NOT NULL,
    code TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS problems_by_example ON problems (example_id);
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    line INTEGER,
    raw TEXT NOT NULL,
    reasons TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS actions (
    id INTEGER PRIMARY KEY,
    label TEXT NOT NULL,
    created_at REAL NOT NULL,
    state INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY,
    action_id INTEGER NOT NULL,
    example_id INTEGER NOT NULL,
    before TEXT,
    after TEXT
);
CREATE INDEX IF NOT EXISTS history_by_action ON history (action_id);
CREATE INDEX IF NOT EXISTS history_by_example ON history (example_id);
CREATE VIRTUAL TABLE IF NOT EXISTS examples_fts USING fts5 (text, tokenize = 'unicode61');
"""

# actions.state
_DONE, _UNDONE, _DISCARDED = 0, 1, 2
# The columns a snapshot holds: everything an edit can change.
_SNAPSHOT_COLUMNS = ("messages", "extra", "split", "flag", "note", "deleted")


class StoreError(Exception):
    """A change that cannot be made; the message says why. Nothing was written."""


@dataclass(frozen=True)
class Problem:
    """One validation finding attached to an example."""

    severity: Severity
    code: str
    message: str


Validator = Callable[[Mapping[str, Any]], list[Problem]]


@dataclass(frozen=True)
class Example:
    """One training example as stored."""

    id: int
    messages: list[dict[str, Any]]
    split: Split = "unassigned"
    flag: Flag = "ok"
    tags: tuple[str, ...] = ()
    note: str = ""
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    deleted: bool = False
    problems: tuple[Problem, ...] = ()
    updated_at: float = 0.0

    def record(self) -> dict[str, Any]:
        """The example as an OpenAI-chat JSON object (extra fields kept)."""
        return {**self.extra, "messages": self.messages}


@dataclass(frozen=True)
class ExampleRow:
    """What a table row shows: cheap to load by the thousand."""

    id: int
    split: Split
    flag: Flag
    tags: tuple[str, ...]
    preview: str
    output_tokens: int
    problem_count: int
    deleted: bool


@dataclass(frozen=True)
class Query:
    """A filtered, sorted view of the examples."""

    text: str = ""
    """Full-text search (FTS5); words are matched as prefixes."""
    split: Split | None = None
    flag: Flag | None = None
    tag: str | None = None
    has_problems: bool | None = None
    min_tokens: int | None = None
    max_tokens: int | None = None
    sort: SortKey = "id"
    descending: bool = False
    deleted: bool = False
    """Show the deleted examples instead of the live ones."""


@dataclass(frozen=True)
class HistoryEntry:
    """One change of one example: which action, when, and the states before and after."""

    action_id: int
    label: str
    time: float
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    undone: bool


def content_hash(messages: Sequence[Mapping[str, Any]]) -> str:
    """A hash of the conversation (roles and contents), for exact-duplicate detection."""
    canonical = json.dumps(
        [[m.get("role"), m.get("content")] for m in messages], ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def estimate_tokens(text: str) -> int:
    """A fast token estimate (about 4 characters a token in English); exact counts need the
    model's tokenizer, which validation loads."""
    return (len(text) + 3) // 4


def preview_of(messages: Sequence[Mapping[str, Any]]) -> str:
    """The first non-empty line of the first user message (what a table row shows)."""
    for message in messages:
        if message.get("role") == "user" and isinstance(message.get("content"), str):
            for line in message["content"].splitlines():
                if line.strip():
                    return line.strip()[:200]
    return ""


def _output_text(messages: Sequence[Mapping[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "assistant" and isinstance(message.get("content"), str):
            return str(message["content"])
    return ""


def _search_text(messages: Sequence[Mapping[str, Any]]) -> str:
    return "\n".join(str(m.get("content") or "") for m in messages if m.get("role") != "system")


def fts_query(text: str) -> str:
    """User text to an FTS5 query: each word quoted and matched as a prefix, all required."""
    words = [word.replace('"', '""') for word in text.split()]
    return " ".join(f'"{word}"*' for word in words if word)


class ExampleStore:
    """The examples of one workspace. Thread-safe: one connection guarded by a lock."""

    def __init__(self, path: Path, validator: Validator | None = None) -> None:
        self.path = path
        self.validator = validator
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def __enter__(self) -> ExampleStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- transactions ---------------------------------------------------------------------

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db, self._lock)

    # --- adding -------------------------------------------------------------------------

    def add_examples(
        self,
        records: Iterable[Mapping[str, Any]],
        source: str = "",
        label: str = "",
        split: Split = "unassigned",
        tags: Sequence[str] = (),
    ) -> list[int]:
        """Add OpenAI-chat records (`{"messages": [...], ...}`) as one undoable action."""
        now = time.time()
        ids: list[int] = []
        with self._transaction() as db:
            action = self._new_action(db, label or f"add examples from {source or 'input'}")
            for record in records:
                ids.append(self._insert(db, record, source, split, now))
            self._set_tags(db, ids, tags)
            db.executemany(
                "INSERT INTO history (action_id, example_id) VALUES (?, ?)",
                [(action, example_id) for example_id in ids],
            )
        return ids

    def _insert(
        self,
        db: sqlite3.Connection,
        record: Mapping[str, Any],
        source: str,
        split: Split,
        now: float,
    ) -> int:
        messages = list(record["messages"])
        extra = {key: value for key, value in record.items() if key != "messages"}
        problems = self.validator(record) if self.validator else []
        cursor = db.execute(
            "INSERT INTO examples (messages, extra, split, source, content_hash, preview,"
            " output_tokens, problem_count, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                json.dumps(messages, ensure_ascii=False),
                json.dumps(extra, ensure_ascii=False),
                split,
                source,
                content_hash(messages),
                preview_of(messages),
                estimate_tokens(_output_text(messages)),
                len(problems),
                now,
                now,
            ),
        )
        example_id = int(cursor.lastrowid or 0)
        db.execute(
            "INSERT INTO examples_fts (rowid, text) VALUES (?, ?)",
            (example_id, _search_text(messages)),
        )
        self._write_problems(db, example_id, problems)
        return example_id

    def _write_problems(
        self, db: sqlite3.Connection, example_id: int, problems: Sequence[Problem]
    ) -> None:
        db.execute("DELETE FROM problems WHERE example_id = ?", (example_id,))
        db.executemany(
            "INSERT INTO problems (example_id, severity, code, message) VALUES (?, ?, ?, ?)",
            [(example_id, p.severity, p.code, p.message) for p in problems],
        )
        db.execute(
            "UPDATE examples SET problem_count = ? WHERE id = ?", (len(problems), example_id)
        )

    def set_problems(self, problems_by_id: Mapping[int, Sequence[Problem]]) -> None:
        """Replace the recorded problems of these examples (validation is not undoable)."""
        with self._transaction() as db:
            for example_id, problems in problems_by_id.items():
                self._write_problems(db, example_id, problems)

    # --- reading --------------------------------------------------------------------------

    def get(self, example_id: int) -> Example:
        """One example with its tags and problems; StoreError if there is none."""
        with self._lock:
            row = self._db.execute("SELECT * FROM examples WHERE id = ?", (example_id,)).fetchone()
            if row is None:
                raise StoreError(f"no example {example_id}")
            return self._example(row)

    def _example(self, row: sqlite3.Row) -> Example:
        tags = tuple(
            r[0]
            for r in self._db.execute(
                "SELECT tag FROM tags WHERE example_id = ? ORDER BY tag", (row["id"],)
            )
        )
        problems = tuple(
            Problem(r["severity"], r["code"], r["message"])
            for r in self._db.execute(
                "SELECT severity, code, message FROM problems WHERE example_id = ?", (row["id"],)
            )
        )
        return Example(
            id=row["id"],
            messages=json.loads(row["messages"]),
            split=row["split"],
            flag=row["flag"],
            tags=tags,
            note=row["note"],
            source=row["source"],
            extra=json.loads(row["extra"]),
            deleted=bool(row["deleted"]),
            problems=problems,
            updated_at=row["updated_at"],
        )

    def iter_examples(
        self, split: Split | None = None, include_bad: bool = False, batch: int = 1000
    ) -> Iterator[Example]:
        """Live examples in id order (of one split), without those flagged bad unless asked.

        Reads in batches, so memory stays flat on any dataset size.
        """
        last = 0
        while True:
            with self._lock:
                clauses = ["deleted = 0", "id > ?"]
                params: list[Any] = [last]
                if split is not None:
                    clauses.append("split = ?")
                    params.append(split)
                if not include_bad:
                    clauses.append("flag != 'bad'")
                rows = self._db.execute(
                    f"SELECT * FROM examples WHERE {' AND '.join(clauses)} ORDER BY id LIMIT ?",
                    (*params, batch),
                ).fetchall()
                examples = [self._example(row) for row in rows]
            if not examples:
                return
            yield from examples
            last = examples[-1].id

    def _where(self, query: Query) -> tuple[str, list[Any]]:
        clauses = ["e.deleted = ?"]
        params: list[Any] = [1 if query.deleted else 0]
        if query.text.strip():
            clauses.append("e.id IN (SELECT rowid FROM examples_fts WHERE examples_fts MATCH ?)")
            params.append(fts_query(query.text))
        for column, value in (("split", query.split), ("flag", query.flag)):
            if value is not None:
                clauses.append(f"e.{column} = ?")
                params.append(value)
        if query.tag is not None:
            clauses.append("e.id IN (SELECT example_id FROM tags WHERE tag = ?)")
            params.append(query.tag)
        if query.has_problems is not None:
            clauses.append("e.problem_count > 0" if query.has_problems else "e.problem_count = 0")
        if query.min_tokens is not None:
            clauses.append("e.output_tokens >= ?")
            params.append(query.min_tokens)
        if query.max_tokens is not None:
            clauses.append("e.output_tokens <= ?")
            params.append(query.max_tokens)
        return " AND ".join(clauses), params

    def count(self, query: Query = Query()) -> int:
        """How many examples the query selects."""
        where, params = self._where(query)
        with self._lock:
            return int(
                self._db.execute(
                    f"SELECT count(*) FROM examples e WHERE {where}", params
                ).fetchone()[0]
            )

    def rows(self, query: Query = Query(), offset: int = 0, limit: int = 200) -> list[ExampleRow]:
        """One page of table rows for the query."""
        where, params = self._where(query)
        column = {"updated": "updated_at"}.get(query.sort, query.sort)
        order = f"e.{column} {'DESC' if query.descending else 'ASC'}, e.id"
        sql = (
            "SELECT e.id, e.split, e.flag, e.preview, e.output_tokens, e.problem_count,"
            " e.deleted, (SELECT group_concat(tag, ',') FROM tags t WHERE t.example_id = e.id)"
            f" AS tags FROM examples e WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?"
        )
        with self._lock:
            found = self._db.execute(sql, (*params, limit, offset)).fetchall()
        return [
            ExampleRow(
                id=row["id"],
                split=row["split"],
                flag=row["flag"],
                tags=tuple(sorted(row["tags"].split(","))) if row["tags"] else (),
                preview=row["preview"],
                output_tokens=row["output_tokens"],
                problem_count=row["problem_count"],
                deleted=bool(row["deleted"]),
            )
            for row in found
        ]

    def ids(self, query: Query = Query()) -> list[int]:
        """Every id the query selects (for bulk actions)."""
        where, params = self._where(query)
        with self._lock:
            return [
                r[0]
                for r in self._db.execute(
                    f"SELECT e.id FROM examples e WHERE {where} ORDER BY e.id", params
                )
            ]

    def split_counts(self) -> dict[str, int]:
        """Live examples per split."""
        with self._lock:
            counts: dict[str, int] = dict.fromkeys(SPLITS, 0)
            for row in self._db.execute(
                "SELECT split, count(*) FROM examples WHERE deleted = 0 GROUP BY split"
            ):
                counts[row[0]] = row[1]
            return counts

    def all_tags(self) -> list[tuple[str, int]]:
        """Every tag on a live example, with how many carry it."""
        with self._lock:
            return [
                (row[0], row[1])
                for row in self._db.execute(
                    "SELECT tag, count(*) FROM tags JOIN examples e ON e.id = tags.example_id"
                    " WHERE e.deleted = 0 GROUP BY tag ORDER BY tag"
                )
            ]

    # --- changing -------------------------------------------------------------------------

    def update_messages(self, example_id: int, messages: list[dict[str, Any]]) -> Example:
        """Replace an example's conversation (validated if the store has a validator)."""
        if not isinstance(messages, list) or not messages:
            raise StoreError("an example needs at least one message")
        record = {"messages": messages}
        problems = self.validator(record) if self.validator else []
        with self._transaction() as db:
            action = self._new_action(db, f"edit example {example_id}")
            before = self._snapshot(db, example_id)
            db.execute(
                "UPDATE examples SET messages = ?, content_hash = ?, preview = ?,"
                " output_tokens = ?, updated_at = ? WHERE id = ?",
                (
                    json.dumps(messages, ensure_ascii=False),
                    content_hash(messages),
                    preview_of(messages),
                    estimate_tokens(_output_text(messages)),
                    time.time(),
                    example_id,
                ),
            )
            self._reindex(db, example_id, messages)
            self._write_problems(db, example_id, problems)
            self._record(db, action, example_id, before)
        return self.get(example_id)

    def set_split(self, ids: Sequence[int], split: Split) -> int:
        """Move examples to a split; returns how many changed."""
        if split not in SPLITS:
            raise StoreError(f"unknown split {split!r} (use one of {', '.join(SPLITS)})")
        return self._update_column(ids, "split", split, f"move to {split}")

    def set_flag(self, ids: Sequence[int], flag: Flag) -> int:
        """Flag examples ok, bad or needs-review."""
        if flag not in FLAGS:
            raise StoreError(f"unknown flag {flag!r} (use one of {', '.join(FLAGS)})")
        return self._update_column(ids, "flag", flag, f"flag {flag}")

    def set_note(self, example_id: int, note: str) -> int:
        return self._update_column([example_id], "note", note, "edit note")

    def delete(self, ids: Sequence[int]) -> int:
        """Delete examples (undoable)."""
        return self._update_column(ids, "deleted", 1, f"delete {len(ids)} example(s)")

    def restore(self, ids: Sequence[int]) -> int:
        """Bring deleted examples back."""
        return self._update_column(ids, "deleted", 0, f"restore {len(ids)} example(s)")

    def _update_column(self, ids: Sequence[int], column: str, value: Any, label: str) -> int:
        changed = 0
        with self._transaction() as db:
            action = self._new_action(db, label)
            for example_id in ids:
                before = self._snapshot(db, example_id)
                if before[column] == value:
                    continue
                db.execute(
                    f"UPDATE examples SET {column} = ?, updated_at = ? WHERE id = ?",
                    (value, time.time(), example_id),
                )
                self._record(db, action, example_id, before)
                changed += 1
            if not changed:
                db.execute("DELETE FROM actions WHERE id = ?", (action,))
        return changed

    def add_tag(self, ids: Sequence[int], tag: str) -> int:
        return self._change_tags(ids, tag, add=True)

    def remove_tag(self, ids: Sequence[int], tag: str) -> int:
        return self._change_tags(ids, tag, add=False)

    def _change_tags(self, ids: Sequence[int], tag: str, add: bool) -> int:
        tag = tag.strip()
        if not tag or "," in tag:
            raise StoreError("a tag is a non-empty word without commas")
        changed = 0
        with self._transaction() as db:
            action = self._new_action(db, f"{'tag' if add else 'untag'} {tag}")
            for example_id in ids:
                before = self._snapshot(db, example_id)
                if (tag in before["tags"]) == add:
                    continue
                if add:
                    db.execute("INSERT INTO tags VALUES (?, ?)", (example_id, tag))
                else:
                    db.execute(
                        "DELETE FROM tags WHERE example_id = ? AND tag = ?", (example_id, tag)
                    )
                self._record(db, action, example_id, before)
                changed += 1
            if not changed:
                db.execute("DELETE FROM actions WHERE id = ?", (action,))
        return changed

    def _set_tags(self, db: sqlite3.Connection, ids: Sequence[int], tags: Sequence[str]) -> None:
        db.executemany(
            "INSERT OR IGNORE INTO tags VALUES (?, ?)",
            [(example_id, tag) for example_id in ids for tag in tags],
        )

    def _reindex(
        self, db: sqlite3.Connection, example_id: int, messages: Sequence[Mapping[str, Any]]
    ) -> None:
        db.execute("DELETE FROM examples_fts WHERE rowid = ?", (example_id,))
        db.execute(
            "INSERT INTO examples_fts (rowid, text) VALUES (?, ?)",
            (example_id, _search_text(messages)),
        )

    # --- history, undo and redo -------------------------------------------------------------

    def _new_action(self, db: sqlite3.Connection, label: str) -> int:
        """Start an undoable action; anything that could be redone is discarded."""
        db.execute("UPDATE actions SET state = ? WHERE state = ?", (_DISCARDED, _UNDONE))
        cursor = db.execute(
            "INSERT INTO actions (label, created_at) VALUES (?, ?)", (label, time.time())
        )
        return int(cursor.lastrowid or 0)

    def _snapshot(self, db: sqlite3.Connection, example_id: int) -> dict[str, Any]:
        row = db.execute(
            f"SELECT {', '.join(_SNAPSHOT_COLUMNS)} FROM examples WHERE id = ?", (example_id,)
        ).fetchone()
        if row is None:
            raise StoreError(f"no example {example_id}")
        snapshot = {column: row[column] for column in _SNAPSHOT_COLUMNS}
        snapshot["tags"] = sorted(
            r[0] for r in db.execute("SELECT tag FROM tags WHERE example_id = ?", (example_id,))
        )
        return snapshot

    def _record(
        self, db: sqlite3.Connection, action: int, example_id: int, before: dict[str, Any]
    ) -> None:
        after = self._snapshot(db, example_id)
        db.execute(
            "INSERT INTO history (action_id, example_id, before, after) VALUES (?, ?, ?, ?)",
            (action, example_id, json.dumps(before), json.dumps(after)),
        )

    def _restore_snapshot(
        self,
        db: sqlite3.Connection,
        example_id: int,
        snapshot: dict[str, Any] | None,
        created: bool,
    ) -> None:
        """Put an example back into a recorded state. A None snapshot of a created example
        means it did not exist (undo: delete) or exists as created (redo: undelete)."""
        if snapshot is None:
            db.execute(
                "UPDATE examples SET deleted = ?, updated_at = ? WHERE id = ?",
                (0 if created else 1, time.time(), example_id),
            )
            return
        messages = json.loads(snapshot["messages"])
        db.execute(
            "UPDATE examples SET messages = ?, extra = ?, split = ?, flag = ?, note = ?,"
            " deleted = ?, content_hash = ?, preview = ?, output_tokens = ?, updated_at = ?"
            " WHERE id = ?",
            (
                snapshot["messages"],
                snapshot["extra"],
                snapshot["split"],
                snapshot["flag"],
                snapshot["note"],
                snapshot["deleted"],
                content_hash(messages),
                preview_of(messages),
                estimate_tokens(_output_text(messages)),
                time.time(),
                example_id,
            ),
        )
        db.execute("DELETE FROM tags WHERE example_id = ?", (example_id,))
        self._set_tags(db, [example_id], snapshot["tags"])
        self._reindex(db, example_id, messages)
        if self.validator:
            self._write_problems(db, example_id, self.validator({"messages": messages}))

    def undo(self) -> str | None:
        """Undo the latest action; returns its label, or None when there is nothing to undo."""
        with self._transaction() as db:
            row = db.execute(
                "SELECT id, label FROM actions WHERE state = ? ORDER BY id DESC LIMIT 1", (_DONE,)
            ).fetchone()
            if row is None:
                return None
            for change in db.execute(
                "SELECT example_id, before FROM history WHERE action_id = ? ORDER BY id DESC",
                (row["id"],),
            ).fetchall():
                before = json.loads(change["before"]) if change["before"] else None
                self._restore_snapshot(db, change["example_id"], before, created=False)
            db.execute("UPDATE actions SET state = ? WHERE id = ?", (_UNDONE, row["id"]))
            return str(row["label"])

    def redo(self) -> str | None:
        """Redo the action undone last; returns its label, or None."""
        with self._transaction() as db:
            row = db.execute(
                "SELECT id, label FROM actions WHERE state = ? ORDER BY id ASC LIMIT 1",
                (_UNDONE,),
            ).fetchone()
            if row is None:
                return None
            for change in db.execute(
                "SELECT example_id, after FROM history WHERE action_id = ? ORDER BY id",
                (row["id"],),
            ).fetchall():
                after = json.loads(change["after"]) if change["after"] else None
                self._restore_snapshot(db, change["example_id"], after, created=True)
            db.execute("UPDATE actions SET state = ? WHERE id = ?", (_DONE, row["id"]))
            return str(row["label"])

    def undo_label(self) -> str | None:
        """What undo would undo, or None."""
        return self._label_of(_DONE, "DESC")

    def redo_label(self) -> str | None:
        """What redo would redo, or None."""
        return self._label_of(_UNDONE, "ASC")

    def _label_of(self, state: int, order: str) -> str | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT label FROM actions WHERE state = ? ORDER BY id {order} LIMIT 1", (state,)
            ).fetchone()
        return str(row[0]) if row else None

    def history(self, example_id: int) -> list[HistoryEntry]:
        """Every recorded change of one example, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT h.action_id, a.label, a.created_at, a.state, h.before, h.after"
                " FROM history h JOIN actions a ON a.id = h.action_id"
                " WHERE h.example_id = ? ORDER BY h.id",
                (example_id,),
            ).fetchall()
        return [
            HistoryEntry(
                action_id=row["action_id"],
                label=row["label"],
                time=row["created_at"],
                before=json.loads(row["before"]) if row["before"] else None,
                after=json.loads(row["after"]) if row["after"] else None,
                undone=row["state"] != _DONE,
            )
            for row in rows
        ]

    # --- quarantine -------------------------------------------------------------------------

    def quarantine(self, source: str, line: int | None, raw: str, reasons: Sequence[str]) -> int:
        """Keep an input line that could not be imported, with why."""
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO quarantine (source, line, raw, reasons, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (source, line, raw, json.dumps(list(reasons)), time.time()),
            )
            return int(cursor.lastrowid or 0)

    def quarantined(self) -> list[dict[str, Any]]:
        """Every quarantined line: id, source, line, raw text and reasons."""
        with self._lock:
            return [
                {**dict(row), "reasons": json.loads(row["reasons"])}
                for row in self._db.execute("SELECT * FROM quarantine ORDER BY id")
            ]

    def release_quarantined(self, quarantine_id: int) -> None:
        """Drop a quarantined line (after it was fixed and imported, or rejected)."""
        with self._transaction() as db:
            db.execute("DELETE FROM quarantine WHERE id = ?", (quarantine_id,))


class _Transaction:
    """`with store._transaction() as db:` — BEGIN IMMEDIATE ... COMMIT, ROLLBACK on error."""

    def __init__(self, db: sqlite3.Connection, lock: threading.RLock) -> None:
        self.db = db
        self.lock = lock

    def __enter__(self) -> sqlite3.Connection:
        self.lock.acquire()
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.lock.release()
            raise
        return self.db

    def __exit__(self, exc_type: object, *rest: object) -> None:
        try:
            self.db.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self.lock.release()
