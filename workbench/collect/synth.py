"""Synthetic examples: Claude writes new ones from a few seeds, topics and the user's guidance.

Each call asks for a small batch as structured output (a JSON schema; or a forced
`submit_examples` tool call for older models). New examples are deduplicated against the whole
store (deleted ones included, so a rejected example is not brought back) and queued for review.
Every answer is cached in the job directory under the hash of its request, and each call records
whether its examples were stored: a resumed job pays only for the calls it has not made yet.

    for event in synthesize(spec, store, job_dir, cancel):
        ...
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from workbench.collect.events import (
    CollectEvent,
    JobError,
    JobFinished,
    JobWarning,
    SynthCall,
    SynthStarted,
)
from workbench.collect.sink import clean_tag
from workbench.config import atomic_write_text
from workbench.data.store import REVIEW_FLAG, Example, ExampleStore, Query, StoreError

if TYPE_CHECKING:
    from workbench.collect.dedupe import DuplicateIndex

DEFAULT_MODEL = "claude-sonnet-5-5"
SYNTHETIC_TAG = "synthetic"
SEED_TAG = "seed"
SOURCE = "synth"
META_KEY = "synth"
TOOL_NAME = "submit_examples"
CACHE_DIR = "cache"

PRICES_PER_MTOK: dict[str, tuple[float, float]] = {
    "claude-fable-5-2": (8.0, 40.0),
    "claude-fable-5-1": (10.0, 50.0),
    "claude-opus-5-5": (4.0, 20.0),
    "claude-opus-5": (5.0, 25.0),
    "claude-sonnet-5-5": (2.0, 10.0),
    "claude-sonnet-5": (2.0, 10.0),
    "claude-opus-4-6": (5.0, 25.0),
    "claude-sonnet-4-6": (3.0, 15.0),
    "claude-opus-4-5": (5.0, 25.0),
    "claude-sonnet-4-5": (3.0, 15.0),
    "claude-haiku-4-5": (1.0, 5.0),
}
"""USD per million input and output tokens (published list prices, November 2026), by model
id or its dated snapshot (`claude-sonnet-4-5-20250929`). Cache writes cost 1.25x the input
price, cache reads 0.1x. Another model: pass `price_per_mtok` (`--price IN OUT`)."""

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "examples": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "input": {"type": "string", "description": "the user's message"},
                    "output": {
                        "type": "string",
                        "description": "the ideal answer, in the seeds' format and style",
                    },
                },
                "required": ["input", "output"],
                "additionalProperties": False,
            },
        }
    },
    "required": ["examples"],
    "additionalProperties": False,
}
"""What every answer holds: `{"examples": [{"input": ..., "output": ...}, ...]}`."""

TOOL = {
    "name": TOOL_NAME,
    "description": "Submit the new training examples, one object per example.",
    "input_schema": SCHEMA,
}

OutputMode = Literal["schema", "tool"]
"""How the answer is made structured: "schema", structured outputs (`output_config.format`,
Claude 4.5 and later); "tool", a forced `submit_examples` tool call (older models; Claude
Sonnet 5.5 refuses forced tool use)."""


class SynthError(Exception):
    """Generation cannot start or go on; the message says what to do."""


@dataclass(frozen=True)
class SynthSpec:
    """Everything a generation job needs, frozen when it starts so a resume asks the same."""

    seeds: list[list[dict[str, Any]]]
    """The seed conversations (copied from the store when the job was created)."""
    count: int = 50
    """How many new examples to add to the review queue."""
    per_call: int = 5
    topics: list[str] = field(default_factory=list)
    guidance: str = ""
    model: str = DEFAULT_MODEL
    output_mode: OutputMode = "schema"
    max_tokens: int = 8192
    max_cost_usd: float | None = None
    """Stop (resumable) once this much has been spent."""
    price_per_mtok: tuple[float, float] | None = None
    """USD per million input and output tokens; None: from the built-in table."""
    near_duplicate_threshold: float = 0.9
    api_key_env: str = "ANTHROPIC_API_KEY"
    job_id: str = ""

    @property
    def planned_calls(self) -> int:
        return math.ceil(self.count / self.per_call)

    @property
    def max_calls(self) -> int:
        """Calls allowed in all, when duplicates make more than the planned ones necessary."""
        return self.planned_calls * 2 + 1


def spec_from_dict(data: Mapping[str, Any]) -> SynthSpec:
    """The spec saved in a job's `job.json`."""
    values = dict(data)
    if values.get("price_per_mtok") is not None:
        values["price_per_mtok"] = tuple(values["price_per_mtok"])
    names = set(SynthSpec.__dataclass_fields__)
    return SynthSpec(**{k: v for k, v in values.items() if k in names})


