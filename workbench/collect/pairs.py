"""Turn one captured exchange (request and response bodies) into an OpenAI-chat record.

Both APIs are understood, JSON and streamed (server-sent events) alike: the Anthropic Messages
API (`system` + `messages` in, content blocks out) and OpenAI chat completions (`messages` in,
`choices[0].message` out). Only bodies are read: headers, and so keys, never reach a record.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Api = Literal["anthropic", "openai"]

CAPTURE_KEY = "capture"
"""The record's key holding what the capture knows (model, time, latency, usage...)."""

_KEPT_PARAMS = ("max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k")


class NotStorable(Exception):
    """The exchange does not make an example (an error, an empty answer...); says why."""


@dataclass(frozen=True)
class Exchange:
    """One request and its response as they passed through the proxy; no headers kept."""

    api: Api
    path: str
    request_body: bytes
    status: int
    response_body: bytes
    content_type: str = "application/json"
    content_encoding: str = ""
    request_encoding: str = ""
    started_at: float = 0.0
    """Wall-clock time the request arrived (seconds since the epoch)."""
    latency_ms: float = 0.0
    """From the request read to the last byte of the answer."""
    ttfb_ms: float = 0.0
    """From the request read to the first byte of the answer."""
    user_tag: str = ""


def to_record(exchange: Exchange) -> dict[str, Any]:
    """The exchange as `{"messages": [...], "capture": {...}}`; NotStorable if it is not one."""
    if not 200 <= exchange.status < 300:
        raise NotStorable(f"upstream answered {exchange.status}")
    request = _json_object(decode_body(exchange.request_body, exchange.request_encoding))
    body = decode_body(exchange.response_body, exchange.content_encoding)
    streamed = "text/event-stream" in exchange.content_type
    if exchange.api == "anthropic":
        reply = _anthropic_stream(body) if streamed else _json_object(body)
        messages, dropped = anthropic_request_messages(request)
        answer, output_kind = anthropic_answer(reply)
        usage = _anthropic_usage(reply.get("usage") or {})
        stop = reply.get("stop_reason")
    else:
        reply = _openai_stream(body) if streamed else _json_object(body)
        messages, dropped = openai_request_messages(request)
        answer, output_kind, stop = openai_answer(reply)
        usage = _openai_usage(reply.get("usage") or {})
    if not answer.strip():
        raise NotStorable("the answer is empty")
    meta = {
        "api": exchange.api,
        "model": str(reply.get("model") or request.get("model") or ""),
        "time": _iso(exchange.started_at),
        "latency_ms": round(exchange.latency_ms, 1),
        "ttfb_ms": round(exchange.ttfb_ms, 1),
        "usage": usage,
        "stream": streamed,
        "stop_reason": stop,
        "output": output_kind,
        "params": {key: request[key] for key in _KEPT_PARAMS if key in request},
        "tag": exchange.user_tag,
    }
    if dropped:
        meta["dropped"] = dropped
    return {"messages": [*messages, {"role": "assistant", "content": answer}], CAPTURE_KEY: meta}


