"""The capture proxy over real HTTP on 127.0.0.1: a fake provider behind it, the real `anthropic`
SDK and plain httpx in front of it. What the caller gets must not change; what is kept must
hold no key; a failing store must not matter to the caller."""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import pytest

from workbench.collect.fake_upstream import Failure, FakeUpstream, serve_fake_upstream
from workbench.collect.pairs import Exchange
from workbench.collect.proxy import CaptureProxy, CaptureSettings, serve_proxy
from workbench.collect.sink import StoreSink
from workbench.data.store import ExampleStore, Query
from workbench.workspace import Workspace

KEY = "sk-ant-api03-THIS-IS-THE-CALLERS-OWN-KEY"
PROMPT = {"role": "user", "content": "Write a title for a page about wide hiking boots"}


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    with serve_fake_upstream(lifetime_s=60) as upstream:
        yield upstream


@pytest.fixture
def captured() -> list[Exchange]:
    return []


@pytest.fixture
def proxy(fake: FakeUpstream, captured: list[Exchange]) -> Iterator[CaptureProxy]:
    settings = CaptureSettings(port=0, anthropic_url=fake.url, openai_url=fake.url)
    with serve_proxy(settings, captured.append) as running:
        yield running


def wait_for(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def post_both(fake: FakeUpstream, proxy: CaptureProxy, path: str, body: dict, **kw: object):  # type: ignore[no-untyped-def]
    headers = {"x-api-key": KEY, "content-type": "application/json", **kw.pop("headers", {})}  # type: ignore[dict-item]
    with httpx.Client() as client:
        direct = client.post(fake.url + path, content=json.dumps(body), headers=headers)
        proxied = client.post(proxy.url + path, content=json.dumps(body), headers=headers)
    return direct, proxied


RELEVANT = ("content-type", "request-id", "x-request-id", "retry-after", "content-length")


def same_response(direct: httpx.Response, proxied: httpx.Response) -> None:
    assert proxied.status_code == direct.status_code
    assert proxied.content == direct.content  # byte for byte
    for name in RELEVANT:
        assert proxied.headers.get(name) == direct.headers.get(name), name


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/messages", {"model": "claude-x", "max_tokens": 50, "messages": [PROMPT]}),
        (
            "/v1/messages",
            {"model": "claude-x", "max_tokens": 50, "messages": [PROMPT], "stream": True},
        ),
        ("/v1/chat/completions", {"model": "gpt-x", "messages": [PROMPT]}),
        ("/v1/chat/completions", {"model": "gpt-x", "messages": [PROMPT], "stream": True}),
    ],
    ids=["anthropic", "anthropic-stream", "openai", "openai-stream"],
)
def test_pass_through_is_byte_identical(
    fake: FakeUpstream, proxy: CaptureProxy, captured: list[Exchange], path: str, body: dict
) -> None:
    direct, proxied = post_both(fake, proxy, path, body)
    assert direct.status_code == 200
    same_response(direct, proxied)
    wait_for(lambda: len(captured) == 1)
    assert captured[0].response_body == direct.content


def test_the_callers_key_goes_upstream_and_the_tag_header_stays_here(
    fake: FakeUpstream, proxy: CaptureProxy, captured: list[Exchange]
) -> None:
    client = anthropic.Anthropic(
        api_key=KEY, base_url=proxy.url, default_headers={"X-Workbench-Tag": "titles"}
    )
    reply = client.messages.create(model="claude-x", max_tokens=50, messages=[PROMPT])
    assert reply.content[0].text == "Echo: " + PROMPT["content"]  # type: ignore[union-attr]
    seen = {name.lower(): value for name, value in fake.requests[-1].headers}
    assert KEY in (seen.get("x-api-key", "") + seen.get("authorization", ""))
    assert "x-workbench-tag" not in seen
    wait_for(lambda: len(captured) == 1)
    assert captured[0].user_tag == "titles"
    assert KEY.encode() not in captured[0].request_body + captured[0].response_body


def test_the_sdk_streams_through_the_proxy_as_the_answer_is_written(
    fake: FakeUpstream, proxy: CaptureProxy, captured: list[Exchange]
) -> None:
    fake.gate = threading.Event()  # the fake sends its first event, then waits for the gate
    client = anthropic.Anthropic(api_key=KEY, base_url=proxy.url)
    with client.messages.stream(model="claude-x", max_tokens=50, messages=[PROMPT]) as stream:
        events = iter(stream)
        first = next(events)
        assert first.type == "message_start"
        assert not fake.gate.is_set() and captured == []  # it arrived before the answer ended
        fake.gate.set()
        text = stream.get_final_text()
    assert text == "Echo: " + PROMPT["content"]
    wait_for(lambda: len(captured) == 1)
    assert captured[0].content_type == "text/event-stream"


