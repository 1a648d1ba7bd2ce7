"""A local fake of the Anthropic Messages API (and Message Batches), served over real HTTP.

Tests drive the real `anthropic` SDK against it through `base_url` (or ANTHROPIC_BASE_URL):

    with fake_anthropic(prefer_longer()) as api:
        os.environ["ANTHROPIC_BASE_URL"] = api.base_url
        ...
        assert api.calls == 4

A *script* decides each reply from the request: a `Verdict` (a `record_verdict` tool call, or
a JSON text when the request asks for structured output), `Text` (a plain answer, e.g. for the
Claude baseline), `Status` (an HTTP error, with retry-after if given), `Slow` (wait, then reply:
longer than the client's timeout makes a timeout), or `Malformed` (a verdict with a bad winner,
or no verdict at all). It also serves an OpenAI-compatible `/v1/chat/completions` (replies
`Text` or `Status`) for the HTTP baseline.

The server listens on 127.0.0.1 on an ephemeral port, answers at most `max_requests` requests,
and stops itself after `lifetime_s` even if a test forgets to.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Verdict:
    """A well-formed `record_verdict` tool call."""

    winner: str = "A"
    reason: str = "scripted verdict"


@dataclass(frozen=True)
class Text:
    """A plain text answer."""

    text: str = "a fake answer"


@dataclass(frozen=True)
class Status:
    """An HTTP error (429, 500, 401...), with `retry-after` seconds when given."""

    code: int
    retry_after: float | None = None
    message: str = "scripted error"


@dataclass(frozen=True)
class Slow:
    """Wait `seconds`, then send `then`."""

    seconds: float
    then: Reply = field(default_factory=Verdict)


@dataclass(frozen=True)
class Malformed:
    """A tool call whose input breaks the schema (or, with `no_tool`, a text answer)."""

    input: dict[str, Any] = field(default_factory=lambda: {"verdict": "maybe"})
    no_tool: bool = False


Reply = Verdict | Text | Status | Slow | Malformed

_SLOT = {
    name: re.compile(rf"<{name}>\n(.*?)\n</{name}>", re.DOTALL)
    for name in ("task_input", "response_a", "response_b")
}


@dataclass(frozen=True)
class FakeRequest:
    """One request as the server saw it."""

    method: str
    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    number: int
    """1-based count of Messages requests (judge and baseline calls, batch items included)."""

    @property
    def is_judge(self) -> bool:
        """A judge request (a verdict tool or a JSON schema), not a baseline call."""
        return bool(self.body.get("tools")) or self.wants_json

    @property
    def wants_json(self) -> bool:
        """Structured output asked for (`output_config.format`): the verdict comes as JSON."""
        return bool((self.body.get("output_config") or {}).get("format"))

    def _slot(self, name: str) -> str:
        content = (self.body.get("messages") or [{}])[-1].get("content", "")
        text = content if isinstance(content, str) else json.dumps(content)
        match = _SLOT[name].search(text)
        return match.group(1) if match else ""

    @property
    def input_text(self) -> str:
        return self._slot("task_input")

    @property
    def response_a(self) -> str:
        return self._slot("response_a")

    @property
    def response_b(self) -> str:
        return self._slot("response_b")

    @property
    def system_text(self) -> str:
        system = self.body.get("system", "")
        if isinstance(system, list):
            return "\n".join(block.get("text", "") for block in system)
        return str(system)


Script = Callable[[FakeRequest], Reply]


# --- scripts ----------------------------------------------------------------------------------


def always(reply: Reply) -> Script:
    """The same reply to every request."""
    return lambda request: reply


def sequence(*replies: Reply, then: Reply | Script = Verdict()) -> Script:
    """Replies in request order; afterwards `then` (a reply or a script)."""
    lock = threading.Lock()
    remaining = list(replies)

    def script(request: FakeRequest) -> Reply:
        with lock:
            if remaining:
                return remaining.pop(0)
        return then(request) if callable(then) else then

    return script


def prefer(predicate: Callable[[str], bool], reason: str = "preferred") -> Script:
    """Judge: the slot whose text satisfies `predicate` wins (tie if both or neither);
    baseline calls get a Text."""

    def script(request: FakeRequest) -> Reply:
        if not request.is_judge:
            return Text(f"fresh answer to: {request.body['messages'][-1]['content'][:60]}")
        a, b = predicate(request.response_a), predicate(request.response_b)
        return Verdict("tie" if a == b else ("A" if a else "B"), reason)

    return script


def prefer_longer() -> Script:
    """Judge: the longer response wins (both orders agree, so no position bias)."""

    def script(request: FakeRequest) -> Reply:
        if not request.is_judge:
            return Text("fresh answer")
        a, b = len(request.response_a), len(request.response_b)
        return Verdict("tie" if a == b else ("A" if a > b else "B"), "longer")

    return script


# --- the server -------------------------------------------------------------------------------


class FakeAnthropic:
    """The running fake: its URL and everything it was asked."""

    def __init__(self, script: Script, delay_s: float, batch_polls: int, max_requests: int):
        self.script = script
        self.delay_s = delay_s
        self.batch_polls = batch_polls
        self.max_requests = max_requests
        self.requests: list[FakeRequest] = []
        self.batches: dict[str, dict[str, Any]] = {}
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.base_url = ""
        self._numbers = itertools.count(1)
        self._cached_prefixes: set[str] = set()

    # What tests assert on ---------------------------------------------------------------------

    @property
    def calls(self) -> int:
        """Messages API calls (POST /v1/messages), each retry counted."""
        return sum(1 for r in self.requests if r.method == "POST" and r.path == "/v1/messages")

    @property
    def judge_calls(self) -> int:
        return sum(
            1
            for r in self.requests
            if r.method == "POST" and r.path == "/v1/messages" and r.is_judge
        )

    @property
    def batch_items(self) -> int:
        """Requests answered inside Message Batches."""
        return sum(1 for r in self.requests if r.path == "batch-item")

    def paths(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.requests]

    def messages_requests(self) -> list[FakeRequest]:
        return [r for r in self.requests if r.method == "POST" and r.path == "/v1/messages"]

    # Serving -----------------------------------------------------------------------------------

    def record(
        self, method: str, path: str, body: dict[str, Any], headers: dict[str, str]
    ) -> FakeRequest:
        number = next(self._numbers) if path in ("/v1/messages", "batch-item") else 0
        request = FakeRequest(method, path, body, headers, number)
        with self.lock:
            self.requests.append(request)
        return request

    def reply_for(self, request: FakeRequest) -> Reply:
        reply = self.script(request)
        while isinstance(reply, Slow):
            self.stopping.wait(reply.seconds)
            reply = reply.then
        return reply

    def message_body(self, request: FakeRequest, reply: Reply) -> dict[str, Any]:
        """A Messages API response for a Verdict, Text or Malformed reply."""
        if isinstance(reply, Verdict) and request.wants_json:
            verdict = {"reason": reply.reason, "winner": reply.winner}
            content: list[dict[str, Any]] = [{"type": "text", "text": json.dumps(verdict)}]
        elif isinstance(reply, Verdict):
            content = [self._tool_use(reply.winner, reply.reason)]
        elif isinstance(reply, Malformed) and request.wants_json:
            text = "I prefer A." if reply.no_tool else json.dumps(reply.input)
            content = [{"type": "text", "text": text}]
        elif isinstance(reply, Malformed) and not reply.no_tool:
            content = [
                {
                    "type": "tool_use",
                    "id": "toolu_fake",
                    "name": "record_verdict",
                    "input": reply.input,
                }
            ]
        else:
            text = reply.text if isinstance(reply, Text) else "I think A is better."
            content = [{"type": "text", "text": text}]
        return {
            "id": f"msg_fake_{request.number}",
            "type": "message",
            "role": "assistant",
            "model": request.body.get("model", "claude-fake"),
            "content": content,
            "stop_reason": "tool_use" if content[0]["type"] == "tool_use" else "end_turn",
            "stop_sequence": None,
            "usage": self._usage(request, content),
        }

    @staticmethod
    def _tool_use(winner: str, reason: str) -> dict[str, Any]:
        return {
            "type": "tool_use",
            "id": "toolu_fake",
            "name": "record_verdict",
            "input": {"reason": reason, "winner": winner},
        }

    def _usage(self, request: FakeRequest, content: list[dict[str, Any]]) -> dict[str, int]:
        """Token counts (4 characters a token); a cache_control'd system prefix is written to
        the cache on first sight and read from it afterwards."""
        system = request.body.get("system")
        cached = ""
        if isinstance(system, list) and any("cache_control" in block for block in system):
            cached = request.system_text
        prefix_tokens = len(cached) // 4
        rest = len(json.dumps(request.body.get("messages", ""))) // 4
        with self.lock:
            seen = cached in self._cached_prefixes
            self._cached_prefixes.add(cached)
        return {
            "input_tokens": rest + (0 if cached else len(request.system_text) // 4),
            "output_tokens": len(json.dumps(content)) // 4,
            "cache_creation_input_tokens": 0 if seen else prefix_tokens,
            "cache_read_input_tokens": prefix_tokens if seen else 0,
        }


def _error_body(code: int, message: str) -> dict[str, Any]:
    kinds = {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        429: "rate_limit_error",
        529: "overloaded_error",
    }
    return {"type": "error", "error": {"type": kinds.get(code, "api_error"), "message": message}}


def _handler(api: FakeAnthropic) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return None

        def _send(
            self,
            code: int,
            body: Any,
            headers: dict[str, str] | None = None,
            raw: bytes | None = None,
        ) -> None:
            data = raw if raw is not None else json.dumps(body).encode()
            try:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("request-id", "req_fake")
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                value = json.loads(raw) if raw else {}
            except ValueError:
                value = {}
            return value if isinstance(value, dict) else {}

        def _reply_error(self, reply: Status) -> None:
            headers = {}
            if reply.retry_after is not None:
                headers["retry-after"] = f"{reply.retry_after:g}"
                headers["retry-after-ms"] = f"{reply.retry_after * 1000:g}"
            self._send(reply.code, _error_body(reply.code, reply.message), headers)

        def do_POST(self) -> None:
            body = self._body()
            headers = {k.lower(): v for k, v in self.headers.items()}
            path = self.path.split("?")[0]
            if len(api.requests) >= api.max_requests or api.stopping.is_set():
                self._send(503, _error_body(503, "the fake server is done"))
                return
            request = api.record("POST", path, body, headers)
            if path == "/v1/messages":
                self._messages(request)
            elif path == "/v1/messages/batches":
                self._create_batch(request)
            elif path == "/v1/chat/completions":
                self._chat(request)
            else:
                self._send(404, _error_body(404, f"no route {path}"))

        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            api.record("GET", path, {}, {k.lower(): v for k, v in self.headers.items()})
            match = re.fullmatch(r"/v1/messages/batches/([\w-]+)(/results)?", path)
            if not match or match.group(1) not in api.batches:
                self._send(404, _error_body(404, f"no batch at {path}"))
                return
            batch = api.batches[match.group(1)]
            if match.group(2):
                lines = [json.dumps(line) for line in batch["results"]]
                self._send(200, None, raw=("\n".join(lines) + "\n").encode())
                return
            batch["polls"] += 1
            self._send(200, self._batch_object(batch))

        def _messages(self, request: FakeRequest) -> None:
            if api.delay_s:
                api.stopping.wait(api.delay_s)
            reply = api.reply_for(request)
            if isinstance(reply, Status):
                self._reply_error(reply)
            else:
                self._send(200, api.message_body(request, reply))

        def _chat(self, request: FakeRequest) -> None:
            if api.delay_s:
                api.stopping.wait(api.delay_s)
            reply = api.reply_for(request)
            if isinstance(reply, Status):
                self._reply_error(reply)
                return
            text = reply.text if isinstance(reply, Text) else "fake"
            self._send(
                200,
                {
                    "id": "chatcmpl-fake",
                    "object": "chat.completion",
                    "model": request.body.get("model"),
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "message": {"role": "assistant", "content": text},
                        }
                    ],
                    "usage": {
                        "prompt_tokens": 11,
                        "completion_tokens": len(text.split()),
                        "total_tokens": 11 + len(text.split()),
                    },
                },
            )

        def _create_batch(self, request: FakeRequest) -> None:
            batch_id = f"msgbatch_fake_{len(api.batches) + 1}"
            results = []
            for entry in request.body.get("requests", []):
                item = api.record("POST", "batch-item", entry["params"], {})
                reply = api.reply_for(item)
                if isinstance(reply, Status):
                    result = {"type": "errored", "error": _error_body(reply.code, reply.message)}
                else:
                    result = {"type": "succeeded", "message": api.message_body(item, reply)}
                results.append({"custom_id": entry["custom_id"], "result": result})
            api.batches[batch_id] = {
                "id": batch_id,
                "results": results,
                "polls": 0,
                "created": time.time(),
            }
            self._send(200, self._batch_object(api.batches[batch_id]))

        def _batch_object(self, batch: dict[str, Any]) -> dict[str, Any]:
            ended = batch["polls"] >= api.batch_polls
            results = batch["results"]
            errored = sum(1 for r in results if r["result"]["type"] == "errored")
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(batch["created"]))
            return {
                "id": batch["id"],
                "type": "message_batch",
                "processing_status": "ended" if ended else "in_progress",
                "request_counts": {
                    "processing": 0 if ended else len(results),
                    "succeeded": len(results) - errored if ended else 0,
                    "errored": errored if ended else 0,
                    "canceled": 0,
                    "expired": 0,
                },
                "created_at": stamp,
                "expires_at": stamp,
                "ended_at": stamp if ended else None,
                "archived_at": None,
                "cancel_initiated_at": None,
                "results_url": f"{api.base_url}/v1/messages/batches/{batch['id']}/results"
                if ended
                else None,
            }

    return Handler


class _Server(ThreadingHTTPServer):
    request_queue_size = 128
    """Many clients connect at once (concurrency 16 and more): keep them all waiting."""
    daemon_threads = True


@contextmanager
def fake_anthropic(
    script: Script | Reply = Verdict(),
    *,
    delay_s: float = 0.0,
    batch_polls: int = 1,
    max_requests: int = 5000,
    lifetime_s: float = 300.0,
) -> Iterator[FakeAnthropic]:
    """Serve the fake on 127.0.0.1 (ephemeral port) for the duration of the block.

    `delay_s`: every Messages answer takes this long. `batch_polls`: a batch ends after this
    many status checks. The server refuses requests beyond `max_requests` and shuts itself
    down after `lifetime_s`.
    """
    api = FakeAnthropic(
        script if callable(script) else always(script), delay_s, batch_polls, max_requests
    )
    server = _Server(("127.0.0.1", 0), _handler(api))
    api.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    watchdog = threading.Timer(lifetime_s, api.stopping.set)
    watchdog.daemon = True
    watchdog.start()
    stopper = threading.Thread(target=lambda: (api.stopping.wait(), server.shutdown()), daemon=True)
    stopper.start()
    try:
        yield api
    finally:
        watchdog.cancel()
        api.stopping.set()
        stopper.join(timeout=5)
        server.server_close()
        thread.join(timeout=5)


# --- shared by the eval tests: the demo model as an f16 GGUF, built once per test session ----


def demo_gguf(tmp_path_factory: Any, demo_model_dir: Path) -> Path:
    """The demo model converted to f16 GGUF once for the whole session (xdist workers share
    it through a file lock). f16, because quantized GGUFs need repacking disabled on AMX CPUs."""
    from filelock import FileLock

    from workbench.export.convert import convert_to_gguf

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    path = shared / "eval-demo-model-f16.gguf"
    with FileLock(str(path) + ".lock"):
        if not path.is_file():
            convert_to_gguf(demo_model_dir, path, "f16")
    return path