def decode_body(data: bytes, encoding: str) -> bytes:
    """The body without its Content-Encoding (gzip, deflate; br when `brotli` is installed)."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return data
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompress(data, wbits=47)
    if encoding == "deflate":
        try:
            return zlib.decompress(data)
        except zlib.error:
            return zlib.decompress(data, wbits=-15)
    if encoding == "br":
        try:
            import brotli
        except ImportError as exc:
            raise NotStorable("the answer is brotli-compressed and brotli is missing") from exc
        return bytes(brotli.decompress(data))
    raise NotStorable(f"cannot read a {encoding!r}-encoded body")


def _json_object(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise NotStorable("the body is not JSON") from exc
    if not isinstance(value, dict):
        raise NotStorable("the body is not a JSON object")
    return value


def _json_value(text: str) -> Any:
    try:
        return json.loads(text) if text.strip() else {}
    except ValueError as exc:
        raise NotStorable("a streamed tool input is not JSON") from exc


def _iso(epoch: float) -> str:
    stamp = time.gmtime(epoch or time.time())
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", stamp)


def sse_events(body: bytes) -> Iterator[tuple[str, str]]:
    """(event name, data) for each server-sent event in a whole stream."""
    text = body.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n")
    for block in text.split("\n\n"):
        name, data = "message", []
        for line in block.split("\n"):
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
        if data:
            yield name, "\n".join(data)


# --- Anthropic Messages API ------------------------------------------------------------------


def anthropic_request_messages(request: Mapping[str, Any]) -> tuple[list[dict[str, Any]], dict]:
    """`system` + `messages` as OpenAI-chat messages; counts of the non-text blocks left out."""
    dropped: dict[str, int] = {}
    messages: list[dict[str, Any]] = []
    system = _blocks_text(request.get("system"), dropped)
    if system:
        messages.append({"role": "system", "content": system})
    for message in request.get("messages") or []:
        if not isinstance(message, Mapping):
            raise NotStorable("a request message is not an object")
        content = _blocks_text(message.get("content"), dropped)
        messages.append({"role": str(message.get("role", "user")), "content": content})
    if not any(m["role"] == "user" for m in messages):
        raise NotStorable("the request has no user message")
    return messages, dropped


def _blocks_text(content: Any, dropped: dict[str, int]) -> str:
    """The text of a string or of a list of content blocks (text, tool results, tool calls)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts = []
    for block in content:
        kind = block.get("type") if isinstance(block, Mapping) else None
        if kind == "text":
            parts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            parts.append(json.dumps(block.get("input"), ensure_ascii=False))
        elif kind == "tool_result":
            parts.append(_blocks_text(block.get("content"), dropped))
        else:
            dropped[str(kind)] = dropped.get(str(kind), 0) + 1
    return "\n\n".join(part for part in parts if part)


def anthropic_answer(reply: Mapping[str, Any]) -> tuple[str, str]:
    """The answer's text and its kind: "text", or "tool_use:NAME" for a tool call's input."""
    blocks = [b for b in reply.get("content") or [] if isinstance(b, Mapping)]
    text = "".join(str(b.get("text", "")) for b in blocks if b.get("type") == "text")
    if text.strip():
        return text, "text"
    tools = [b for b in blocks if b.get("type") == "tool_use"]
    if not tools:
        return "", "text"
    inputs = [b.get("input") for b in tools]
    value = inputs[0] if len(inputs) == 1 else inputs
    return json.dumps(value, ensure_ascii=False), f"tool_use:{tools[0].get('name', '')}"


def _anthropic_stream(body: bytes) -> dict[str, Any]:
    """Rebuild the final message from a Messages API event stream."""
    message: dict[str, Any] = {"content": [], "usage": {}}
    partial_json: dict[int, str] = {}
    for name, data in sse_events(body):
        event = _json_object(data.encode())
        kind = event.get("type", name)
        if kind == "error":
            raise NotStorable("the stream ended with an error")
        if kind == "message_start":
            start = event.get("message") or {}
            message.update({k: v for k, v in start.items() if k not in ("content", "usage")})
            message["usage"].update(start.get("usage") or {})
        elif kind == "content_block_start":
            message["content"].append(dict(event.get("content_block") or {}))
        elif kind == "content_block_delta":
            _apply_delta(message["content"], event, partial_json)
        elif kind == "message_delta":
            message.update(event.get("delta") or {})
            message["usage"].update(event.get("usage") or {})
    for index, text in partial_json.items():
        if index < len(message["content"]):
            message["content"][index]["input"] = _json_value(text)
    if "model" not in message:
        raise NotStorable("the stream has no message_start")
    return message


def _apply_delta(blocks: list[dict[str, Any]], event: Mapping[str, Any], partial: dict) -> None:
    index = int(event.get("index", len(blocks) - 1))
    if not 0 <= index < len(blocks):
        return
    delta = event.get("delta") or {}
    if delta.get("type") == "text_delta":
        blocks[index]["text"] = blocks[index].get("text", "") + str(delta.get("text", ""))
    elif delta.get("type") == "input_json_delta":
        partial[index] = partial.get(index, "") + str(delta.get("partial_json", ""))