def test_an_upstream_error_is_passed_back_unchanged_and_not_kept(
    fake: FakeUpstream, proxy: CaptureProxy, captured: list[Exchange]
) -> None:
    error = b'{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}'
    headers = (("content-type", "application/json"), ("retry-after", "7"))
    fake.failures += [Failure(429, error, headers), Failure(429, error, headers)]
    body = {"model": "claude-x", "max_tokens": 5, "messages": [PROMPT]}
    direct, proxied = post_both(fake, proxy, "/v1/messages", body)
    same_response(direct, proxied)
    assert proxied.status_code == 429 and proxied.content == error

    fake.failures.append(Failure(529, b'{"type":"error","error":{"type":"overloaded_error"}}'))
    client = anthropic.Anthropic(api_key=KEY, base_url=proxy.url, max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as raised:
        client.messages.create(model="claude-x", max_tokens=5, messages=[PROMPT])
    assert raised.value.status_code == 529
    time.sleep(0.1)
    assert captured == [] and proxy.stats.upstream_errors == 2


def test_an_unreachable_upstream_is_a_502_in_the_apis_own_error_shape(
    captured: list[Exchange],
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    settings = CaptureSettings(port=0, anthropic_url=closed, openai_url=closed)
    with serve_proxy(settings, captured.append) as proxy:
        client = anthropic.Anthropic(api_key=KEY, base_url=proxy.url, max_retries=0)
        with pytest.raises(anthropic.APIStatusError) as raised:
            client.messages.create(model="claude-x", max_tokens=5, messages=[PROMPT])
        reply = httpx.post(proxy.url + "/v1/chat/completions", json={"messages": [PROMPT]})
    assert raised.value.status_code == 502
    assert "cannot connect" in str(raised.value)
    assert reply.status_code == 502 and "cannot connect" in reply.json()["error"]["message"]
    assert captured == []


def test_other_paths_are_forwarded_but_not_captured(
    fake: FakeUpstream, proxy: CaptureProxy, captured: list[Exchange]
) -> None:
    reply = httpx.get(proxy.url + "/v1/models", headers={"x-api-key": KEY})
    assert reply.status_code == 404 and reply.content == b'{"error":"nf"}'
    assert fake.requests[-1].path == "/v1/models"
    assert captured == []


def test_a_chunked_request_body_and_a_kept_alive_connection(
    fake: FakeUpstream, proxy: CaptureProxy, captured: list[Exchange]
) -> None:
    body = json.dumps({"model": "gpt-x", "messages": [PROMPT]}).encode()
    with httpx.Client() as client:
        for _ in range(3):  # one connection, three requests
            reply = client.post(
                proxy.url + "/v1/chat/completions", content=iter([body[:10], body[10:]])
            )
            assert reply.json()["choices"][0]["message"]["content"].startswith("Echo: Write")
    wait_for(lambda: len(captured) == 3)
    assert proxy.server.in_flight == 0


def test_a_malformed_request_gets_a_400(proxy: CaptureProxy) -> None:
    with socket.create_connection(("127.0.0.1", proxy.server.port)) as raw:
        raw.sendall(b"NONSENSE\r\n\r\n")
        assert raw.recv(100).startswith(b"HTTP/1.1 400 ")


class FailingStore(ExampleStore):
    """A real store whose writes fail, as a full disk or a locked database would."""

    def add_examples(self, *args: object, **kwargs: object) -> list[int]:
        raise sqlite3.OperationalError("database or disk is full")


def test_a_failing_store_never_fails_the_caller(workspace: Workspace, fake: FakeUpstream) -> None:
    sink = StoreSink(lambda: FailingStore(workspace.db_path))
    settings = CaptureSettings(port=0, anthropic_url=fake.url)
    with serve_proxy(settings, sink.submit) as proxy:
        client = anthropic.Anthropic(api_key=KEY, base_url=proxy.url)
        for _ in range(2):
            reply = client.messages.create(model="claude-x", max_tokens=5, messages=[PROMPT])
            assert reply.content[0].text.startswith("Echo: ")  # type: ignore[union-attr]
    sink.close()
    assert sink.stats().failed == 2 and sink.stats().stored == 0
    assert any("disk is full" in line for line in sink.take_failures())


def test_a_corrupt_database_never_fails_the_caller(
    workspace: Workspace, fake: FakeUpstream
) -> None:
    Path(workspace.db_path).write_bytes(b"this is not a database" * 100)
    sink = StoreSink.for_database(workspace.db_path)
    settings = CaptureSettings(port=0, openai_url=fake.url)
    with serve_proxy(settings, sink.submit) as proxy:
        reply = httpx.post(proxy.url + "/v1/chat/completions", json={"messages": [PROMPT]})
    sink.close()
    assert reply.status_code == 200 and reply.json()["choices"][0]["message"]["content"]
    assert sink.stats().failed == 1
    assert "not a database" in sink.take_failures()[0]


def test_stored_pairs_wait_for_review_with_their_tags_and_no_key(
    workspace: Workspace, fake: FakeUpstream
) -> None:
    sink = StoreSink.for_database(workspace.db_path)
    settings = CaptureSettings(port=0, anthropic_url=fake.url, default_tag="seo")
    with serve_proxy(settings, sink.submit) as proxy:
        client = anthropic.Anthropic(api_key=KEY, base_url=proxy.url)
        client.messages.create(model="claude-x", max_tokens=5, messages=[PROMPT])
        with client.messages.stream(model="claude-x", max_tokens=5, messages=[PROMPT]) as s:
            s.get_final_text()
    sink.close()
    with ExampleStore(workspace.db_path) as store:
        ids = store.ids(Query(flag="needs-review", tag="captured"))
        examples = [store.get(i) for i in ids]
    assert len(examples) == 2
    assert all(e.tags == ("captured", "model:claude-x", "seo") for e in examples)
    assert [e.extra["capture"]["stream"] for e in examples] == [False, True]
    assert all(e.extra["capture"]["latency_ms"] > 0 for e in examples)
    for path in workspace.root.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
