"""The old pipeline's outputs: stored answers, or fresh calls to Claude, an OpenAI-compatible
endpoint or a shell command, each timed, with its tokens.

Fresh calls run concurrently (at most `concurrency` at once). Paid ones (Claude, HTTP) are cached
by how they were made, so a repeated eval does not pay for them again. A failed call becomes the
item's error; a refused Anthropic key stops the eval (:class:`JudgeFatal`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any, Protocol

from workbench.data.store import estimate_tokens
from workbench.evaluate.cache import ResultCache, content_key
from workbench.evaluate.evalset import EvalItem, Message
from workbench.evaluate.generate import Generation
from workbench.evaluate.judge import JudgeFatal, describe_api_error, fatal_reason
from workbench.evaluate.spec import EvalError, EvalSpec

if TYPE_CHECKING:
    import httpx
    from anthropic import AsyncAnthropic

RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


class Baseline(Protocol):
    """Produces the old pipeline's answer to an eval item."""

    kind: str

    async def generate(self, item: EvalItem) -> Generation:
        """The answer, or a Generation with `error` set."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


def baseline_turns(item: EvalItem, prompt: str) -> tuple[str, list[Message]]:
    """(system prompt, the other turns): the old pipeline's full prompt replaces the example's
    own system message when it is set."""
    turns = [dict(m) for m in item.messages if m.get("role") != "system"]
    return (prompt or item.system_prompt), turns


def _from_cache(cache: ResultCache, key: str) -> Generation | None:
    hit = cache.get(key)
    return replace(Generation(**hit), cached=True) if hit else None


def _remember(cache: ResultCache, key: str, generation: Generation) -> None:
    if generation.ok:
        cache.put(key, "baseline", asdict(replace(generation, cached=False)))


class StoredBaseline:
    """The answers the old pipeline produced, as stored in the examples (tokens estimated)."""

    kind = "stored"

    async def generate(self, item: EvalItem) -> Generation:
        if not item.reference.strip():
            return Generation(
                error=f"example {item.example_id} has no stored answer: pick a fresh baseline "
                "(claude, http or cmd) or fix the example"
            )
        return Generation(
            text=item.reference,
            latency_s=item.stored_latency_s,
            input_tokens=estimate_tokens(item.system_prompt + item.input_text),
            output_tokens=estimate_tokens(item.reference),
            estimated=True,
        )

    async def aclose(self) -> None:
        return None


class ClaudeBaseline:
    """A fresh call to Claude with the original full prompt."""

    kind = "claude"

    def __init__(self, client: AsyncAnthropic, spec: EvalSpec, cache: ResultCache) -> None:
        self.client = client
        self.spec = spec
        self.cache = cache
        self.semaphore = asyncio.Semaphore(spec.concurrency)

    async def generate(self, item: EvalItem) -> Generation:
        system, turns = baseline_turns(item, self.spec.baseline_prompt)
        params: dict[str, Any] = {
            "model": self.spec.baseline_model,
            "max_tokens": self.spec.max_tokens,
            "messages": turns,
        }
        if system:
            params["system"] = system
        key = content_key("baseline-claude", params)
        if (hit := _from_cache(self.cache, key)) is not None:
            return hit
        async with self.semaphore:
            generation = await self._call(params)
        _remember(self.cache, key, generation)
        return generation

    async def _call(self, params: dict[str, Any]) -> Generation:
        import anthropic

        started = time.perf_counter()
        try:
            message = await self.client.messages.create(**params)
        except anthropic.APIError as exc:
            if (reason := fatal_reason(exc, self.spec.api_key_env)) is not None:
                raise JudgeFatal(reason.replace("judge's", "old pipeline's")) from exc
            return Generation(
                error=f"old pipeline (claude): {describe_api_error(exc, self.spec.max_retries)}"
            )
        text = "".join(b.text for b in message.content if getattr(b, "type", "") == "text")
        return Generation(
            text=text,
            latency_s=time.perf_counter() - started,
            input_tokens=message.usage.input_tokens,
            output_tokens=message.usage.output_tokens,
        )

    async def aclose(self) -> None:
        return None


class HttpBaseline:
    """A fresh call to an OpenAI-compatible `/chat/completions` endpoint."""

    kind = "http"

    def __init__(self, spec: EvalSpec, cache: ResultCache) -> None:
        import httpx

        if not spec.baseline_url:
            raise EvalError("baseline http needs eval.baseline_url (e.g. http://host:8000/v1)")
        self.spec = spec
        self.cache = cache
        self.url = spec.baseline_url.rstrip("/") + "/chat/completions"
        self.semaphore = asyncio.Semaphore(spec.concurrency)
        key = os.environ.get(spec.baseline_api_key_env, "") if spec.baseline_api_key_env else ""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.client: httpx.AsyncClient = httpx.AsyncClient(
            headers=headers, timeout=spec.request_timeout_s
        )

    async def generate(self, item: EvalItem) -> Generation:
        system, turns = baseline_turns(item, self.spec.baseline_prompt)
        messages = ([{"role": "system", "content": system}] if system else []) + turns
        body: dict[str, Any] = {
            "model": self.spec.baseline_model,
            "messages": messages,
            "max_tokens": self.spec.max_tokens,
        }
        key = content_key("baseline-http", self.url, body)
        if (hit := _from_cache(self.cache, key)) is not None:
            return hit
        async with self.semaphore:
            generation = await self._call(body)
        _remember(self.cache, key, generation)
        return generation

    async def _call(self, body: dict[str, Any]) -> Generation:
        """POST with retries on rate limits, server errors and timeouts (honouring
        retry-after); the latency includes them, as a user of the pipeline would wait."""
        import httpx

        started = time.perf_counter()
        problem = ""
        response_delay: float | None = None
        for attempt in range(self.spec.max_retries + 1):
            if attempt:
                await asyncio.sleep(_backoff(attempt, response_delay))
            response_delay = None
            try:
                response = await self.client.post(self.url, json=body)
            except httpx.TimeoutException:
                problem = f"timed out after {self.spec.request_timeout_s:g} s"
                continue
            except httpx.TransportError as exc:
                problem = f"cannot reach {self.url}: {exc}"
                continue
            if response.status_code in RETRY_STATUS:
                problem = f"HTTP {response.status_code}: {_short(response.text)}"
                response_delay = _retry_after(response)
                continue
            if response.status_code >= 400:
                return Generation(
                    error=self._error(f"HTTP {response.status_code}: {_short(response.text)}")
                )
            return _parse_chat(response, time.perf_counter() - started, self._error)
        return Generation(error=self._error(f"{problem} (after {self.spec.max_retries} retries)"))

    def _error(self, detail: str) -> str:
        return f"old pipeline (http): {detail}"

    async def aclose(self) -> None:
        await self.client.aclose()


def _short(text: str) -> str:
    return " ".join(text.split())[:200]


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds the server asks us to wait (`retry-after-ms` or `retry-after`), if any."""
    for header, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        with contextlib.suppress(TypeError, ValueError):
            return max(0.0, float(response.headers[header]) * scale)
    return None


