"""The capture job's engine: events while it serves, and a store that fails on the way."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import anthropic
import pytest

from workbench.cli import main
from workbench.collect.capture import capture
from workbench.collect.events import (
    CaptureProgress,
    CollectEvent,
    JobFinished,
    Listening,
    StoreFailed,
)
from workbench.collect.fake_upstream import FakeUpstream, serve_fake_upstream
from workbench.collect.proxy import CaptureSettings
from workbench.workspace import Workspace

PROMPT = {"role": "user", "content": "Write a title for a page about canoes"}


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    with serve_fake_upstream(lifetime_s=60) as upstream:
        yield upstream


def serve_in_background(
    workspace: Workspace, fake: FakeUpstream
) -> tuple[list[CollectEvent], threading.Event, threading.Thread]:
    events: list[CollectEvent] = []
    cancel = threading.Event()
    settings = CaptureSettings(port=0, anthropic_url=fake.url)

    def consume() -> None:
        events.extend(capture(workspace.db_path, settings, cancel, progress_every=0.1))

    thread = threading.Thread(target=consume)
    thread.start()
    return events, cancel, thread


def wait_listening(events: list[CollectEvent]) -> Listening:
    for _ in range(300):
        found = [e for e in events if isinstance(e, Listening)]
        if found:
            return found[0]
        threading.Event().wait(0.02)
    raise AssertionError(f"never listened: {events}")


@pytest.mark.slow
def test_the_job_reports_what_it_stored_and_ends_stopped(
    workspace: Workspace, fake: FakeUpstream
) -> None:
    events, cancel, thread = serve_in_background(workspace, fake)
    url = wait_listening(events).url
    client = anthropic.Anthropic(api_key="sk-ant-k", base_url=url)
    for _ in range(3):
        client.messages.create(model="claude-x", max_tokens=5, messages=[PROMPT])
    cancel.set()
    thread.join(30)
    finished = events[-1]
    assert isinstance(finished, JobFinished) and finished.state == "stopped"
    assert finished.totals["requests"] == 3 and finished.totals["stored"] == 3
    assert any(isinstance(e, CaptureProgress) and e.stored == 3 for e in events)


@pytest.mark.slow
def test_a_broken_database_is_reported_and_the_callers_are_served(
    workspace: Workspace, fake: FakeUpstream
) -> None:
    workspace.db_path.write_bytes(b"not a database at all " * 200)
    events, cancel, thread = serve_in_background(workspace, fake)
    client = anthropic.Anthropic(api_key="sk-ant-k", base_url=wait_listening(events).url)
    reply = client.messages.create(model="claude-x", max_tokens=5, messages=[PROMPT])
    assert reply.content[0].text == "Echo: " + PROMPT["content"]  # type: ignore[union-attr]
    cancel.set()
    thread.join(30)
    failures = [e.message for e in events if isinstance(e, StoreFailed)]
    assert failures and "file is not a database" in failures[0]
    assert events[-1].totals["failed"] == 1  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--upstream", "anthropic"], "expected `anthropic URL`, `openai URL` or a URL"),
        (["--upstream", "azure", "https://x"], "expected `anthropic URL`"),
        (["--port", "70000"], "expected a port number"),
    ],
)
def test_bad_options_are_usage_errors(
    workspace: Workspace, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["-w", str(workspace.root), "capture", *args]) == 2
    assert message in capsys.readouterr().err
