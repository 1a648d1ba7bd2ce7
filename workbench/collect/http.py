"""A small HTTP/1.1 server on asyncio streams: just what the capture proxy needs.

Requests are read whole (bodies are JSON, bounded by `max_body`); responses are written as a
head followed by the body, either with a Content-Length or chunked as it arrives (streaming).
Connections are kept alive between requests, as HTTP clients and SDKs expect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import TypeVar

log = logging.getLogger(__name__)

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
"""Headers that describe one connection, never forwarded by a proxy (RFC 9110, 7.6.1)."""

MAX_HEAD = 64 * 1024
"""Longest request head (request line and headers) accepted."""
MAX_HEADERS = 200

Headers = list[tuple[str, str]]
T = TypeVar("T")


class BadRequest(Exception):
    """The bytes on the connection are not an HTTP request we can serve; `status` says why."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Request:
    """One HTTP request, its body read in full."""

    method: str
    target: str
    version: str
    headers: Headers
    body: bytes

    @property
    def path(self) -> str:
        """The target without its query string."""
        return self.target.split("?", 1)[0]

    def header(self, name: str, default: str = "") -> str:
        """The first value of header `name` (case-insensitive)."""
        name = name.lower()
        return next((value for key, value in self.headers if key.lower() == name), default)

    @property
    def keep_alive(self) -> bool:
        """Whether the client wants the connection kept open after this request."""
        tokens = {t.strip().lower() for t in self.header("connection").split(",")}
        if self.version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens


Handler = Callable[[Request, "ResponseWriter"], Awaitable[None]]


async def read_request(
    reader: asyncio.StreamReader, max_body: int, writer: asyncio.StreamWriter | None = None
) -> Request | None:
    """The next request on the connection; None when the client closed it cleanly.

    With `writer`, a client that waits for `Expect: 100-continue` is told to go on."""
    head = await _read_head(reader)
    if not head:
        return None
    request_line, *lines = head.decode("latin-1").split("\r\n")
    parts = request_line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest("malformed request line")
    method, target, version = parts
    request = Request(method, target, version, parse_headers(lines), b"")
    if writer is not None and request.header("expect").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    body = await _read_body(reader, request, max_body)
    return Request(method, target, version, request.headers, body)


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    """The request line and headers (without the blank line); b"" at a clean end."""
    while True:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial.strip():
                raise BadRequest("connection closed in the middle of a request") from exc
            return b""
        except asyncio.LimitOverrunError as exc:
            raise BadRequest("request head too large", 431) from exc
        head = head.lstrip(b"\r\n")  # blank lines before a request are allowed (RFC 9112, 2.2)
        if head:
            return head[:-4]


def parse_headers(lines: Sequence[str]) -> Headers:
    """`Name: value` lines as (name, value) pairs; BadRequest for a malformed one."""
    if len(lines) > MAX_HEADERS:
        raise BadRequest("request head too large", 431)
    headers: Headers = []
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise BadRequest("malformed header line")
        headers.append((name, value.strip()))
    return headers


async def _read_line(reader: asyncio.StreamReader) -> bytes:
    try:
        return await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as exc:
        raise BadRequest("connection closed in the middle of a request") from exc
    except asyncio.LimitOverrunError as exc:
        raise BadRequest("chunk line too long") from exc


async def _read_body(reader: asyncio.StreamReader, request: Request, max_body: int) -> bytes:
    if "chunked" in request.header("transfer-encoding").lower():
        return await _read_chunked(reader, max_body)
    length_text = request.header("content-length", "0") or "0"
    if not length_text.isdigit():
        raise BadRequest("invalid Content-Length")
    length = int(length_text)
    if length > max_body:
        raise BadRequest(f"request body over {max_body} bytes", 413)
    try:
        return await reader.readexactly(length)
    except asyncio.IncompleteReadError as exc:
        raise BadRequest("connection closed in the request body") from exc


async def _read_chunked(reader: asyncio.StreamReader, max_body: int) -> bytes:
    body = bytearray()
    while True:
        size_line = await _read_line(reader)
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError as exc:
            raise BadRequest("malformed chunk size") from exc
        if size == 0:
            while (await _read_line(reader)).strip():  # trailers, ignored
                pass
            return bytes(body)
        if len(body) + size > max_body:
            raise BadRequest(f"request body over {max_body} bytes", 413)
        try:
            body += await reader.readexactly(size + 2)
        except asyncio.IncompleteReadError as exc:
            raise BadRequest("connection closed in a chunk") from exc
        del body[-2:]


