"""The capture proxy: the old pipeline points its base URL here instead of at its provider.

Each request is forwarded to the real provider with the caller's own headers (its key
included), and the response comes back unchanged: status, headers and body bytes, streamed
piece by piece as they arrive. Once the caller has its whole answer, a copy of the two bodies
(never the headers) goes to a sink that stores it off the request path, so storing can
neither slow the caller down nor fail its request.

Routes: `POST .../v1/messages` (Anthropic) and `POST .../chat/completions` (OpenAI) are
captured; anything else (`/v1/models`, token counting...) is forwarded without capturing.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from workbench.collect.http import HOP_BY_HOP, HttpServer, LoopThread, Request, ResponseWriter
from workbench.collect.pairs import Api, Exchange
from workbench.collect.settings import ANTHROPIC_URL, OPENAI_URL, TAG_HEADER, CaptureSettings
from workbench.collect.upstream import UpstreamError, UpstreamPool, UpstreamResponse

log = logging.getLogger(__name__)
__all__ = ["ANTHROPIC_URL", "OPENAI_URL", "CaptureProxy", "CaptureSettings", "serve_proxy"]

MAX_CAPTURE = 32 * 2**20
"""Bodies larger than this are passed through but not captured."""

_NOT_FORWARDED = HOP_BY_HOP | {"host", "content-length", "expect", TAG_HEADER}

Sink = Callable[[Exchange], None]


@dataclass
class ProxyStats:
    """Counters since the proxy started."""

    requests: int = 0
    captured: int = 0
    """Exchanges handed to the sink (2xx answers on a captured route)."""
    upstream_errors: int = 0
    """Answers with a 4xx/5xx status, passed back unchanged."""
    unreachable: int = 0
    """Requests the upstream never answered (the caller got a 502 or 504)."""
    by_api: dict[str, int] = field(default_factory=dict)


def route(request: Request) -> Api | None:
    """Which API a request speaks, when it is one the proxy captures."""
    if request.method != "POST":
        return None
    if request.path.endswith("/v1/messages"):
        return "anthropic"
    if request.path.endswith("/chat/completions"):
        return "openai"
    return None


class CaptureProxy:
    """Forwards requests upstream and hands captured exchanges to `sink`."""

    def __init__(self, settings: CaptureSettings, sink: Sink) -> None:
        self.settings = settings
        self.sink = sink
        self.stats = ProxyStats()
        self.server = HttpServer(self.handle, settings.host, settings.port)
        self._pool = UpstreamPool(settings.timeout_s)

    @property
    def url(self) -> str:
        return f"http://{self.settings.host}:{self.server.port}"

    async def start(self) -> int:
        """Listen; returns the port (OSError if it is taken)."""
        return await self.server.start()

    async def stop(self, grace: float = 10.0) -> None:
        """Stop listening; answers in flight get `grace` seconds to finish."""
        await self.server.stop(grace)
        await self._pool.close()

    def _upstream_url(self, request: Request, api: Api | None) -> str:
        if api is None:
            is_anthropic = request.header("anthropic-version") or request.header("x-api-key")
            api = "anthropic" if is_anthropic else "openai"
        base = self.settings.anthropic_url if api == "anthropic" else self.settings.openai_url
        return base.rstrip("/") + request.target

    async def handle(self, request: Request, response: ResponseWriter) -> None:
        """Forward one request and stream the answer back; capture it when it is one."""
        api = route(request)
        self.stats.requests += 1
        started_wall, started = time.time(), time.perf_counter()
        headers = [(k, v) for k, v in request.headers if k.lower() not in _NOT_FORWARDED]
        url = self._upstream_url(request, api)
        try:
            reply = await self._pool.request(request.method, url, headers, request.body)
        except UpstreamError as exc:
            await self._unreachable(response, api, 504 if exc.timeout else 502, str(exc))
            return
        try:
            body, ttfb = await self._relay(reply, response, started, keep=api is not None)
        finally:
            await reply.close()
        if reply.status >= 400:
            self.stats.upstream_errors += 1
        if api is None or body is None or not 200 <= reply.status < 300:
            return
        exchange = Exchange(
            api=api,
            path=request.path,
            request_body=request.body,
            status=reply.status,
            response_body=body,
            content_type=reply.header("content-type"),
            content_encoding=reply.header("content-encoding"),
            request_encoding=request.header("content-encoding"),
            started_at=started_wall,
            latency_ms=(time.perf_counter() - started) * 1000,
            ttfb_ms=ttfb,
            user_tag=request.header(TAG_HEADER) or self.settings.default_tag,
        )
        self._capture(exchange)

    async def _relay(
        self, reply: UpstreamResponse, response: ResponseWriter, started: float, keep: bool
    ) -> tuple[bytes | None, float]:
        """Send the upstream's status, headers and body pieces on to the caller.

        Returns a copy of the body (None if not kept, too large or cut short) and the time to
        its first byte in milliseconds.
        """
        await response.start(reply.status, reply.headers, reply.reason)
        copy: bytearray | None = bytearray() if keep else None
        ttfb = 0.0
        try:
            async for piece in reply.body():
                ttfb = ttfb or (time.perf_counter() - started) * 1000
                await response.write(piece)
                if copy is not None:
                    copy += piece
                    if len(copy) > MAX_CAPTURE:
                        copy = None
        except UpstreamError as exc:
            log.warning("capture: %s", exc)
            response.keep_alive = False  # the caller sees a cut-short body, as it would upstream
            return None, ttfb
        await response.end()
        return (bytes(copy) if copy is not None else None), ttfb

    def _capture(self, exchange: Exchange) -> None:
        """Hand the exchange to the sink; a failing sink never fails the request."""
        try:
            self.sink(exchange)
        except Exception:
            log.exception("capture: the sink refused an exchange")
            return
        self.stats.captured += 1
        self.stats.by_api[exchange.api] = self.stats.by_api.get(exchange.api, 0) + 1

    async def _unreachable(
        self, response: ResponseWriter, api: Api | None, status: int, message: str
    ) -> None:
        """Answer for an upstream that did not: the API's own error shape, status 502/504."""
        self.stats.unreachable += 1
        log.warning("capture: %s", message)
        text = f"workbench capture proxy: {message}"
        body: dict[str, Any]
        if api == "anthropic":
            body = {"type": "error", "error": {"type": "api_error", "message": text}}
        else:
            body = {"error": {"message": text, "type": "proxy_error", "code": status}}
        await response.send(
            status, [("Content-Type", "application/json")], json.dumps(body).encode()
        )


@contextlib.contextmanager
def serve_proxy(settings: CaptureSettings, sink: Sink) -> Iterator[CaptureProxy]:
    """Run a proxy on a background event loop while the block runs (scripts and tests; the
    capture job uses `workbench.collect.capture.capture`)."""
    loop = LoopThread("capture-proxy")
    proxy = CaptureProxy(settings, sink)
    try:
        loop.run(proxy.start(), timeout=30)
        yield proxy
    finally:
        with contextlib.suppress(Exception):
            loop.run(proxy.stop(grace=2), timeout=15)
        loop.close()
