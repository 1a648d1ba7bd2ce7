"""A lean HTTP/1.1 client for the proxy's upstream side, on asyncio streams.

The proxy's whole cost sits on every request of the old pipeline, so its client does only what
forwarding needs: send the caller's request bytes as they are, read the status and headers,
then hand the body on piece by piece as it arrives. Connections are kept alive and pooled per
origin (TLS included); a pooled connection the server has meanwhile closed is retried once on
a fresh one. (A general client such as httpx costs several times more per request.)
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

READ_SIZE = 64 * 1024
IDLE_S = 20.0
"""Pooled connections idle for longer are closed rather than reused."""
MAX_IDLE_PER_ORIGIN = 256


class UpstreamError(Exception):
    """The upstream could not be reached or broke off; `timeout` when it was too slow."""

    def __init__(self, message: str, timeout: bool = False) -> None:
        super().__init__(message)
        self.timeout = timeout


@dataclass(frozen=True)
class Origin:
    """Scheme, host and port of an upstream URL."""

    scheme: str
    host: str
    port: int

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        return self.host if self.port == default else f"{self.host}:{self.port}"


def split_url(url: str) -> tuple[Origin, str]:
    """(origin, path with query) of an absolute http(s) URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UpstreamError(f"not an http(s) URL: {url}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return Origin(parts.scheme, parts.hostname, port), target


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    idle_since: float = field(default_factory=time.monotonic)
    reused: bool = False

    def usable(self) -> bool:
        fresh = time.monotonic() - self.idle_since < IDLE_S
        return fresh and not self.reader.at_eof() and not self.writer.is_closing()

    def close(self) -> None:
        self.writer.close()


class UpstreamResponse:
    """Status and headers of an answer; `body()` yields its bytes as they come."""

    def __init__(
        self,
        pool: UpstreamPool,
        origin: Origin,
        connection: _Connection,
        status: int,
        reason: str,
        headers: list[tuple[str, str]],
        bodyless: bool,
    ) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self._pool = pool
        self._origin = origin
        self._connection: _Connection | None = connection
        self._bodyless = bodyless
        self._complete = False
        self._reusable = not _has_token(headers, "connection", "close")

    def header(self, name: str, default: str = "") -> str:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), default)

    async def body(self) -> AsyncIterator[bytes]:
        """The body (without chunked framing) as it arrives: what each read brings, in one
        piece. UpstreamError if it is cut short or stalls for longer than the timeout."""
        assert self._connection is not None
        try:
            async for piece in self._pieces(self._connection.reader):
                yield piece
        except (ConnectionError, asyncio.IncompleteReadError, OSError) as exc:
            raise UpstreamError(f"the upstream broke off the answer: {exc!r}") from exc
        except ValueError as exc:
            raise UpstreamError(f"the upstream sent a malformed body: {exc}") from exc
        except TimeoutError as exc:
            raise UpstreamError("the upstream stopped sending", timeout=True) from exc
        self._complete = True

    async def _pieces(self, reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
        if self._bodyless:
            return
        length = self.header("content-length")
        chunked = _has_token(self.headers, "transfer-encoding", "chunked")
        decoder = ChunkedDecoder() if chunked else None
        remaining = int(length) if length.isdigit() and not chunked else -1
        self._reusable = self._reusable and (chunked or remaining >= 0)
        watchdog = _Watchdog(self._pool.timeout_s)
        async with asyncio.timeout(None) as deadline:
            while remaining != 0 and not (decoder and decoder.done):
                watchdog.rearm(deadline)
                data = await reader.read(READ_SIZE if remaining < 0 else min(remaining, READ_SIZE))
                if not data:
                    if remaining < 0 and decoder is None:
                        return  # the body ends when the server closes the connection
                    raise asyncio.IncompleteReadError(b"", None)
                if decoder is not None:
                    data = decoder.feed(data)
                else:
                    remaining -= len(data) if remaining > 0 else 0
                if data:
                    yield data

    async def close(self) -> None:
        """Give the connection back to the pool if the answer was read whole, else close it."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        if (self._complete or self._bodyless) and self._reusable:
            self._pool.release(self._origin, connection)
        else:
            connection.close()


class UpstreamPool:
    """Keep-alive connections to the upstream origins, and the requests sent over them."""

    def __init__(self, timeout_s: float = 600.0, connect_timeout_s: float = 15.0) -> None:
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self._idle: dict[Origin, list[_Connection]] = {}
        self._ssl: ssl.SSLContext | None = None

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            try:
                import certifi

                self._ssl = ssl.create_default_context(cafile=certifi.where())
            except ImportError:
                self._ssl = ssl.create_default_context()
        return self._ssl

    async def _connect(self, origin: Origin) -> _Connection:
        tls = self._ssl_context() if origin.scheme == "https" else None
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                reader, writer = await asyncio.open_connection(
                    origin.host, origin.port, ssl=tls, limit=READ_SIZE
                )
        except TimeoutError as exc:
            raise UpstreamError(f"connecting to {origin.host} timed out", timeout=True) from exc
        except OSError as exc:
            raise UpstreamError(f"cannot connect to {origin.host}:{origin.port}: {exc}") from exc
        return _Connection(reader, writer)

    def _take_idle(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin, [])
        while idle:
            connection = idle.pop()
            if connection.usable():
                connection.reused = True
                return connection
            connection.close()
        return None

    def release(self, origin: Origin, connection: _Connection) -> None:
        """Keep a connection whose answer was read whole, for the next request."""
        idle = self._idle.setdefault(origin, [])
        if len(idle) >= MAX_IDLE_PER_ORIGIN or not connection.usable():
            connection.close()
            return
        connection.idle_since = time.monotonic()
        idle.append(connection)

    async def request(
        self, method: str, url: str, headers: Sequence[tuple[str, str]], body: bytes
    ) -> UpstreamResponse:
        """Send a request and read the answer's head; the body is read through the response."""
        origin, target = split_url(url)
        head = _request_head(method, target, origin, headers, body)
        connection = self._take_idle(origin)
        if connection is not None:
            try:
                return await self._exchange(origin, connection, head, body, method)
            except _StaleConnection:
                pass  # the server closed the idle connection: try once on a fresh one
        connection = await self._connect(origin)
        try:
            return await self._exchange(origin, connection, head, body, method)
        except _StaleConnection as exc:
            raise UpstreamError(f"{origin.host} closed the connection without answering") from exc

    async def _exchange(
        self, origin: Origin, connection: _Connection, head: bytes, body: bytes, method: str
    ) -> UpstreamResponse:
        try:
            connection.writer.write(head + body)
            await connection.writer.drain()
            async with asyncio.timeout(self.timeout_s):
                status, reason, headers = await _read_head(connection.reader)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            connection.close()
            if connection.reused and not getattr(exc, "partial", b""):
                raise _StaleConnection from exc
            raise UpstreamError(f"{origin.host} broke off: {exc!r}") from exc
        except TimeoutError as exc:
            connection.close()
            raise UpstreamError(f"{origin.host} did not answer in time", timeout=True) from exc
        except (OSError, ValueError, asyncio.LimitOverrunError) as exc:
            connection.close()
            raise UpstreamError(f"{origin.host} sent something unreadable: {exc!r}") from exc
        bodyless = method == "HEAD" or status in (204, 304)
        return UpstreamResponse(self, origin, connection, status, reason, headers, bodyless)

    async def close(self) -> None:
        """Close every pooled connection."""
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
                with contextlib.suppress(Exception):
                    await connection.writer.wait_closed()
        self._idle.clear()


class _StaleConnection(Exception):
    """A reused connection failed before any answer: the request was not taken."""


def _request_head(
    method: str, target: str, origin: Origin, headers: Sequence[tuple[str, str]], body: bytes
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {origin.host_header}"]
    lines += [f"{name}: {value}" for name, value in headers]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, str, list[tuple[str, str]]]:
    """Status, reason and headers of the final answer (interim 1xx answers skipped)."""
    while True:
        head = (await reader.readuntil(b"\r\n\r\n"))[:-4].decode("latin-1")
        status_line, *lines = head.split("\r\n")
        version, _, rest = status_line.partition(" ")
        if not version.startswith("HTTP/1."):
            raise ValueError(f"not an HTTP/1.x status line: {status_line[:60]!r}")
        code, _, reason = rest.partition(" ")
        status = int(code)
        headers = [(n.strip(), v.strip()) for n, _, v in (line.partition(":") for line in lines)]
        if status >= 200 or status == 101:
            return status, reason, headers


class ChunkedDecoder:
    """Undoes `Transfer-Encoding: chunked` incrementally: feed raw bytes, get the data."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._left = 0
        self._state = "size"
        self.done = False

    def feed(self, data: bytes) -> bytes:
        """The body bytes that `data` completes (b"" when it holds only framing)."""
        self._buffer += data
        out = bytearray()
        while self._step(out):
            pass
        return bytes(out)

    def _step(self, out: bytearray) -> bool:
        """Consume one element of framing or data; False when more input is needed."""
        buffer = self._buffer
        if self._state == "data":
            taken = buffer[: self._left]
            out += taken
            del buffer[: len(taken)]
            self._left -= len(taken)
            if self._left:
                return False
            self._state = "crlf"
            return True
        end = buffer.find(b"\r\n")
        if end < 0:
            if len(buffer) > 4096:
                raise ValueError("chunk framing line too long")
            return False
        line = bytes(buffer[:end])
        del buffer[: end + 2]
        if self._state == "crlf":
            if line:
                raise ValueError("missing CRLF after a chunk")
            self._state = "size"
        elif self._state == "size":
            self._left = int(line.split(b";", 1)[0].strip(), 16)
            self._state = "data" if self._left else "trailer"
        elif not line:  # the blank line after the (ignored) trailers
            self.done = True
            return False
        return True


class _Watchdog:
    """Re-arms a read deadline at most once a second (re-arming on every read costs more)."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._armed_at = -1e9

    def rearm(self, deadline: asyncio.Timeout) -> None:
        now = asyncio.get_running_loop().time()
        if now - self._armed_at >= 1.0:
            deadline.reschedule(now + self.timeout_s)
            self._armed_at = now


def _has_token(headers: Sequence[tuple[str, str]], name: str, token: str) -> bool:
    name = name.lower()
    return any(
        token in (t.strip().lower() for t in value.split(","))
        for key, value in headers
        if key.lower() == name
    )
