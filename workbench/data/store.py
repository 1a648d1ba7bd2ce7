"""The examples database (`examples.db`): SQLite in WAL mode, full-text search, full history.

Every change is one transaction and one undoable *action*: the rows it touched are snapshotted
before and after, so undo and redo work across restarts and a crash loses at most the
transaction in flight. Deletes are soft (`deleted = 1`) so they can be undone too.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, get_args

Split = Literal["train", "val", "test", "unassigned"]
Flag = Literal["ok", "bad", "needs-review"]
Severity = Literal["error", "warning"]
SortKey = Literal["id", "output_tokens", "updated", "split", "flag"]

SPLITS: tuple[Split, ...] = get_args(Split)
FLAGS: tuple[Flag, ...] = get_args(Flag)
SCHEMA_VERSION = 2
"""2: the search index keeps no word positions (a quarter less work per import)."""
CACHE_KIB = 65536
"""SQLite's page cache (64 MiB): a search over 100k examples reads from memory."""

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
CREATE INDEX IF NOT EXISTS examples_live ON examples (deleted, id);
CREATE INDEX IF NOT EXISTS examples_problems ON examples (deleted, problem_count);
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
"""
_FTS_TABLE = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS examples_fts USING fts5"
    " (text, tokenize = 'unicode61', detail = none, columnsize = 0)"
)
"""The search index: words only (no positions: every query is words matched as prefixes)."""

# actions.state
_DONE, _UNDONE, _DISCARDED = 0, 1, 2
# The columns a history snapshot holds (with the tags): the cheap ones always, the
# conversation only when the change touched it (so a split of 100k examples stays small).
_LIGHT_COLUMNS = ("split", "flag", "note", "deleted")
_HEAVY_COLUMNS = ("messages", "extra")
REVIEW_FLAG: Flag = "needs-review"
CANDIDATE_TAGS: tuple[str, ...] = ("captured", "synthetic")
"""An example flagged REVIEW_FLAG and tagged with one of CANDIDATE_TAGS is a *candidate*: captured
or generated, waiting for a person to accept it (`workbench/collect/review.py`). Until then it is
kept out of splits and out of a run's training data."""
_CANDIDATE_SQL = (
    f"(flag = '{REVIEW_FLAG}' AND id IN (SELECT example_id FROM tags"
    f" WHERE tag IN ({', '.join(repr(tag) for tag in CANDIDATE_TAGS)})))"
)
"""The same test in SQL, on the `examples` table."""
FORMAT_KEY = "_workbench"
"""Key in an example's `extra` holding how its input file spelled it (which ShareGPT role names,
where an Alpaca instruction ends...), so that exporting to the same format gives the input back.
Not part of `Example.record()`."""


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
        extra = {key: value for key, value in self.extra.items() if key != FORMAT_KEY}
        return {**extra, "messages": self.messages}

    @property
    def format_hint(self) -> dict[str, Any]:
        """How the input file spelled this example (see FORMAT_KEY); empty if unknown."""
        hint = self.extra.get(FORMAT_KEY)
        return hint if isinstance(hint, dict) else {}


@dataclass(frozen=True)
class NewExample:
    """An example to add: its OpenAI-chat record, where it came from, and its problems."""

    record: Mapping[str, Any]
    source: str = ""
    """Where it came from: `file:line`, or how it was made."""
    problems: Sequence[Problem] | None = None
    """Already checked; None: the store's validator checks it."""
    split: Split = "unassigned"
    flag: Flag = "ok"


@dataclass(frozen=True)
class QuarantinedLine:
    """An input line that could not be imported, with why."""

    source: str
    line: int | None
    raw: str
    reasons: Sequence[str]


@dataclass(frozen=True)
class PreparedBatch:
    """New examples' rows, ready to write (`ExampleStore.prepare`); ids come at write time."""

    rows: list[tuple[Any, ...]]
    fts: list[str]
    problems: list[tuple[Any, ...]]
    """(index in the batch, severity, code, message)."""


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
    """One change of one example: which action, when, and the states before and after.

    `before` and `after` always hold split, flag, note, deleted and tags; messages and extra only
    when the change touched them. Both are None for the change that created the example.
    """

    action_id: int
    label: str
    time: float
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    undone: bool


