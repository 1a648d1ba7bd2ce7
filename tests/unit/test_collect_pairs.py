"""Captured bodies become training examples: both APIs, JSON and streamed, tool calls, gzip."""

from __future__ import annotations

import gzip
import json

import pytest

from workbench.collect.fake_upstream import (
    anthropic_events,
    anthropic_message,
    openai_chunks,
    openai_completion,
)
from workbench.collect.pairs import Exchange, NotStorable, to_record


def exchange(api: str, request: dict, body: bytes, **changes: object) -> Exchange:
    values: dict = {
        "api": api,
        "path": "/v1/messages" if api == "anthropic" else "/v1/chat/completions",
        "request_body": json.dumps(request).encode(),
        "status": 200,
        "response_body": body,
        "latency_ms": 812.345,
        "started_at": 1_800_000_000.0,
        "user_tag": "titles",
    }
    values.update(changes)
    return Exchange(**values)


ANTHROPIC_REQUEST = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 300,
    "temperature": 0.2,
    "metadata": {"user_id": "customer-42"},
    "system": [{"type": "text", "text": "You write SEO titles."}],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Page: hiking boots for wide feet"},
                {"type": "image", "source": {"type": "base64", "data": "AAAA"}},
            ],
        }
    ],
}


def test_anthropic_json_pair_keeps_system_input_answer_and_what_the_call_cost() -> None:
    reply = anthropic_message("claude-sonnet-4-5-20250929", "Wide-Fit Hiking Boots", 41)
    record = to_record(exchange("anthropic", ANTHROPIC_REQUEST, json.dumps(reply).encode()))
    assert record["messages"] == [
        {"role": "system", "content": "You write SEO titles."},
        {"role": "user", "content": "Page: hiking boots for wide feet"},
        {"role": "assistant", "content": "Wide-Fit Hiking Boots"},
    ]
    meta = record["capture"]
    assert meta["model"] == "claude-sonnet-4-5-20250929"
    assert meta["usage"] == {"input_tokens": 41, "output_tokens": 3}
    assert (meta["latency_ms"], meta["tag"], meta["time"]) == (
        812.3,
        "titles",
        "2027-01-15T08:00:00Z",
    )
    assert meta["params"] == {"max_tokens": 300, "temperature": 0.2}
    assert meta["dropped"] == {"image": 1}
    assert "customer-42" not in json.dumps(record)


def test_anthropic_stream_is_rebuilt_from_its_events() -> None:
    reply = anthropic_message("claude-x", "A title in several streamed pieces of text", 12)
    body = b"".join(anthropic_events(reply))
    record = to_record(
        exchange("anthropic", ANTHROPIC_REQUEST, body, content_type="text/event-stream")
    )
    assert record["messages"][-1]["content"] == "A title in several streamed pieces of text"
    assert record["capture"]["stream"] is True
    assert record["capture"]["usage"]["output_tokens"] == reply["usage"]["output_tokens"]


def test_a_forced_tool_call_answer_becomes_its_json_input() -> None:
    tool = {"type": "tool_use", "id": "t1", "name": "emit", "input": {"title": "Boots", "n": 2}}
    reply = anthropic_message("claude-x", "", 5, content=[tool])
    streamed = b"".join(anthropic_events(reply))
    for body, kind in (
        (json.dumps(reply).encode(), "application/json"),
        (streamed, "text/event-stream"),
    ):
        record = to_record(exchange("anthropic", ANTHROPIC_REQUEST, body, content_type=kind))
        assert json.loads(record["messages"][-1]["content"]) == {"title": "Boots", "n": 2}
        assert record["capture"]["output"] == "tool_use:emit"


def test_openai_pair_maps_developer_to_system_and_reads_the_stream_usage() -> None:
    request = {
        "model": "gpt-4.1",
        "stream": True,
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Summarize: rain"}]},
        ],
    }
    body = b"".join(openai_chunks(openai_completion("gpt-4.1-2025", "It rains a lot.", 9)))
    record = to_record(exchange("openai", request, body, content_type="text/event-stream"))
    assert record["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Summarize: rain"},
        {"role": "assistant", "content": "It rains a lot."},
    ]
    assert record["capture"]["usage"] == {"input_tokens": 9, "output_tokens": 4}
    assert record["capture"]["model"] == "gpt-4.1-2025"


def test_gzip_encoded_answer_is_read() -> None:
    reply = json.dumps(openai_completion("m", "Fine.")).encode()
    request = {"model": "m", "messages": [{"role": "user", "content": "ok?"}]}
    record = to_record(exchange("openai", request, gzip.compress(reply), content_encoding="gzip"))
    assert record["messages"][-1]["content"] == "Fine."


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"status": 529}, "upstream answered 529"),
        ({"response_body": b"<html>"}, "not JSON"),
        ({"response_body": json.dumps(anthropic_message("m", " ")).encode()}, "empty"),
        ({"request_body": b'{"messages": []}'}, "no user message"),
    ],
)
def test_what_makes_no_example_is_refused_with_a_reason(changes: dict, reason: str) -> None:
    body = json.dumps(anthropic_message("m", "ok")).encode()
    with pytest.raises(NotStorable, match=reason):
        to_record(exchange("anthropic", ANTHROPIC_REQUEST, body, **changes))