# --- seeds, prompts and prices ---------------------------------------------------------------


def select_seeds(store: ExampleStore, tag: str = SEED_TAG, limit: int = 8) -> list[Example]:
    """The seed examples: those tagged `tag`, else the first train examples, else any
    reviewed examples; never candidates still waiting for review."""
    tagged = [store.get(i) for i in store.ids(Query(tag=tag, flag="ok"))[:limit]]
    if tagged:
        return tagged
    for split in ("train", None):
        found = []
        for example in store.iter_examples(split=split):
            if example.flag == "ok":
                found.append(example)
            if len(found) >= limit:
                break
        if found:
            return found
    return []


def system_prompt(spec: SynthSpec) -> str:
    """The instructions and the seeds: the same for every call (and cached by the API)."""
    shown = "\n\n".join(
        f"<example>\n{_transcript(seed)}\n</example>" for seed in spec.seeds if seed
    )
    task_prompts = {m["content"] for s in spec.seeds for m in s if m.get("role") == "system"}
    parts = [
        "You write training examples for fine-tuning a small language model on one task.",
        "Here are examples of the task, written by people who know it well:",
        shown,
    ]
    if len(task_prompts) == 1:
        parts.append(f"The model will run with this system prompt:\n{next(iter(task_prompts))}")
    parts.append(
        "Each new example must be realistic and different from the seeds and from each other:"
        " vary the subject, length, tone and difficulty of the input. The output must be as"
        " good as the best seed and follow the seeds' format and style exactly."
    )
    if spec.guidance.strip():
        parts.append(f"Guidance from the user:\n{spec.guidance.strip()}")
    parts.append('Answer with {"examples": [{"input": ..., "output": ...}, ...]}.')
    return "\n\n".join(parts)


def _transcript(messages: Sequence[Mapping[str, Any]]) -> str:
    turns = [m for m in messages if m.get("role") in ("user", "assistant")]
    tags = {"user": "input", "assistant": "output"}
    return "\n".join(
        f"<{tags[m['role']]}>\n{m.get('content')}\n</{tags[m['role']]}>" for m in turns
    )


def user_prompt(spec: SynthSpec, index: int, topic: str, recent: Sequence[str]) -> str:
    """What call `index` asks for: how many, on which topic, and what not to repeat."""
    lines = [f"Write {spec.per_call} new examples (batch {index + 1})."]
    if topic:
        lines.append(f"Topic of this batch: {topic}")
    if recent:
        lines.append("Inputs already written (do not repeat them or near copies):")
        lines += [f"- {line}" for line in recent]
    return "\n".join(lines)