class ResponseWriter:
    """Writes one response: `start` (status and headers), then `write` body pieces, `end`.

    Without a Content-Length the body goes out chunked (HTTP/1.1) or until the connection
    closes (HTTP/1.0), so a streamed body reaches the client piece by piece as it arrives.
    """

    def __init__(self, writer: asyncio.StreamWriter, request: Request) -> None:
        self._writer = writer
        self._request = request
        self._chunked = False
        self._head = b""
        self.started = False
        self.keep_alive = request.keep_alive

    async def start(
        self, status: int, headers: Iterable[tuple[str, str]], reason: str = ""
    ) -> None:
        """Send the status line and the headers (hop-by-hop ones are dropped)."""
        kept = [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP]
        has_length = any(k.lower() == "content-length" for k, _ in kept)
        bodyless = self._request.method == "HEAD" or status in (204, 304) or status < 200
        if not has_length and not bodyless:
            if self._request.version == "HTTP/1.0":
                self.keep_alive = False
            else:
                self._chunked = True
                kept.append(("Transfer-Encoding", "chunked"))
        kept.append(("Connection", "keep-alive" if self.keep_alive else "close"))
        reason = reason or _reason(status)
        head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in kept)
        self._head = head.encode("latin-1") + b"\r\n"  # sent with the first piece of body
        self.started = True

    async def write(self, data: bytes) -> None:
        """Send a piece of the body and wait until the client has taken it (backpressure)."""
        if not data:
            return
        if self._chunked:
            data = b"%x\r\n%b\r\n" % (len(data), data)
        self._writer.write(self._head + data if self._head else data)
        self._head = b""
        await self._writer.drain()

    async def end(self) -> None:
        """Finish the body."""
        tail = b"0\r\n\r\n" if self._chunked else b""
        self._writer.write(self._head + tail)
        self._head = b""
        await self._writer.drain()

    async def send(self, status: int, headers: Sequence[tuple[str, str]], body: bytes) -> None:
        """A whole response in one go."""
        await self.start(status, [*headers, ("Content-Length", str(len(body)))])
        self._writer.write(self._head + body)
        self._head = b""
        await self._writer.drain()


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


async def _refuse(writer: asyncio.StreamWriter, error: BadRequest) -> None:
    body = f"{error}\n".encode()
    head = (
        f"HTTP/1.1 {error.status} {_reason(error.status)}\r\nContent-Type: text/plain\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    with contextlib.suppress(ConnectionError):
        writer.write(head.encode("latin-1") + body)
        await writer.drain()


class HttpServer:
    """Serves `handler` on `host:port`; `stop` lets requests in flight finish first."""

    def __init__(self, handler: Handler, host: str, port: int, max_body: int = 64 * 2**20) -> None:
        self.handler = handler
        self.host = host
        self.port = port
        self.max_body = max_body
        self.in_flight = 0
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        """Listen (port 0: any free port); returns the port. OSError if it cannot bind."""
        self._server = await asyncio.start_server(
            self._on_connection, self.host, self.port, limit=MAX_HEAD
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self, grace: float = 10.0) -> None:
        """Stop listening, wait up to `grace` seconds for requests in flight, close the rest."""
        if self._server is not None:
            self._server.close()
        deadline = asyncio.get_running_loop().time() + grace
        while self.in_flight and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.wait(list(self._connections), timeout=2)

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        try:
            await self._serve(reader, writer)
        finally:
            if task is not None:
                self._connections.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve requests on one connection until either side closes it."""
        try:
            while await self._serve_one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """One request and its response; whether the connection stays open."""
        try:
            request = await read_request(reader, self.max_body, writer)
        except BadRequest as exc:
            await _refuse(writer, exc)
            return False
        if request is None:
            return False
        response = ResponseWriter(writer, request)
        self.in_flight += 1
        try:
            await self.handler(request, response)
        except (ConnectionError, asyncio.CancelledError):
            raise
        except Exception:
            log.exception("unexpected error serving %s %s", request.method, request.path)
            if not response.started:
                await _refuse(writer, BadRequest("internal error in the proxy", 500))
            return False
        finally:
            self.in_flight -= 1
        return response.keep_alive


class LoopThread:
    """An asyncio event loop in a daemon thread, for synchronous callers (jobs, tests, bench)."""

    def __init__(self, name: str = "workbench-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coro: Awaitable[T], timeout: float | None = None) -> T:
        """Run `coro` on the loop and wait for its result."""
        future = asyncio.run_coroutine_threadsafe(_as_coroutine(coro), self.loop)
        return future.result(timeout)

    def close(self) -> None:
        """Stop the loop and its thread."""
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self.loop.close()


async def _as_coroutine(awaitable: Awaitable[T]) -> T:
    return await awaitable