def _backoff(attempt: int, asked: float | None) -> float:
    """The wait before retry number `attempt`: what the server asked, else exponential."""
    if asked is not None:
        return min(asked, 60.0)
    return min(0.5 * 2 ** (attempt - 1), 8.0) * (1 - 0.25 * random.random())


def _parse_chat(
    response: httpx.Response, latency: float, error: Callable[[str], str]
) -> Generation:
    """The answer and usage of an OpenAI chat completion."""
    try:
        data = response.json()
        text = data["choices"][0]["message"]["content"] or ""
    except (ValueError, KeyError, IndexError, TypeError):
        return Generation(error=error(f"not a chat completion: {_short(response.text)}"))
    usage = data.get("usage") or {}
    prompt_tokens, completion_tokens = usage.get("prompt_tokens"), usage.get("completion_tokens")
    return Generation(
        text=str(text),
        latency_s=latency,
        input_tokens=int(prompt_tokens or 0),
        output_tokens=int(completion_tokens or estimate_tokens(str(text))),
        estimated=completion_tokens is None,
    )


class CommandBaseline:
    """A shell command: the input's text on stdin, the answer on stdout.

    The old pipeline's prompt (eval.baseline_prompt, else the example's system message) is in
    the environment variable WORKBENCH_SYSTEM_PROMPT. Not cached across evals: the command is
    local and may change behind the same name.
    """

    kind = "cmd"

    def __init__(self, spec: EvalSpec) -> None:
        if not spec.baseline_command.strip():
            raise EvalError("baseline cmd needs eval.baseline_command (reads stdin, writes stdout)")
        self.spec = spec
        self.semaphore = asyncio.Semaphore(spec.concurrency)

    async def generate(self, item: EvalItem) -> Generation:
        system, _ = baseline_turns(item, self.spec.baseline_prompt)
        env = {**os.environ, "WORKBENCH_SYSTEM_PROMPT": system}
        async with self.semaphore:
            started = time.perf_counter()
            outcome = await self._run(item.input_text.encode("utf-8"), env)
            latency = time.perf_counter() - started
        if isinstance(outcome, str):
            return Generation(error=f"old pipeline (cmd): {outcome}")
        text = outcome.decode("utf-8", "replace").rstrip("\n")
        return Generation(
            text=text,
            latency_s=latency,
            input_tokens=estimate_tokens(system + item.input_text),
            output_tokens=estimate_tokens(text),
            estimated=True,
        )

    async def _run(self, stdin: bytes, env: dict[str, str]) -> bytes | str:
        """The command's stdout, or a one-line reason it failed."""
        process = await asyncio.create_subprocess_shell(
            self.spec.baseline_command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        try:
            out, err = await asyncio.wait_for(
                process.communicate(stdin), timeout=self.spec.request_timeout_s
            )
        except TimeoutError:
            await _kill(process)
            return f"timed out after {self.spec.request_timeout_s:g} s"
        except asyncio.CancelledError:
            await _kill(process)
            raise
        if process.returncode != 0:
            lines = err.decode("utf-8", "replace").strip().splitlines()
            last = lines[-1][:200] if lines else "no message on stderr"
            return f"`{self.spec.baseline_command}` exited with {process.returncode}: {last}"
        return out

    async def aclose(self) -> None:
        return None


async def _kill(process: asyncio.subprocess.Process) -> None:
    """Kill a command and everything it started (its own process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    await process.wait()


def make_baseline(
    spec: EvalSpec, cache: ResultCache, client: Callable[[], AsyncAnthropic]
) -> Baseline:
    """The baseline the spec asks for; `client` makes the Anthropic client when needed."""
    if spec.baseline == "claude":
        return ClaudeBaseline(client(), spec, cache)
    if spec.baseline == "http":
        return HttpBaseline(spec, cache)
    if spec.baseline == "cmd":
        return CommandBaseline(spec)
    return StoredBaseline()
