"""The capture job: run the proxy until cancelled, reporting progress as events.

    for event in capture(workspace.db_path, CaptureSettings(port=8765), cancel):
        ...

The proxy runs on its own event loop thread; this iterator only watches it, so a caller (the
job runner, a UI worker) can consume it like any other long job.
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

from workbench.collect.events import (
    CaptureProgress,
    CollectEvent,
    JobError,
    JobFinished,
    Listening,
    StoreFailed,
)
from workbench.collect.http import LoopThread
from workbench.collect.proxy import CaptureProxy, CaptureSettings
from workbench.collect.sink import ProcessSink, Sink

STOP_GRACE_S = 10.0
"""How long answers in flight may take to finish once the capture is stopped."""


def capture(
    db_path: Path,
    settings: CaptureSettings,
    cancel: threading.Event,
    progress_every: float = 1.0,
    sink: Sink | None = None,
) -> Iterator[CollectEvent]:
    """Serve the capture proxy until `cancel` is set; captured pairs go to `db_path` (through
    a storing process, unless another `sink` is given)."""
    sink = sink or ProcessSink(db_path)
    loop = LoopThread("capture-proxy")
    proxy = CaptureProxy(settings, sink.submit)
    try:
        try:
            loop.run(proxy.start(), timeout=30)
        except OSError as exc:
            yield JobError(_bind_error(settings, exc))
            yield JobFinished("failed", "could not listen")
            return
        yield Listening(proxy.url, settings.anthropic_url, settings.openai_url)
        yield from _watch(proxy, sink, cancel, progress_every)
        loop.run(proxy.stop(STOP_GRACE_S), timeout=STOP_GRACE_S + 10)
    finally:
        sink.close()
        loop.close()
    yield from _failures(sink)
    final = progress(proxy, sink)
    yield final
    yield JobFinished("stopped", "stopped on request", totals=asdict(final))


def _watch(
    proxy: CaptureProxy, sink: Sink, cancel: threading.Event, every: float
) -> Iterator[CollectEvent]:
    """Progress events whenever the counters change, until cancelled."""
    last = None
    while not cancel.wait(every):
        yield from _failures(sink)
        current = progress(proxy, sink)
        if current != last:
            yield current
            last = current


def _failures(sink: Sink) -> Iterator[StoreFailed]:
    for message in sink.take_failures():
        yield StoreFailed(message)


def progress(proxy: CaptureProxy, sink: Sink) -> CaptureProgress:
    """The proxy's and the sink's counters as one event."""
    stored = sink.stats()
    return CaptureProgress(
        requests=proxy.stats.requests,
        captured=proxy.stats.captured,
        stored=stored.stored,
        skipped=stored.skipped,
        failed=stored.failed,
        upstream_errors=proxy.stats.upstream_errors,
        unreachable=proxy.stats.unreachable,
        pending=stored.pending,
    )


def _bind_error(settings: CaptureSettings, exc: OSError) -> str:
    where = f"{settings.host}:{settings.port}"
    if exc.errno == errno.EADDRINUSE:
        return f"port {settings.port} is in use: pass --port with a free one (or stop the other)"
    return f"cannot listen on {where}: {exc.strerror or exc}; check --host and --port"