def _anthropic_usage(usage: Mapping[str, Any]) -> dict[str, int]:
    keys = (
        "input_tokens",
        "output_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
    )
    return {key: int(usage[key]) for key in keys if isinstance(usage.get(key), int)}


# --- OpenAI chat completions -----------------------------------------------------------------


def openai_request_messages(request: Mapping[str, Any]) -> tuple[list[dict[str, Any]], dict]:
    """The request's messages with text content; counts of the non-text parts left out."""
    dropped: dict[str, int] = {}
    messages: list[dict[str, Any]] = []
    for message in request.get("messages") or []:
        if not isinstance(message, Mapping):
            raise NotStorable("a request message is not an object")
        role = str(message.get("role", "user"))
        role = "system" if role == "developer" else role
        content = _parts_text(message.get("content"), dropped)
        if role == "assistant" and not content and message.get("tool_calls"):
            content = _tool_calls_text(message["tool_calls"])
        messages.append({"role": role, "content": content})
    if not any(m["role"] == "user" for m in messages):
        raise NotStorable("the request has no user message")
    return messages, dropped


def _parts_text(content: Any, dropped: dict[str, int]) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for part in content if isinstance(content, list) else []:
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind == "text":
            parts.append(str(part.get("text", "")))
        else:
            dropped[str(kind)] = dropped.get(str(kind), 0) + 1
    return "\n\n".join(p for p in parts if p)


def _tool_calls_text(calls: Any) -> str:
    arguments = [
        (call.get("function") or {}).get("arguments", "")
        for call in calls
        if isinstance(call, Mapping)
    ]
    return arguments[0] if len(arguments) == 1 else json.dumps(arguments, ensure_ascii=False)


def openai_answer(reply: Mapping[str, Any]) -> tuple[str, str, Any]:
    """The first choice's text (or tool-call arguments), its kind and its finish reason."""
    choices = reply.get("choices") or []
    if not choices or not isinstance(choices[0], Mapping):
        return "", "text", None
    choice = choices[0]
    message = choice.get("message") or {}
    text = message.get("content")
    if isinstance(text, list):
        text = _parts_text(text, {})
    if isinstance(text, str) and text.strip():
        return text, "text", choice.get("finish_reason")
    calls = message.get("tool_calls") or []
    if calls:
        name = (calls[0].get("function") or {}).get("name", "")
        return _tool_calls_text(calls), f"tool_call:{name}", choice.get("finish_reason")
    return "", "text", choice.get("finish_reason")


def _openai_stream(body: bytes) -> dict[str, Any]:
    """Rebuild a chat completion (first choice) from its chunk stream."""
    reply: dict[str, Any] = {}
    text: list[str] = []
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for _, data in sse_events(body):
        if data.strip() == "[DONE]":
            break
        chunk = _json_object(data.encode())
        if "error" in chunk:
            raise NotStorable("the stream ended with an error")
        reply["model"] = chunk.get("model", reply.get("model"))
        if chunk.get("usage"):
            reply["usage"] = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str):
                text.append(delta["content"])
            for call in delta.get("tool_calls") or []:
                slot = calls.setdefault(int(call.get("index", 0)), {"name": "", "arguments": ""})
                function = call.get("function") or {}
                slot["name"] += function.get("name") or ""
                slot["arguments"] += function.get("arguments") or ""
            finish = choice.get("finish_reason") or finish
    message: dict[str, Any] = {"role": "assistant", "content": "".join(text)}
    if calls:
        message["tool_calls"] = [{"function": calls[i]} for i in sorted(calls)]
    reply["choices"] = [{"index": 0, "message": message, "finish_reason": finish}]
    return reply


def _openai_usage(usage: Mapping[str, Any]) -> dict[str, int]:
    names = {"prompt_tokens": "input_tokens", "completion_tokens": "output_tokens"}
    return {new: int(usage[old]) for old, new in names.items() if isinstance(usage.get(old), int)}