def build_request(
    spec: SynthSpec, system: str, index: int, recent: Sequence[str]
) -> dict[str, Any]:
    """The keyword arguments of `messages.create` for call `index`."""
    topic = spec.topics[index % len(spec.topics)] if spec.topics else ""
    request: dict[str, Any] = {
        "model": spec.model,
        "max_tokens": spec.max_tokens,
        "system": [{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": user_prompt(spec, index, topic, recent)}],
    }
    if spec.output_mode == "tool":
        request["tools"] = [TOOL]
        request["tool_choice"] = {"type": "tool", "name": TOOL_NAME}
    else:
        request["output_config"] = {"format": {"type": "json_schema", "schema": SCHEMA}}
    return request


def request_hash(request: Mapping[str, Any]) -> str:
    """The cache key of a request: a hash of its canonical JSON."""
    canonical = json.dumps(request, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def price_of(model: str, override: tuple[float, float] | None = None) -> tuple[float, float] | None:
    """USD per million input and output tokens for `model`, or None when unknown."""
    if override is not None:
        return override
    return PRICES_PER_MTOK.get(re.sub(r"-\d{8}$", "", model))


def cost_usd(usage: Mapping[str, Any], price: tuple[float, float] | None) -> float:
    """What a call cost (0 when the price is unknown)."""
    if price is None:
        return 0.0
    per_in, per_out = price[0] / 1e6, price[1] / 1e6
    return (
        int(usage.get("input_tokens") or 0) * per_in
        + int(usage.get("cache_creation_input_tokens") or 0) * per_in * 1.25
        + int(usage.get("cache_read_input_tokens") or 0) * per_in * 0.1
        + int(usage.get("output_tokens") or 0) * per_out
    )


# --- the cache -------------------------------------------------------------------------------


def _cache_path(job_dir: Path, key: str) -> Path:
    return job_dir / CACHE_DIR / f"{key}.json"


def read_cached(job_dir: Path, key: str) -> dict[str, Any] | None:
    """A cached answer, or None (missing or unreadable: asked again)."""
    try:
        value = json.loads(_cache_path(job_dir, key).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) and "response" in value else None


def write_cached(job_dir: Path, key: str, entry: Mapping[str, Any]) -> None:
    path = _cache_path(job_dir, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(entry, ensure_ascii=False))


# --- the job ---------------------------------------------------------------------------------


def make_client(spec: SynthSpec) -> Any:
    """The Anthropic client: the key from the environment only; ANTHROPIC_BASE_URL honoured."""
    key = os.environ.get(spec.api_key_env, "")
    if not key:
        raise SynthError(
            f"set {spec.api_key_env} to your Anthropic API key (read from the environment only,"
            " never written to disk)"
        )
    import anthropic

    return anthropic.Anthropic(api_key=key, max_retries=4)


@dataclass
class _Totals:
    calls: int = 0
    paid_calls: int = 0
    cached_calls: int = 0
    added: int = 0
    duplicates: int = 0
    invalid: int = 0
    cost_usd: float = 0.0
    """Spent by this attempt (cached answers cost nothing again)."""
    job_cost_usd: float = 0.0
    """Spent by the job in all its attempts."""
    input_tokens: int = 0
    output_tokens: int = 0


def synthesize(
    spec: SynthSpec,
    store: ExampleStore,
    job_dir: Path,
    cancel: threading.Event,
    client: Any | None = None,
) -> Iterator[CollectEvent]:
    """Generate `spec.count` new candidates; safe to run again on the same `job_dir`."""
    if not spec.seeds:
        yield JobError("no seed examples: tag a few good ones `seed`, or import examples first")
        yield JobFinished("failed", "no seeds")
        return
    try:
        client = client or make_client(spec)
    except SynthError as exc:
        yield JobError(str(exc))
        yield JobFinished("failed", "no API key")
        return
    from workbench.collect.dedupe import index_store

    price = price_of(spec.model, spec.price_per_mtok)
    if price is None:
        yield JobWarning(f"no price known for {spec.model}: costs are recorded as 0")
    index = index_store(store, spec.near_duplicate_threshold)
    yield SynthStarted(
        spec.model,
        spec.count,
        spec.planned_calls,
        len(spec.seeds),
        len(spec.topics),
        done_calls=_done_calls(job_dir),
    )
    totals = _Totals()
    try:
        yield from _calls(spec, store, job_dir, cancel, client, price, index, totals)
    except SynthError as exc:
        yield JobError(str(exc))
        yield JobFinished("failed", str(exc), asdict(totals))
        return
    except (sqlite3.Error, StoreError) as exc:
        message = f"cannot store the examples ({exc}): resume once the store is writable"
        yield JobError(message + " (answers so far are cached, not paid again)")
        yield JobFinished("failed", message, asdict(totals))
        return
    yield _finish(spec, cancel, totals)


def _done_calls(job_dir: Path) -> int:
    folder = job_dir / CACHE_DIR
    return len(list(folder.glob("*.json"))) if folder.is_dir() else 0


def _finish(spec: SynthSpec, cancel: threading.Event, totals: _Totals) -> JobFinished:
    summary = asdict(totals)
    if totals.added >= spec.count:
        return JobFinished("finished", f"{totals.added} examples to review", summary)
    if cancel.is_set():
        return JobFinished("stopped", "stopped on request: resume to continue", summary)
    if spec.max_cost_usd is not None and totals.job_cost_usd >= spec.max_cost_usd:
        return JobFinished("stopped", f"the budget of ${spec.max_cost_usd:.2f} is spent", summary)
    return JobFinished(
        "finished", f"{totals.added} examples (the rest were duplicates or invalid)", summary
    )


def _calls(
    spec: SynthSpec,
    store: ExampleStore,
    job_dir: Path,
    cancel: threading.Event,
    client: Any,
    price: tuple[float, float] | None,
    index: DuplicateIndex,
    totals: _Totals,
) -> Iterator[SynthCall]:
    """One call after another until enough examples were added (or cancel, or budget)."""
    system = system_prompt(spec)
    recent: list[str] = []
    for number in range(spec.max_calls):
        if totals.added >= spec.count or cancel.is_set():
            return
        if spec.max_cost_usd is not None and totals.job_cost_usd >= spec.max_cost_usd:
            return
        request = build_request(spec, system, number, recent[-30:])
        key = request_hash(request)
        entry = read_cached(job_dir, key)
        cached = entry is not None
        if entry is None:
            entry = _ask(client, request, price)
            write_cached(job_dir, key, entry)
        examples = parse_examples(entry["response"])
        recent += [_first_line(e.get("input")) for e in examples if isinstance(e, Mapping)]
        if not entry.get("applied"):
            entry["result"] = _apply(spec, store, index, examples, entry, number, request)
            entry["applied"] = True
            write_cached(job_dir, key, entry)
        yield _account(spec, totals, number, cached, entry, len(examples))


def _ask(client: Any, request: Mapping[str, Any], price: tuple[float, float] | None) -> dict:
    """Call the API once; the answer and its cost, ready for the cache."""
    import anthropic

    try:
        message = client.messages.create(**request)
    except anthropic.AuthenticationError as exc:
        raise SynthError("the API key was refused: check ANTHROPIC_API_KEY") from exc
    except anthropic.RateLimitError as exc:
        raise SynthError("rate limited by the API: resume the job later") from exc
    except anthropic.APIStatusError as exc:
        raise SynthError(f"the API answered {exc.status_code}: {_api_message(exc)}") from exc
    except anthropic.APIConnectionError as exc:
        raise SynthError(f"cannot reach the Anthropic API ({exc}): resume the job later") from exc
    response = message.model_dump(mode="json")
    usage = response.get("usage") or {}
    return {
        "response": response,
        "cost_usd": cost_usd(usage, price),
        "time": time.time(),
        "applied": False,
    }


def _api_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
    return str(exc)


def parse_examples(response: Mapping[str, Any]) -> list[Any]:
    """The items of an answer (each should be an `input`/`output` object): from the JSON text
    of a structured output, or from the `submit_examples` tool call."""
    for block in response.get("content") or []:
        if block.get("type") == "tool_use" and block.get("name") == TOOL_NAME:
            return _items(block.get("input"))
        if block.get("type") == "text" and block.get("text", "").strip():
            try:
                return _items(json.loads(block["text"]))
            except ValueError:
                return []
    return []


def _items(value: Any) -> list[Any]:
    items = value.get("examples") if isinstance(value, Mapping) else None
    return list(items) if isinstance(items, list) else []


def _first_line(text: Any) -> str:
    return str(text).strip().split("\n", 1)[0][:100]


def _apply(
    spec: SynthSpec,
    store: ExampleStore,
    index: DuplicateIndex,
    examples: Sequence[Any],
    entry: Mapping[str, Any],
    number: int,
    request: Mapping[str, Any],
) -> dict[str, int]:
    """Dedupe one call's examples and add the new ones to the review queue."""
    records: list[dict[str, Any]] = []
    duplicates = invalid = 0
    share = entry["cost_usd"] / max(1, len(examples))
    topic = spec.topics[number % len(spec.topics)] if spec.topics else ""
    for item in examples:
        messages = _messages(spec, item)
        if messages is None:
            invalid += 1
            continue
        if index.find(messages) is not None:
            duplicates += 1
            continue
        index.add(("new", number, len(records)), messages)
        records.append({"messages": messages, META_KEY: _meta(spec, number, topic, share)})
    if records:
        tags = [SYNTHETIC_TAG, f"model:{clean_tag(spec.model)}"]
        if topic and (topic_tag := clean_tag(topic)):
            tags.append(f"topic:{topic_tag}")
        store.add_examples(
            records,
            source=SOURCE,
            label=f"synthesize {len(records)} example(s)",
            tags=tags,
            flag=REVIEW_FLAG,
        )
    return {"added": len(records), "duplicates": duplicates, "invalid": invalid}


def _messages(spec: SynthSpec, item: Any) -> list[dict[str, Any]] | None:
    """A generated pair as a conversation (with the seeds' system prompt, if they share one)."""
    if not isinstance(item, Mapping):
        return None
    given, answer = item.get("input"), item.get("output")
    if not isinstance(given, str) or not isinstance(answer, str):
        return None
    if not given.strip() or not answer.strip():
        return None
    systems = {m["content"] for s in spec.seeds for m in s if m.get("role") == "system"}
    head = [{"role": "system", "content": next(iter(systems))}] if len(systems) == 1 else []
    return [*head, {"role": "user", "content": given}, {"role": "assistant", "content": answer}]


def _meta(spec: SynthSpec, number: int, topic: str, cost: float) -> dict[str, Any]:
    return {
        "model": spec.model,
        "job": spec.job_id,
        "call": number,
        "topic": topic,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cost_usd": round(cost, 6),
    }


def _account(
    spec: SynthSpec, totals: _Totals, number: int, cached: bool, entry: Mapping, generated: int
) -> SynthCall:
    """Add one call to the totals; the progress event. A cached call costs nothing now."""
    result = entry.get("result") or {}
    usage = (entry["response"].get("usage")) or {}
    cost = 0.0 if cached else float(entry["cost_usd"])
    totals.calls += 1
    totals.cached_calls += cached
    totals.paid_calls += not cached
    totals.added += int(result.get("added", 0))
    totals.duplicates += int(result.get("duplicates", 0))
    totals.invalid += int(result.get("invalid", 0))
    totals.cost_usd += cost
    totals.job_cost_usd += float(entry["cost_usd"])
    if not cached:
        totals.input_tokens += int(usage.get("input_tokens") or 0)
        totals.output_tokens += int(usage.get("output_tokens") or 0)
    return SynthCall(
        index=number,
        calls=spec.planned_calls,
        cached=cached,
        generated=generated,
        added=int(result.get("added", 0)),
        duplicates=int(result.get("duplicates", 0)),
        invalid=int(result.get("invalid", 0)),
        cost_usd=round(cost, 6),
        total_cost_usd=round(totals.cost_usd, 6),
        total_added=totals.added,
        input_tokens=int(usage.get("input_tokens") or 0),
        output_tokens=int(usage.get("output_tokens") or 0),
    )
