"""A stand-in for the Anthropic and OpenAI HTTP APIs, served on 127.0.0.1 only.

For the tests, the capture benchmark and offline demos: it answers `POST /v1/messages` and
`POST /v1/chat/completions`, JSON or streamed, with an echo of the last user message (or with
whatever a `reply` function returns), records every request it gets, can be told to fail, and
stops by itself after `lifetime_s` so a forgotten one never lingers.

    with serve_fake_upstream() as fake:
        client = anthropic.Anthropic(api_key="k", base_url=fake.url)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from workbench.collect.http import HttpServer, LoopThread, Request, ResponseWriter

DELAY_HEADER = "x-fake-delay-ms"
"""A request header that overrides `delay_s` for one request (milliseconds)."""

Reply = Callable[[str, dict[str, Any]], dict[str, Any]]
"""(api, request JSON) -> an Anthropic message or an OpenAI chat completion (JSON object)."""


@dataclass(frozen=True)
class Failure:
    """A canned error answer: status, body bytes and extra headers."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


@dataclass
class FakeUpstream:
    """The fake API's behaviour and what it has seen."""

    delay_s: float = 0.0
    """Wait this long before answering (a model's thinking time); see DELAY_HEADER."""
    chunk_delay_s: float = 0.0
    """Wait this long between two streamed events."""
    reply: Reply | None = None
    requests: list[Request] = field(default_factory=list)
    keep_requests: bool = True
    """Record each request in `requests` (a benchmark turns this off)."""
    failures: list[Failure] = field(default_factory=list)
    """Answered first, one per request, before any normal answer."""
    gate: threading.Event | None = None
    """When set up, a stream sends its first event and then waits for the gate to open."""
    url: str = ""

    async def handle(self, request: Request, response: ResponseWriter) -> None:
        """Answer one request like the real API would."""
        if self.keep_requests:
            self.requests.append(request)
        delay = request.header(DELAY_HEADER)
        seconds = float(delay) / 1000 if delay else self.delay_s
        if seconds:
            await asyncio.sleep(seconds)
        if self.failures:
            failure = self.failures.pop(0)
            await response.send(failure.status, list(failure.headers), failure.body)
            return
        api = "anthropic" if request.path.endswith("/v1/messages") else "openai"
        if request.method != "POST" or not request.path.endswith(
            ("/v1/messages", "/chat/completions")
        ):
            await response.send(404, [("Content-Type", "application/json")], b'{"error":"nf"}')
            return
        body = json.loads(request.body or b"{}")
        message = self.reply(api, body) if self.reply else echo(api, body)
        if body.get("stream"):
            await self._stream(response, api, message)
        else:
            await response.send(200, _json_headers(api), json_bytes(message))

    async def _stream(self, response: ResponseWriter, api: str, message: dict[str, Any]) -> None:
        events = anthropic_events(message) if api == "anthropic" else openai_chunks(message)
        await response.start(200, [("Content-Type", "text/event-stream"), *_id_header(api)])
        for number, event in enumerate(events):
            await response.write(event)
            if number == 0 and self.gate is not None:
                await asyncio.get_running_loop().run_in_executor(None, self.gate.wait, 30)
            if self.chunk_delay_s:
                await asyncio.sleep(self.chunk_delay_s)
        await response.end()


def _json_headers(api: str) -> list[tuple[str, str]]:
    return [("Content-Type", "application/json"), *_id_header(api)]


def _id_header(api: str) -> list[tuple[str, str]]:
    name = "request-id" if api == "anthropic" else "x-request-id"
    return [(name, "req_fake_0001")]


def json_bytes(value: Any) -> bytes:
    """JSON as a server might format it (spaces after separators, UTF-8 kept)."""
    return json.dumps(value, ensure_ascii=False, indent=1).encode("utf-8")


def last_user_text(api: str, body: dict[str, Any]) -> str:
    """The text of the request's last user message."""
    for message in reversed(body.get("messages") or []):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        return " ".join(str(part.get("text", "")) for part in content or [])
    return ""


def echo(api: str, body: dict[str, Any]) -> dict[str, Any]:
    """The default answer: "Echo: " and the last user message."""
    text = "Echo: " + last_user_text(api, body)
    words_in = sum(len(str(m.get("content", "")).split()) for m in body.get("messages") or [])
    if api == "anthropic":
        return anthropic_message(str(body.get("model", "")), text, words_in)
    return openai_completion(str(body.get("model", "")), text, words_in)


