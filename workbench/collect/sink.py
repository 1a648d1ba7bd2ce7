"""Where captured exchanges go: the workspace's examples store, written off the request path.

`submit` never blocks and never raises, so storing cannot delay or fail the caller's request;
a storage failure is counted, logged and reported as an event, and the next batch tries again.
Each stored example is flagged `needs-review` and tagged `captured`, `model:NAME` and the user's
tag, so the Data screen's review queue (`workbench.collect.review`) lists it.

`StoreSink` writes from a thread; `ProcessSink` runs a `StoreSink` in a child process, so that
parsing bodies and writing SQLite never compete with the proxy's event loop for the GIL (the
capture job uses it).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import queue
import re
import signal
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.sharedctypes import SynchronizedArray
from pathlib import Path
from typing import Any, Protocol

from workbench.collect.pairs import CAPTURE_KEY, Exchange, NotStorable, to_record
from workbench.data.store import REVIEW_FLAG, ExampleStore

log = logging.getLogger(__name__)

CAPTURED_TAG = "captured"
SOURCE = "capture"
MAX_PENDING = 10_000
"""Exchanges waiting to be stored; beyond this, new ones are dropped (and counted as failed)."""

StoreFactory = Callable[[], ExampleStore]


class Sink(Protocol):
    """What the capture job needs of a sink."""

    def submit(self, exchange: Exchange) -> None: ...

    def stats(self) -> SinkStats: ...

    def take_failures(self) -> list[str]: ...

    def close(self, timeout: float = 30.0) -> None: ...


def clean_tag(text: str) -> str:
    """A tag the store accepts: no commas, no spaces, at most 64 characters ('' if empty)."""
    return re.sub(r"[\s,]+", "-", text.strip())[:64].strip("-")


def tags_for(record: dict[str, Any]) -> tuple[str, ...]:
    """`captured`, `model:NAME` and the user's tag, for a record made by `to_record`."""
    meta = record.get(CAPTURE_KEY) or {}
    tags = [CAPTURED_TAG]
    if model := clean_tag(str(meta.get("model") or "")):
        tags.append(f"model:{model}")
    if user := clean_tag(str(meta.get("tag") or "")):
        tags.append(user)
    return tuple(dict.fromkeys(tags))


@dataclass(frozen=True)
class SinkStats:
    """What the sink has done so far."""

    stored: int = 0
    skipped: int = 0
    """Exchanges that make no example (upstream errors, empty answers...)."""
    failed: int = 0
    """Exchanges that could not be written (the store failed, or too many were pending)."""
    pending: int = 0
    skip_reasons: dict[str, int] = field(default_factory=dict)


