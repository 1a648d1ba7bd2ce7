"""Importing files into the workspace's examples, as a job: `import_files` yields small frozen
events (progress about every 0.25 s) and stops between batches when `cancel` is set.

Every record is validated on the way in: valid ones become examples (with their warnings),
invalid ones go to the quarantine with their reasons. Each batch is one transaction, and the
whole import is one undoable action, so a crash loses at most the batch in flight and one undo
takes the import back.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.data.dedupe import NearDuplicates
from workbench.data.formats import (
    Columns,
    Detected,
    FormatError,
    InputFormat,
    InputRecord,
    convert,
    detect,
    input_size,
    read_records,
    shape_of,
)
from workbench.data.readers import ReadError
from workbench.data.store import (
    ExampleStore,
    NewExample,
    PreparedBatch,
    Problem,
    QuarantinedLine,
    Split,
    StoreError,
    Validator,
)
from workbench.data.validate import Finding, check_record, mark_duplicates, open_store
from workbench.workspace import Workspace

BATCH_SECONDS = 0.1
"""A batch is committed after about this long (or BATCH_ROWS records), whichever comes first."""
BATCH_ROWS = 2000
PROGRESS_SECONDS = 0.25
NEAR_DUPLICATE_LIMIT = 50_000
"""Near duplicates are looked for at import up to this many examples; beyond, `validate` does."""
IMPORTABLE = (".jsonl", ".json", ".ndjson", ".csv", ".tsv", ".parquet", ".pq")
QUARANTINE_SHOWN = 20
"""Quarantined lines listed per file in the events (all are in the store)."""


@dataclass(frozen=True)
class FileStarted:
    name: str
    format: str
    """How the format was decided, e.g. `OpenAI chat, JSON Lines (detected: ...)`."""
    size: int


@dataclass(frozen=True)
class ImportProgress:
    """Cumulative counts of the current file, and how far into it the import is."""

    name: str
    done: int
    total: int
    imported: int
    quarantined: int
    with_warnings: int


@dataclass(frozen=True)
class FileImported:
    name: str
    format: str
    imported: int
    quarantined: int
    with_warnings: int
    quarantine: tuple[Finding, ...]
    """The first QUARANTINE_SHOWN quarantined lines with their first reason."""


@dataclass(frozen=True)
class FileFailed:
    """A file that could not be read at all (nothing of it was imported)."""

    name: str
    error: str


@dataclass(frozen=True)
class ImportFinished:
    imported: int
    quarantined: int
    with_warnings: int
    exact_duplicates: int
    near_duplicates: int | None
    """None: not looked for (more than NEAR_DUPLICATE_LIMIT examples)."""
    seconds: float
    files: tuple[FileImported | FileFailed, ...]
    undo_label: str
    cancelled: bool = False


ImportEvent = FileStarted | ImportProgress | FileImported | FileFailed | ImportFinished


def display_name(path: Path, root: Path | None) -> str:
    """How sources name a file: relative to the workspace when inside it, else as given."""
    if root is not None:
        try:
            return str(path.resolve().relative_to(root.resolve()))
        except ValueError:
            pass
    return str(path)


def import_files(
    store: ExampleStore,
    paths: Sequence[Path],
    fmt: InputFormat = "auto",
    cancel: threading.Event | None = None,
    columns: Columns | None = None,
    root: Path | None = None,
    split: Split = "unassigned",
    validator: Validator | None = None,
    near_threshold: float = 0.9,
) -> Iterator[ImportEvent]:
    """Import files as one undoable action; events report each file and the progress.

    `validator`: defaults to the store's (see `open_store`), else the built-in checks.
    `near_threshold`: the workspace's `data.near_duplicate_threshold`.
    """
    cancel = cancel or threading.Event()
    check = validator or store.validator or check_record
    started = time.monotonic()
    names = [display_name(path, root) for path in paths]
    label = f"import {names[0]}" if len(names) == 1 else f"import {len(names)} files"
    action = store.new_action(label)
    results: list[FileImported | FileFailed] = []
    writer = _Writer(store, action)
    try:
        for path, name in zip(paths, names, strict=True):
            job = _FileJob(writer, name, check, split)
            try:
                detected = detect(path, fmt, columns)
                yield FileStarted(name, detected.describe(), input_size(path, detected))
                yield from job.run(path, detected, cancel)
            except (FormatError, ReadError, OSError) as exc:
                results.append(FileFailed(name, str(exc)))
                yield results[-1]
                continue
            results.append(job.result(detected))
            yield results[-1]
            if cancel.is_set():
                break
    finally:
        writer.close()
    yield _finish(store, results, label, started, cancel.is_set(), near_threshold)


def _finish(
    store: ExampleStore,
    results: Sequence[FileImported | FileFailed],
    label: str,
    started: float,
    cancelled: bool,
    threshold: float,
) -> ImportFinished:
    """Mark duplicates across the whole store (near ones too, up to NEAR_DUPLICATE_LIMIT)."""
    done = [r for r in results if isinstance(r, FileImported)]
    exact = near = 0
    near_checked = store.count() <= NEAR_DUPLICATE_LIMIT
    if not cancelled and done:
        index = None if near_checked else NearDuplicates(threshold)
        findings = mark_duplicates(store, near=index, threshold=threshold)
        exact = sum(f.problem.code == "duplicate" for f in findings)
        near = sum(f.problem.code == "near-duplicate" for f in findings)
    return ImportFinished(
        imported=sum(r.imported for r in done),
        quarantined=sum(r.quarantined for r in done),
        with_warnings=sum(r.with_warnings for r in done),
        exact_duplicates=exact,
        near_duplicates=near if near_checked else None,
        seconds=time.monotonic() - started,
        files=tuple(results),
        undo_label=label,
        cancelled=cancelled,
    )


class _Writer:
    """Writes prepared batches on its own thread, so that reading and checking the next batch
    (Python, on one core) overlaps with SQLite indexing this one (C, on the other). At most
    two batches wait; an error while writing is raised in the importing thread."""

    def __init__(self, store: ExampleStore, action: int) -> None:
        self.store, self.action = store, action
        self.queue: queue.Queue[tuple[PreparedBatch, list[QuarantinedLine], _FileJob] | None]
        self.queue = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="import-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (task := self.queue.get()) is not None:
            try:
                self._write(*task)
            finally:
                self.queue.task_done()
        self.queue.task_done()

    def _write(self, batch: PreparedBatch, rejected: list[QuarantinedLine], job: _FileJob) -> None:
        if self.error is not None:
            return
        try:
            self.store.add_prepared(batch, action=self.action, quarantine=rejected)
        except BaseException as exc:  # handed to the importing thread
            self.error = exc
            return
        job.imported += len(batch.rows)
        job.quarantined += len(rejected)

    def put(self, batch: PreparedBatch, rejected: list[QuarantinedLine], job: _FileJob) -> None:
        self.check()
        self.queue.put((batch, rejected, job))

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def wait(self) -> None:
        """Until everything queued is written."""
        self.queue.join()
        self.check()

    def close(self) -> None:
        """Write what is queued, stop the thread, raise its error if it had one."""
        if self.thread.is_alive():
            self.queue.put(None)
            self.thread.join()
        self.check()


class _FileJob:
    """Reads one file in batches: valid records to the store, invalid ones to the quarantine."""

    def __init__(self, writer: _Writer, name: str, check: Validator, split: Split) -> None:
        self.writer, self.name, self.check, self.split = writer, name, check, split
        self.imported = self.quarantined = self.with_warnings = 0
        self.shown: list[Finding] = []
        self.items: list[NewExample] = []
        self.rejected: list[QuarantinedLine] = []

    def run(
        self, path: Path, detected: Detected, cancel: threading.Event
    ) -> Iterator[ImportProgress]:
        total = input_size(path, detected)
        flushed = reported = time.monotonic()
        for record in read_records(path, detected, self.name):
            self._take(record)
            now = time.monotonic()
            if len(self.items) + len(self.rejected) >= BATCH_ROWS or now - flushed >= BATCH_SECONDS:
                self._flush()
                flushed = now
                if cancel.is_set():
                    self.writer.wait()
                    return
            if now - reported >= PROGRESS_SECONDS:
                reported = now
                yield self._progress(record.position, total)
        self._flush()
        self.writer.wait()
        yield self._progress(total, total)

    def _take(self, record: InputRecord) -> None:
        problems = list(record.problems)
        if record.record is not None:
            problems += self.check(record.record)
        if any(p.severity == "error" for p in problems):
            ordered = sorted(problems, key=lambda p: p.severity != "error")
            reasons = [p.message for p in ordered]
            self.rejected.append(QuarantinedLine(self.name, record.line, record.raw(), reasons))
            if len(self.shown) < QUARANTINE_SHOWN:
                self.shown.append(Finding(record.source, ordered[0]))
            return
        assert record.record is not None
        self.items.append(NewExample(record.record, record.source, problems, self.split))
        self.with_warnings += bool(problems)

    def _flush(self) -> None:
        if self.items or self.rejected:
            self.writer.put(self.writer.store.prepare(self.items), self.rejected, self)
            self.items, self.rejected = [], []

    def _progress(self, done: int, total: int) -> ImportProgress:
        return ImportProgress(
            self.name, done, total, self.imported, self.quarantined, self.with_warnings
        )

    def result(self, detected: Detected) -> FileImported:
        return FileImported(
            self.name,
            detected.describe(),
            self.imported,
            self.quarantined,
            self.with_warnings,
            tuple(self.shown),
        )


# --- the quarantine ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FixResult:
    """What became of a fixed quarantined line: an example (its id), or its new problems."""

    example_id: int | None
    problems: tuple[Problem, ...]


def fix_quarantined(
    store: ExampleStore, quarantine_id: int, text: str, validator: Validator | None = None
) -> FixResult:
    """Check the fixed text of a quarantined line (JSON in any supported shape): without errors
    it becomes an example and leaves the quarantine, else the line keeps the new text and
    reasons."""
    check = validator or store.validator or check_record
    record, problems = _parse_fixed(text)
    if record is not None:
        problems += check(record)
    errors = [p for p in problems if p.severity == "error"]
    if errors or record is None:
        store.update_quarantined(quarantine_id, text, [p.message for p in problems])
        return FixResult(None, tuple(problems))
    source = _quarantine_source(store, quarantine_id)
    example_id = store.admit_quarantined(quarantine_id, NewExample(record, source, problems))
    return FixResult(example_id, tuple(problems))


def _parse_fixed(text: str) -> tuple[dict[str, Any] | None, list[Problem]]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, [Problem("error", "not-json", f"not JSON: {exc.msg} (column {exc.colno})")]
    found = Detected("jsonl", shape_of(value) or "openai", "fixed line")
    return convert(value, found)


def _quarantine_source(store: ExampleStore, quarantine_id: int) -> str:
    for row in store.quarantined():
        if row["id"] == quarantine_id:
            return f"{row['source']}:{row['line']}" if row["line"] else str(row["source"])
    raise StoreError(f"no quarantined line {quarantine_id}")


# --- a workspace's imports/ folder ---------------------------------------------------------------


def pending_imports(workspace: Workspace) -> list[Path]:
    """The files of the workspace's `imports/` folder, when its database has never held an
    example nor a quarantined line (a new workspace, or the sample opened the first time).
    Candidates a capture proxy or a synth job stored first, into a new workspace, don't count."""
    folder = workspace.root / "imports"
    if not folder.is_dir():
        return []
    with ExampleStore(workspace.db_path) as store:
        if store.holds_more_than_candidates():
            return []
    return sorted(
        path
        for path in folder.iterdir()
        if (path.is_file() and path.suffix.lower() in IMPORTABLE) or path.is_dir()
    )


def import_pending(
    workspace: Workspace, cancel: threading.Event | None = None
) -> ImportFinished | None:
    """Import the `imports/` folder into an empty workspace database (see `pending_imports`);
    None when there was nothing to do."""
    paths = pending_imports(workspace)
    if not paths:
        return None
    finished = None
    threshold = workspace.config.data.near_duplicate_threshold
    with open_store(workspace) as store:
        events = import_files(
            store, paths, cancel=cancel, root=workspace.root, near_threshold=threshold
        )
        for event in events:
            if isinstance(event, ImportFinished):
                finished = event
    return finished