_JSON = json.JSONEncoder(ensure_ascii=False, check_circular=False)
"""How conversations are stored (one encoder, not one per call: imports encode millions)."""
_HASH_JSON = json.JSONEncoder(ensure_ascii=False, check_circular=False, default=str)


def content_hash(messages: Sequence[Mapping[str, Any]]) -> str:
    """A hash of the conversation (roles and contents), for exact-duplicate detection."""
    canonical = _HASH_JSON.encode(
        [[m.get("role"), m.get("content")] if isinstance(m, dict) else m for m in messages]
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def is_candidate(flag: str, tags: Iterable[str]) -> bool:
    """Whether an example with this flag and these tags waits for review (see CANDIDATE_TAGS)."""
    return flag == REVIEW_FLAG and any(tag in CANDIDATE_TAGS for tag in tags)


def check_flag(flag: str) -> None:
    """StoreError unless `flag` is one of FLAGS (before anything is written)."""
    if flag not in FLAGS:
        raise StoreError(f"unknown flag {flag!r} (use one of {', '.join(FLAGS)})")


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


_WORDS = re.compile(r"\w+")


def fts_query(text: str) -> str:
    """User text to an FTS5 query: each word matched as a prefix, all required ("cast-iron"
    is the two words cast and iron, as the index sees it)."""
    return " ".join(f'"{word}"*' for word in _WORDS.findall(text))


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
        self._db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        self._db.executescript(_SCHEMA)
        self._db.execute(_FTS_TABLE)
        self._migrate()

    def _migrate(self) -> None:
        """Bring a database written by an older version up to SCHEMA_VERSION."""
        with self._transaction() as db:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version < 2 and db.execute("SELECT count(*) FROM examples").fetchone()[0]:
                db.execute("DROP TABLE examples_fts")
                db.execute(_FTS_TABLE)
                for example_id, messages in db.execute("SELECT id, messages FROM examples"):
                    db.execute(
                        "INSERT INTO examples_fts (rowid, text) VALUES (?, ?)",
                        (example_id, _search_text(json.loads(messages))),
                    )
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

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

    def new_action(self, label: str) -> int:
        """Start an undoable action that later `add_batch` calls can join (one import = one
        action, committed batch by batch)."""
        with self._transaction() as db:
            return self._new_action(db, label)

    def add_examples(
        self,
        records: Iterable[Mapping[str, Any]],
        source: str = "",
        label: str = "",
        split: Split = "unassigned",
        tags: Sequence[str] = (),
        flag: Flag = "ok",
    ) -> list[int]:
        """Add OpenAI-chat records (`{"messages": [...], ...}`) as one undoable action.

        `flag` is written with the rows, in the same transaction: captured or generated
        candidates are never visible, even after a crash, without their `needs-review` flag.
        """
        items = [NewExample(record, source, split=split, flag=flag) for record in records]
        return self.add_batch(
            items, label=label or f"add examples from {source or 'input'}", tags=tags
        )

    def add_batch(
        self,
        items: Sequence[NewExample],
        action: int | None = None,
        label: str = "add examples",
        tags: Sequence[str] = (),
        quarantine: Sequence[QuarantinedLine] = (),
    ) -> list[int]:
        """Add examples (and quarantine lines) in one transaction.

        `action`: an action from `new_action` to join; None starts a new one named `label`.
        Items whose `problems` is None are checked by the store's validator.
        """
        return self.add_prepared(self.prepare(items), action, label, tags, quarantine)

    def prepare(self, items: Sequence[NewExample]) -> PreparedBatch:
        """The rows of new examples, computed without touching the database: an importer
        prepares the next batch on one core while the previous one is written on the other.
        StoreError for an unknown flag: then nothing of the batch is written."""
        now = time.time()
        rows, fts, problems = [], [], []
        for flag in {item.flag for item in items}:
            check_flag(flag)
        for offset, item in enumerate(items):
            found = self._problems_of(item)
            rows.append(self._row(item, len(found), now))
            fts.append(_search_text(item.record["messages"]))
            problems += [(offset, p.severity, p.code, p.message) for p in found]
        return PreparedBatch(rows, fts, problems)

    def add_prepared(
        self,
        batch: PreparedBatch,
        action: int | None = None,
        label: str = "add examples",
        tags: Sequence[str] = (),
        quarantine: Sequence[QuarantinedLine] = (),
    ) -> list[int]:
        """Write a prepared batch (and quarantine lines) in one transaction; see `add_batch`."""
        with self._transaction() as db:
            if action is None:
                action = self._new_action(db, label)
            ids = self._add(db, batch, action, tags)
            self._quarantine(db, quarantine)
        return ids

    def _add(
        self,
        db: sqlite3.Connection,
        batch: PreparedBatch,
        action: int,
        tags: Sequence[str] = (),
    ) -> list[int]:
        """Insert examples with explicit ids (the transaction holds the write lock)."""
        first = int(db.execute("SELECT coalesce(max(id), 0) + 1 FROM examples").fetchone()[0])
        ids = list(range(first, first + len(batch.rows)))
        db.executemany(
            "INSERT INTO examples (id, messages, extra, split, flag, source, content_hash,"
            " preview, output_tokens, problem_count, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(example_id, *row) for example_id, row in zip(ids, batch.rows, strict=True)],
        )
        db.executemany(
            "INSERT INTO examples_fts (rowid, text) VALUES (?, ?)", zip(ids, batch.fts, strict=True)
        )
        db.executemany(
            "INSERT INTO problems (example_id, severity, code, message) VALUES (?, ?, ?, ?)",
            [(first + offset, *rest) for offset, *rest in batch.problems],
        )
        self._set_tags(db, ids, tags)
        db.executemany(
            "INSERT INTO history (action_id, example_id) VALUES (?, ?)",
            [(action, example_id) for example_id in ids],
        )
        return ids

    def _problems_of(self, item: NewExample) -> Sequence[Problem]:
        if item.problems is not None:
            return item.problems
        return self.validator(item.record) if self.validator else []

    @staticmethod
    def _row(item: NewExample, problem_count: int, now: float) -> tuple[Any, ...]:
        """The `examples` row of a new example, without its id."""
        messages = list(item.record["messages"])
        extra = {key: value for key, value in item.record.items() if key != "messages"}
        return (
            _JSON.encode(messages),
            _JSON.encode(extra),
            item.split,
            item.flag,
            item.source,
            content_hash(messages),
            preview_of(messages),
            estimate_tokens(_output_text(messages)),
            problem_count,
            now,
            now,
        )

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

    def replace_problems(
        self, codes: Iterable[str], problems_by_id: Mapping[int, Sequence[Problem]]
    ) -> None:
        """Drop every recorded problem with one of `codes` (on all examples) and record these
        instead; other problems stay. For checks across examples, such as duplicates."""
        codes = list(codes)
        marks = ", ".join("?" * len(codes))
        with self._transaction() as db:
            touched = {
                row[0]
                for row in db.execute(
                    f"SELECT DISTINCT example_id FROM problems WHERE code IN ({marks})", codes
                )
            }
            db.execute(f"DELETE FROM problems WHERE code IN ({marks})", codes)
            db.executemany(
                "INSERT INTO problems (example_id, severity, code, message) VALUES (?, ?, ?, ?)",
                [
                    (example_id, p.severity, p.code, p.message)
                    for example_id, problems in problems_by_id.items()
                    for p in problems
                ],
            )
            db.executemany(
                "UPDATE examples SET problem_count ="
                " (SELECT count(*) FROM problems WHERE example_id = ?) WHERE id = ?",
                [(i, i) for i in touched | set(problems_by_id)],
            )

    # --- reading --------------------------------------------------------------------------

    def get(self, example_id: int) -> Example:
        """One example with its tags and problems; StoreError if there is none."""
        with self._lock:
            row = self._db.execute("SELECT * FROM examples WHERE id = ?", (example_id,)).fetchone()
            if row is None:
                raise StoreError(f"no example {example_id}")
            return self._example(row)

    def _example(self, row: sqlite3.Row) -> Example:
        return self._examples([row])[0]

    def _examples(self, rows: Sequence[sqlite3.Row]) -> list[Example]:
        """Examples from `examples` rows, with their tags and problems (two queries in all)."""
        if not rows:
            return []
        marks = ", ".join("?" * len(rows))
        ids = [row["id"] for row in rows]
        tags: dict[int, list[str]] = {}
        for r in self._db.execute(
            f"SELECT example_id, tag FROM tags WHERE example_id IN ({marks}) ORDER BY tag", ids
        ):
            tags.setdefault(r[0], []).append(r[1])
        problems: dict[int, list[Problem]] = {}
        for r in self._db.execute(
            f"SELECT example_id, severity, code, message FROM problems"
            f" WHERE example_id IN ({marks}) ORDER BY rowid",
            ids,
        ):
            problems.setdefault(r[0], []).append(Problem(r[1], r[2], r[3]))
        return [
            Example(
                id=row["id"],
                messages=json.loads(row["messages"]),
                split=row["split"],
                flag=row["flag"],
                tags=tuple(tags.get(row["id"], ())),
                note=row["note"],
                source=row["source"],
                extra=json.loads(row["extra"]),
                deleted=bool(row["deleted"]),
                problems=tuple(problems.get(row["id"], ())),
                updated_at=row["updated_at"],
            )
            for row in rows
        ]

    def iter_examples(
        self,
        split: Split | None = None,
        include_bad: bool = False,
        batch: int = 500,
        include_candidates: bool = True,
    ) -> Iterator[Example]:
        """Live examples in id order (of one split), without those flagged bad unless asked,
        and without candidates waiting for review when `include_candidates` is False (what a
        training run reads).

        Reads in batches, so memory stays flat on any dataset size.
        """
        clauses = ["deleted = 0", "id > ?"]
        params: list[Any] = []
        if split is not None:
            clauses.append("split = ?")
            params.append(split)
        if not include_bad:
            clauses.append("flag != 'bad'")
        if not include_candidates:
            clauses.append(f"NOT {_CANDIDATE_SQL}")
        sql = f"SELECT * FROM examples WHERE {' AND '.join(clauses)} ORDER BY id LIMIT ?"
        last = 0
        while True:
            with self._lock:
                rows = self._db.execute(sql, (last, *params, batch)).fetchall()
                examples = self._examples(rows)
            if not examples:
                return
            yield from examples
            last = examples[-1].id

    def candidate_ids(self) -> set[int]:
        """Live examples waiting for review (see CANDIDATE_TAGS): what a split leaves out."""
        with self._lock:
            return {
                row[0]
                for row in self._db.execute(
                    f"SELECT id FROM examples WHERE deleted = 0 AND {_CANDIDATE_SQL}"
                )
            }

    def iter_messages(self, batch: int = 2000) -> Iterator[tuple[int, list[dict[str, Any]]]]:
        """(id, messages) of every live example in id order: the cheap read for scans
        (duplicates, instruction detection, token counts)."""
        for row in self._iter_live("messages", batch):
            yield row[0], json.loads(row[1])

    def iter_keys(self) -> Iterator[tuple[int, str, tuple[str, ...]]]:
        """(id, content hash, tags) of every live example in id order (for splitting)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT e.id, e.content_hash, (SELECT group_concat(tag, ',') FROM tags t"
                " WHERE t.example_id = e.id) FROM examples e WHERE e.deleted = 0 ORDER BY e.id"
            ).fetchall()
        for row in rows:
            yield row[0], row[1], tuple(sorted(row[2].split(","))) if row[2] else ()

    def iter_records(self, batch: int = 2000) -> Iterator[tuple[int, dict[str, Any]]]:
        """(id, record) of every live example in id order: its messages with its other fields,
        as the validator sees it at import."""
        for row in self._iter_live("messages, extra", batch):
            yield row[0], {**json.loads(row[2]), "messages": json.loads(row[1])}

    def _iter_live(self, columns: str, batch: int) -> Iterator[sqlite3.Row]:
        """(id, *columns) of every live example in id order, `batch` rows per read: the lock is
        held per read only, and paging by id keeps memory flat on any dataset size."""
        last = 0
        while True:
            with self._lock:
                rows = self._db.execute(
                    f"SELECT id, {columns} FROM examples WHERE deleted = 0 AND id > ?"
                    " ORDER BY id LIMIT ?",
                    (last, batch),
                ).fetchall()
            if not rows:
                return
            yield from rows
            last = rows[-1][0]

    def sources(self, ids: Iterable[int]) -> dict[int, str]:
        """Where each example came from (`file:line`, or how it was made)."""
        wanted = list(ids)
        found: dict[int, str] = {}
        with self._lock:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ", ".join("?" * len(chunk))
                for row in self._db.execute(
                    f"SELECT id, source FROM examples WHERE id IN ({marks})", chunk
                ):
                    found[row[0]] = row[1]
        return found

    def duplicate_groups(self) -> list[list[int]]:
        """Live examples with the same conversation (content hash), ids ascending per group."""
        with self._lock:
            rows = self._db.execute(
                "SELECT group_concat(id) FROM (SELECT id, content_hash FROM examples"
                " WHERE deleted = 0 ORDER BY content_hash, id)"
                " GROUP BY content_hash HAVING count(*) > 1 ORDER BY min(id)"
            ).fetchall()
        return [sorted(int(i) for i in row[0].split(",")) for row in rows]

    def flag_counts(self) -> dict[str, int]:
        """Live examples per flag."""
        with self._lock:
            counts: dict[str, int] = dict.fromkeys(FLAGS, 0)
            for row in self._db.execute(
                "SELECT flag, count(*) FROM examples WHERE deleted = 0 GROUP BY flag"
            ):
                counts[row[0]] = row[1]
            return counts

    def problem_counts(self) -> list[tuple[Severity, str, int]]:
        """(severity, code, how many live examples have it), most frequent first."""
        with self._lock:
            return [
                (row[0], row[1], row[2])
                for row in self._db.execute(
                    "SELECT p.severity, p.code, count(DISTINCT p.example_id) AS n FROM problems p"
                    " JOIN examples e ON e.id = p.example_id WHERE e.deleted = 0"
                    " GROUP BY p.severity, p.code ORDER BY n DESC, p.code"
                )
            ]

    def iter_problems(self) -> Iterator[tuple[int, str, Problem]]:
        """(example id, source, problem) for every live example with problems, in id order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT e.id, e.source, p.severity, p.code, p.message FROM problems p"
                " JOIN examples e ON e.id = p.example_id WHERE e.deleted = 0"
                " ORDER BY e.id, p.rowid"
            ).fetchall()
        for row in rows:
            yield row[0], row[1], Problem(row[2], row[3], row[4])

    def _where(self, query: Query) -> tuple[str, list[Any]]:
        """SQL conditions for the query. With text, the search drives the plan: the matching
        ids are looked up directly (`+e.deleted` keeps SQLite from scanning an index instead)."""
        text = bool(query.text.strip())
        clauses = ["+e.deleted = ?" if text else "e.deleted = ?"]
        params: list[Any] = [1 if query.deleted else 0]
        if text:
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
        if query.text.strip() and replace(query, sort="id", descending=False) == Query(
            text=query.text
        ):
            return self._count_text(fts_query(query.text))
        where, params = self._where(query)
        with self._lock:
            return int(
                self._db.execute(
                    f"SELECT count(*) FROM examples e WHERE {where}", params
                ).fetchone()[0]
            )

    def _count_text(self, match: str) -> int:
        """Live examples matching a search: the index's own count, less the deleted matches
        (few; found through `examples_live`), instead of looking up every match."""
        with self._lock:
            total = self._db.execute(
                "SELECT count(*) FROM examples_fts WHERE examples_fts MATCH ?", (match,)
            ).fetchone()[0]
            gone = self._db.execute(
                "SELECT count(*) FROM examples INDEXED BY examples_live WHERE deleted = 1"
                " AND id IN (SELECT rowid FROM examples_fts WHERE examples_fts MATCH ?)",
                (match,),
            ).fetchone()[0]
        return int(total) - int(gone)

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

    def count_all(self) -> int:
        """Every example ever added, deleted ones included."""
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM examples").fetchone()[0])

    def holds_more_than_candidates(self) -> bool:
        """Whether the database ever held an example (deleted ones included) other than a
        candidate waiting for review (one accepted counts), or a quarantined line."""
        with self._lock:
            other = f"SELECT 1 FROM examples WHERE NOT {_CANDIDATE_SQL} LIMIT 1"
            if self._db.execute(other).fetchone():
                return True
            return bool(self._db.execute("SELECT 1 FROM quarantine LIMIT 1").fetchone())

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
        self.update_messages_many({example_id: messages}, f"edit example {example_id}")
        return self.get(example_id)

    def update_messages_many(
        self,
        changes: Mapping[int, list[dict[str, Any]]] | Iterable[tuple[int, list[dict[str, Any]]]],
        label: str,
    ) -> int:
        """Replace the conversations of many examples as ONE undoable action (cleaning), in one
        transaction; returns how many changed. `changes` may be a generator (read lazily, so
        100k changes need not sit in memory)."""
        pairs = changes.items() if isinstance(changes, Mapping) else changes
        changed = 0
        with self._transaction() as db:
            action = self._new_action(db, label)
            for example_id, messages in pairs:
                if not isinstance(messages, list) or not messages:
                    raise StoreError("an example needs at least one message")
                before = self._snapshot(db, example_id, heavy=True)
                self._write_messages(db, example_id, messages)
                self._write_problems(db, example_id, self._check(before["extra"], messages))
                self._record(db, action, example_id, before)
                changed += 1
            if not changed:
                db.execute("DELETE FROM actions WHERE id = ?", (action,))
        return changed

    def _write_messages(
        self, db: sqlite3.Connection, example_id: int, messages: Sequence[Mapping[str, Any]]
    ) -> None:
        db.execute(
            "UPDATE examples SET messages = ?, content_hash = ?, preview = ?,"
            " output_tokens = ?, updated_at = ? WHERE id = ?",
            (
                _JSON.encode(list(messages)),
                content_hash(messages),
                preview_of(messages),
                estimate_tokens(_output_text(messages)),
                time.time(),
                example_id,
            ),
        )
        self._reindex(db, example_id, messages)

    def set_split(self, ids: Sequence[int], split: Split) -> int:
        """Move examples to a split; returns how many changed."""
        if split not in SPLITS:
            raise StoreError(f"unknown split {split!r} (use one of {', '.join(SPLITS)})")
        return self._update_column(ids, "split", split, f"move to {split}")

    def assign_splits(self, splits: Mapping[int, Split], label: str = "split") -> int:
        """Put each example in its split, as one undoable action; returns how many changed."""
        for split in set(splits.values()):
            if split not in SPLITS:
                raise StoreError(f"unknown split {split!r} (use one of {', '.join(SPLITS)})")
        return self._update_values(splits, "split", label)

    def set_flag(self, ids: Sequence[int], flag: Flag) -> int:
        """Flag examples ok, bad or needs-review."""
        check_flag(flag)
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
        return self._update_values(dict.fromkeys(ids, value), column, label)

    def _update_values(self, values: Mapping[int, Any], column: str, label: str) -> int:
        """Set `column` of each example to its value, as one action; returns how many changed."""
        changed = 0
        now = time.time()
        with self._transaction() as db:
            action = self._new_action(db, label)
            for example_id, value in values.items():
                before = self._snapshot(db, example_id)
                if before[column] == value:
                    continue
                db.execute(
                    f"UPDATE examples SET {column} = ?, updated_at = ? WHERE id = ?",
                    (value, now, example_id),
                )
                self._record(db, action, example_id, before)
                changed += 1
            if not changed:
                db.execute("DELETE FROM actions WHERE id = ?", (action,))
        return changed

    def add_tag(self, ids: Sequence[int], tag: str) -> int:
        return self._change_tags({example_id: [tag] for example_id in ids}, tag, add=True)

    def remove_tag(self, ids: Sequence[int], tag: str) -> int:
        return self._change_tags({example_id: [tag] for example_id in ids}, tag, add=False)

    def add_tags(self, tags: Mapping[int, Sequence[str]], label: str) -> int:
        """Give each example its tags, as one undoable action (dedupe); returns how many
        examples changed."""
        return self._change_tags(tags, label, add=True)

    def _change_tags(self, tags: Mapping[int, Sequence[str]], label: str, add: bool) -> int:
        clean = {example_id: [tag.strip() for tag in wanted] for example_id, wanted in tags.items()}
        for tag in {tag for wanted in clean.values() for tag in wanted}:
            if not tag or "," in tag:
                raise StoreError("a tag is a non-empty word without commas")
        changed = 0
        with self._transaction() as db:
            action = self._new_action(db, f"{'tag' if add else 'untag'} {label.strip()}")
            for example_id, wanted in clean.items():
                before = self._snapshot(db, example_id)
                todo = [tag for tag in wanted if (tag in before["tags"]) != add]
                if not todo:
                    continue
                if add:
                    self._set_tags(db, [example_id], todo)
                else:
                    db.executemany(
                        "DELETE FROM tags WHERE example_id = ? AND tag = ?",
                        [(example_id, tag) for tag in todo],
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

    def _snapshot(
        self, db: sqlite3.Connection, example_id: int, heavy: bool = False
    ) -> dict[str, Any]:
        """The example's state: the cheap columns and tags, plus the conversation if `heavy`."""
        columns = _LIGHT_COLUMNS + (_HEAVY_COLUMNS if heavy else ())
        row = db.execute(
            f"SELECT {', '.join(columns)} FROM examples WHERE id = ?", (example_id,)
        ).fetchone()
        if row is None:
            raise StoreError(f"no example {example_id}")
        snapshot = {column: row[column] for column in columns}
        snapshot["tags"] = sorted(
            r[0] for r in db.execute("SELECT tag FROM tags WHERE example_id = ?", (example_id,))
        )
        return snapshot

    def _record(
        self, db: sqlite3.Connection, action: int, example_id: int, before: dict[str, Any]
    ) -> None:
        after = self._snapshot(db, example_id, heavy="messages" in before)
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
        """Put an example back into a recorded state (the columns the snapshot holds). A None
        snapshot of a created example means it did not exist (undo: delete) or exists as
        created (redo: undelete)."""
        now = time.time()
        if snapshot is None:
            db.execute(
                "UPDATE examples SET deleted = ?, updated_at = ? WHERE id = ?",
                (0 if created else 1, now, example_id),
            )
            return
        columns = [c for c in (*_LIGHT_COLUMNS, *_HEAVY_COLUMNS) if c in snapshot]
        db.execute(
            f"UPDATE examples SET {', '.join(f'{c} = ?' for c in columns)}, updated_at = ?"
            " WHERE id = ?",
            (*(snapshot[c] for c in columns), now, example_id),
        )
        db.execute("DELETE FROM tags WHERE example_id = ?", (example_id,))
        self._set_tags(db, [example_id], snapshot["tags"])
        if "messages" in snapshot:
            messages = json.loads(snapshot["messages"])
            self._write_messages(db, example_id, messages)
            if self.validator:
                self._write_problems(db, example_id, self._check(snapshot["extra"], messages))

    def _check(self, extra: str, messages: list[dict[str, Any]]) -> Sequence[Problem]:
        """The validator's verdict on an example with these messages (and its stored fields)."""
        if self.validator is None:
            return []
        return self.validator({**json.loads(extra or "{}"), "messages": messages})

    def undo(self, expected: int | None = None) -> str | None:
        """Undo the latest action; returns its label, or None when there is nothing to undo.

        With `expected` (an action id), undo only if the latest action is still that one (in
        the same transaction); StoreError names the newer action otherwise.
        """
        return self._replay(_DONE, "DESC", "before", _UNDONE, expected)

    def redo(self) -> str | None:
        """Redo the action undone last; returns its label, or None."""
        return self._replay(_UNDONE, "ASC", "after", _DONE)

    def _replay(
        self, state: int, order: str, side: str, new_state: int, expected: int | None = None
    ) -> str | None:
        """Undo and redo are one walk: take the next action in `state` (latest done first for
        undo, earliest undone first for redo), put each example it touched back to its `side`
        snapshot in that same order, and mark the action `new_state`."""
        created = side == "after"
        with self._transaction() as db:
            row = self._next_action(db, state, order)
            if expected is not None and (row is None or row["id"] != expected):
                newer = f"'{row['label']}'" if row is not None else "none"
                raise StoreError(f"the newest change is {newer}, not the one expected")
            if row is None:
                return None
            for change in db.execute(
                f"SELECT example_id, {side} FROM history WHERE action_id = ? ORDER BY id {order}",
                (row["id"],),
            ).fetchall():
                snapshot = json.loads(change[side]) if change[side] else None
                self._restore_snapshot(db, change["example_id"], snapshot, created=created)
            db.execute("UPDATE actions SET state = ? WHERE id = ?", (new_state, row["id"]))
            return str(row["label"])

    def undo_label(self) -> str | None:
        """What undo would undo, or None."""
        return self._label_of(_DONE, "DESC")

    def redo_label(self) -> str | None:
        """What redo would redo, or None."""
        return self._label_of(_UNDONE, "ASC")

    def last_action(self, example_id: int | None = None) -> tuple[int, str] | None:
        """The action undo would take now, as (id, label); with `example_id`, the newest done
        one that changed that example. Other processes (a capture proxy, a synth job) record
        actions in the same database: a screen remembers its own through this, to undo only
        those."""
        sql = "SELECT id, label FROM actions WHERE state = ? ORDER BY id DESC LIMIT 1"
        params: tuple[int, ...] = (_DONE,)
        if example_id is not None:
            sql = (
                "SELECT a.id, a.label FROM history h JOIN actions a ON a.id = h.action_id"
                " WHERE h.example_id = ? AND a.state = ? ORDER BY a.id DESC LIMIT 1"
            )
            params = (example_id, _DONE)
        with self._lock:
            row = self._db.execute(sql, params).fetchone()
        return (int(row[0]), str(row[1])) if row else None

    def _label_of(self, state: int, order: str) -> str | None:
        with self._lock:
            row = self._next_action(self._db, state, order)
        return str(row["label"]) if row else None

    @staticmethod
    def _next_action(db: sqlite3.Connection, state: int, order: str) -> sqlite3.Row | None:
        """The action undo (`_DONE`, "DESC") or redo (`_UNDONE`, "ASC") would take next."""
        row: sqlite3.Row | None = db.execute(
            f"SELECT id, label FROM actions WHERE state = ? ORDER BY id {order} LIMIT 1", (state,)
        ).fetchone()
        return row

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
            return self._quarantine(db, [QuarantinedLine(source, line, raw, reasons)])[0]

    def _quarantine(
        self, db: sqlite3.Connection, lines: Sequence[QuarantinedLine], now: float | None = None
    ) -> list[int]:
        ids = []
        for item in lines:
            cursor = db.execute(
                "INSERT INTO quarantine (source, line, raw, reasons, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    item.source,
                    item.line,
                    item.raw,
                    json.dumps(list(item.reasons)),
                    now or time.time(),
                ),
            )
            ids.append(int(cursor.lastrowid or 0))
        return ids

    def quarantined(self) -> list[dict[str, Any]]:
        """Every quarantined line: id, source, line, raw text and reasons."""
        with self._lock:
            return [
                {**dict(row), "reasons": json.loads(row["reasons"])}
                for row in self._db.execute("SELECT * FROM quarantine ORDER BY id")
            ]

    def quarantine_count(self) -> int:
        """How many input lines wait in quarantine."""
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM quarantine").fetchone()[0])

    def update_quarantined(self, quarantine_id: int, raw: str, reasons: Sequence[str]) -> None:
        """Keep a quarantined line's new text (a fix that still has problems) and reasons."""
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE quarantine SET raw = ?, reasons = ? WHERE id = ?",
                (raw, json.dumps(list(reasons)), quarantine_id),
            )
            if cursor.rowcount == 0:
                raise StoreError(f"no quarantined line {quarantine_id}")

    def admit_quarantined(self, quarantine_id: int, item: NewExample) -> int:
        """Add the fixed version of a quarantined line as an example and drop the line, in one
        transaction (undo removes the example); returns the new example's id."""
        with self._transaction() as db:
            row = db.execute(
                "SELECT source, line FROM quarantine WHERE id = ?", (quarantine_id,)
            ).fetchone()
            if row is None:
                raise StoreError(f"no quarantined line {quarantine_id}")
            where = f"{row['source']}:{row['line']}" if row["line"] else row["source"]
            label = f"add fixed line {where}"
            ids = self._add(db, self.prepare([item]), self._new_action(db, label))
            db.execute("DELETE FROM quarantine WHERE id = ?", (quarantine_id,))
            return ids[0]

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