class StoreSink:
    """Stores exchanges as candidate examples, in batches, from its own thread."""

    def __init__(self, open_store: StoreFactory, batch_size: int = 200) -> None:
        self._open_store = open_store
        self._store: ExampleStore | None = None
        self._queue: queue.Queue[Exchange | None] = queue.Queue(MAX_PENDING)
        self._batch_size = batch_size
        self._lock = threading.Lock()
        self._stored = self._failed = 0
        self._skipped: Counter[str] = Counter()
        self._failures: list[str] = []
        self._thread = threading.Thread(target=self._run, name="capture-store", daemon=True)
        self._thread.start()

    @classmethod
    def for_database(cls, db_path: Path) -> StoreSink:
        """A sink writing into the examples database at `db_path`."""
        return cls(lambda: ExampleStore(db_path))

    def submit(self, exchange: Exchange) -> None:
        """Queue an exchange for storing; returns at once and never raises."""
        try:
            self._queue.put_nowait(exchange)
        except queue.Full:
            self._fail(1, "too many captured exchanges waiting to be stored; this one was dropped")

    def stats(self) -> SinkStats:
        with self._lock:
            return SinkStats(
                stored=self._stored,
                skipped=sum(self._skipped.values()),
                failed=self._failed,
                pending=self._queue.qsize(),
                skip_reasons=dict(self._skipped),
            )

    def take_failures(self) -> list[str]:
        """The storage errors since the last call (one line each), for progress events."""
        with self._lock:
            failures, self._failures = self._failures, []
        return failures

    def close(self, timeout: float = 30.0) -> None:
        """Store what is pending (waiting at most `timeout` seconds), then stop the thread."""
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            log.error("capture: the store did not drain in %.0f s", timeout)
        self._thread.join(timeout)
        if self._store is not None and not self._thread.is_alive():
            self._store.close()

    # --- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            batch, stop = self._next_batch()
            if batch:
                self._store_batch(batch)
            if stop:
                return

    def _next_batch(self) -> tuple[list[Exchange], bool]:
        first = self._queue.get()
        if first is None:
            return [], True
        batch = [first]
        while len(batch) < self._batch_size:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _store_batch(self, batch: Sequence[Exchange]) -> None:
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for exchange in batch:
            try:
                record = to_record(exchange)
            except NotStorable as exc:
                with self._lock:
                    self._skipped[str(exc)] += 1
                continue
            except Exception as exc:  # a body we misread must not stop the capture
                log.exception("capture: cannot read an exchange")
                self._fail(1, f"cannot read a captured exchange: {exc}")
                continue
            groups.setdefault(tags_for(record), []).append(record)
        for tags, records in groups.items():
            self._write(records, tags)

    def _write(self, records: list[dict[str, Any]], tags: tuple[str, ...]) -> None:
        try:
            store = self._store or self._open_store()
            self._store = store
            ids = store.add_examples(
                records,
                source=SOURCE,
                label=f"capture {len(records)} example(s)",
                tags=tags,
                flag=REVIEW_FLAG,
            )
        except Exception as exc:  # any storage failure: count it, report it, retry next batch
            self._reset_store()
            self._fail(len(records), f"cannot store {len(records)} captured example(s): {exc}")
            return
        with self._lock:
            self._stored += len(ids)

    def _reset_store(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            try:
                store.close()
            except Exception:
                log.debug("capture: closing a failed store", exc_info=True)

    def _fail(self, count: int, message: str) -> None:
        log.error("capture: %s", message)
        with self._lock:
            self._failed += count
            if len(self._failures) < 100:
                self._failures.append(message)


class ProcessSink:
    """A `StoreSink` in a child process, fed through a pipe; same interface."""

    def __init__(self, db_path: Path) -> None:
        context = multiprocessing.get_context("spawn")
        self._queue: Any = context.Queue(MAX_PENDING)
        self._messages: Any = context.Queue()
        self._counts: SynchronizedArray[int] = context.Array("q", 3)
        self._dropped = 0
        self._failures: list[str] = []
        self._process = context.Process(
            target=_store_in_child,
            args=(str(db_path), self._queue, self._counts, self._messages),
            name="capture-store",
            daemon=True,
        )
        self._process.start()

    def submit(self, exchange: Exchange) -> None:
        """Queue an exchange for the child; returns at once and never raises."""
        try:
            self._queue.put_nowait(exchange)
        except Exception:  # full, or the child is gone: the caller's request goes on
            self._dropped += 1
            self._failures.append("an exchange could not be handed to the storing process")

    def stats(self) -> SinkStats:
        stored, skipped, failed = self._counts[:]
        try:
            pending = self._queue.qsize()
        except NotImplementedError:  # pragma: no cover - macOS
            pending = 0
        return SinkStats(stored, skipped, failed + self._dropped, pending)

    def take_failures(self) -> list[str]:
        failures, self._failures = self._failures, []
        while True:
            try:
                failures.append(self._messages.get_nowait())
            except (queue.Empty, OSError, ValueError):
                return failures

    def close(self, timeout: float = 30.0) -> None:
        """Let the child store what is pending (at most `timeout` seconds), then end it."""
        try:
            self._queue.put(None, timeout=timeout)
        except Exception:
            log.error("capture: the storing process did not take the stop request")
        self._process.join(timeout)
        if self._process.is_alive():
            log.error("capture: the storing process did not finish in %.0f s", timeout)
            self._process.terminate()
            self._process.join(5)


def _store_in_child(
    db_path: str, inbox: Any, counts: SynchronizedArray[int], messages: Any
) -> None:
    """The child process: store what arrives until None, publishing counts as it goes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C stops the parent, which stops us
    with contextlib.suppress(OSError):
        os.nice(10)  # background work: the proxy's callers come first for the CPU
    parent = os.getppid()
    sink = StoreSink.for_database(Path(db_path))
    while True:
        try:
            item = inbox.get(timeout=0.25)
        except queue.Empty:
            _publish(sink, counts, messages)
            if os.getppid() != parent:  # the capture was killed: store what we have, end
                break
            continue
        if item is None:
            break
        sink.submit(item)
    sink.close()
    _publish(sink, counts, messages)


def _publish(sink: StoreSink, counts: SynchronizedArray[int], messages: Any) -> None:
    stats = sink.stats()
    counts[:] = [stats.stored, stats.skipped, stats.failed]
    for failure in sink.take_failures():
        messages.put(failure)