def anthropic_message(
    model: str, text: str, input_tokens: int = 10, content: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A Messages API response with `text` (or the given content blocks)."""
    return {
        "id": "msg_fake_0001",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content if content is not None else [{"type": "text", "text": text}],
        "stop_reason": "tool_use" if content else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": max(1, len(text.split()))},
    }


def openai_completion(model: str, text: str, prompt_tokens: int = 10) -> dict[str, Any]:
    """A chat completion with one choice saying `text`."""
    return {
        "id": "chatcmpl-fake0001",
        "object": "chat.completion",
        "created": 1_800_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": max(1, len(text.split())),
            "total_tokens": prompt_tokens + max(1, len(text.split())),
        },
    }


def _sse(name: str | None, data: dict[str, Any] | str) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {payload}\n\n".encode()


def anthropic_events(message: dict[str, Any]) -> list[bytes]:
    """The message as a Messages API event stream, its text in pieces of a few words."""
    start = {**message, "content": [], "stop_reason": None}
    start["usage"] = {"input_tokens": message["usage"]["input_tokens"], "output_tokens": 1}
    events = [_sse("message_start", {"type": "message_start", "message": start})]
    for index, block in enumerate(message["content"]):
        events += _block_events(index, block)
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    usage = {"output_tokens": message["usage"]["output_tokens"]}
    events.append(_sse("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}))
    events.append(_sse("message_stop", {"type": "message_stop"}))
    return events


def _block_events(index: int, block: dict[str, Any]) -> list[bytes]:
    if block["type"] == "text":
        empty: dict[str, Any] = {"type": "text", "text": ""}
        pieces = [{"type": "text_delta", "text": p} for p in _pieces(block["text"])]
    else:
        empty = {**block, "input": {}}
        text = json.dumps(block["input"], ensure_ascii=False)
        pieces = [{"type": "input_json_delta", "partial_json": p} for p in _pieces(text)]
    start = {"type": "content_block_start", "index": index, "content_block": empty}
    events = [_sse("content_block_start", start)]
    events += [
        _sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
        for d in pieces
    ]
    events.append(_sse("content_block_stop", {"type": "content_block_stop", "index": index}))
    return events


def _pieces(text: str, words: int = 3) -> list[str]:
    parts = text.split(" ")
    return [
        " ".join(parts[i : i + words]) + (" " if i + words < len(parts) else "")
        for i in range(0, len(parts), words)
    ] or [""]


def openai_chunks(completion: dict[str, Any]) -> list[bytes]:
    """A chat completion as its chunk stream (usage in the last chunk), ending with [DONE]."""
    base = {k: completion[k] for k in ("id", "created", "model")}
    base["object"] = "chat.completion.chunk"
    text = completion["choices"][0]["message"]["content"]
    chunks = [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]
    chunks += [{"index": 0, "delta": {"content": p}, "finish_reason": None} for p in _pieces(text)]
    chunks.append({"index": 0, "delta": {}, "finish_reason": "stop"})
    events = [_sse(None, {**base, "choices": [choice]}) for choice in chunks]
    events.append(_sse(None, {**base, "choices": [], "usage": completion["usage"]}))
    events.append(_sse(None, "[DONE]"))
    return events


@contextlib.contextmanager
def serve_fake_upstream(
    fake: FakeUpstream | None = None, lifetime_s: float = 300.0
) -> Iterator[FakeUpstream]:
    """Serve `fake` on 127.0.0.1 (a free port) in a background thread while the block runs.

    The server stops when the block ends, or after `lifetime_s` seconds in any case.
    """
    fake = fake or FakeUpstream()
    loop = LoopThread("fake-upstream")
    server = HttpServer(fake.handle, "127.0.0.1", 0)
    try:
        port = loop.run(server.start(), timeout=10)
        fake.url = f"http://127.0.0.1:{port}"
        loop.loop.call_soon_threadsafe(loop.loop.call_later, lifetime_s, _stop_soon, server)
        yield fake
    finally:
        if fake.gate is not None:
            fake.gate.set()
        with contextlib.suppress(Exception):
            loop.run(server.stop(grace=1), timeout=10)
        loop.close()


_stopping: set[asyncio.Task[None]] = set()


def _stop_soon(server: HttpServer) -> None:
    task = asyncio.ensure_future(server.stop(grace=0))
    _stopping.add(task)
    task.add_done_callback(_stopping.discard)
