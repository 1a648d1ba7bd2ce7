"""Paid results by content hash, shared by every eval of a workspace (`evals/cache.db`).

Judgments are keyed by (judge model, rubric, input, the output in slot A, the output in slot B):
the order of a pair is which output sits in slot A. Fresh baseline answers are keyed by how they
were produced. A resumed or repeated eval finds them here and pays for nothing twice.
A cache file that cannot be read is set aside and rebuilt; it never stops an eval.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

CACHE_FILE = "cache.db"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    created_at REAL NOT NULL
)
"""


def content_key(*parts: Any) -> str:
    """A stable hash of JSON-serialisable parts."""
    canonical = json.dumps(parts, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class ResultCache:
    """A small key-value store in SQLite (WAL); safe to share between threads and processes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        """Open the cache, setting a damaged file aside and starting afresh."""
        try:
            return self._connect()
        except sqlite3.DatabaseError:
            for suffix in ("", "-wal", "-shm"):
                damaged = self.path.with_name(self.path.name + suffix)
                if damaged.exists():
                    damaged.replace(
                        damaged.with_name(damaged.name + f".damaged-{int(time.time())}")
                    )
            return self._connect()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(_SCHEMA)
        db.execute("SELECT count(*) FROM results").fetchone()
        return db

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored value, or None (also when the row cannot be read)."""
        try:
            with self._lock:
                row = self._db.execute("SELECT value FROM results WHERE key = ?", (key,)).fetchone()
            value = json.loads(row[0]) if row else None
        except (sqlite3.Error, ValueError):
            return None
        return value if isinstance(value, dict) else None

    def put(self, key: str, kind: str, value: dict[str, Any]) -> None:
        """Store `value` under `key` (a failure to write only costs a repeated call later)."""
        text = json.dumps(value, ensure_ascii=False)
        try:
            with self._lock:
                self._db.execute(
                    "INSERT OR REPLACE INTO results (key, kind, value, created_at)"
                    " VALUES (?, ?, ?, ?)",
                    (key, kind, text, time.time()),
                )
        except sqlite3.Error:
            pass

    def count(self, kind: str | None = None) -> int:
        """How many results are stored (of one kind)."""
        with self._lock:
            if kind is None:
                return int(self._db.execute("SELECT count(*) FROM results").fetchone()[0])
            row = self._db.execute("SELECT count(*) FROM results WHERE kind = ?", (kind,))
            return int(row.fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
