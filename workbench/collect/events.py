"""What the capture and synth jobs report: small frozen events, one JSON object per line.

The engines (`capture.capture`, `synth.synthesize`) yield them; the job runner appends them to
the job's `events.jsonl`; readers turn lines back into events with `event_from_dict`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from workbench.events import EventCodec

FinalState = Literal["finished", "stopped", "failed"]


@dataclass(frozen=True)
class Listening:
    """The capture proxy is up: point the old pipeline's base URL at `url`."""

    type: ClassVar[str] = "listening"
    url: str
    anthropic_url: str
    openai_url: str


@dataclass(frozen=True)
class CaptureProgress:
    """Counters of the capture so far (sent when they change, at most once a second)."""

    type: ClassVar[str] = "progress"
    requests: int
    captured: int
    stored: int
    skipped: int
    failed: int
    upstream_errors: int
    unreachable: int
    pending: int


@dataclass(frozen=True)
class StoreFailed:
    """Captured examples could not be stored; the callers got their answers all the same."""

    type: ClassVar[str] = "store_failed"
    message: str


@dataclass(frozen=True)
class SynthStarted:
    """Generation begins (or resumes): the plan."""

    type: ClassVar[str] = "started"
    model: str
    count: int
    calls: int
    seeds: int
    topics: int
    done_calls: int = 0
    """Calls already made by an earlier attempt (resumed: not paid again)."""


@dataclass(frozen=True)
class SynthCall:
    """One request to Claude answered (or taken from the job's cache) and its examples queued."""

    type: ClassVar[str] = "call"
    index: int
    calls: int
    cached: bool
    generated: int
    added: int
    duplicates: int
    invalid: int
    cost_usd: float
    total_cost_usd: float
    total_added: int
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True)
class JobWarning:
    """Something to look at; the job goes on."""

    type: ClassVar[str] = "warning"
    message: str


@dataclass(frozen=True)
class JobError:
    """The job cannot go on; `message` says what happened and what to do."""

    type: ClassVar[str] = "error"
    message: str


@dataclass(frozen=True)
class JobFinished:
    """The last event of an attempt, with its totals."""

    type: ClassVar[str] = "finished"
    state: FinalState
    reason: str
    totals: dict[str, Any] = field(default_factory=dict)


CollectEvent = (
    Listening
    | CaptureProgress
    | StoreFailed
    | SynthStarted
    | SynthCall
    | JobWarning
    | JobError
    | JobFinished
)
CODEC = EventCodec[CollectEvent](
    Listening,
    CaptureProgress,
    StoreFailed,
    SynthStarted,
    SynthCall,
    JobWarning,
    JobError,
    JobFinished,
)
EVENT_TYPES = CODEC.types


def event_to_dict(event: CollectEvent) -> dict[str, Any]:
    """The JSON object written to `events.jsonl`."""
    return CODEC.to_dict(event)


def event_from_dict(data: Mapping[str, Any]) -> CollectEvent | None:
    """The event a log line holds; None for a line of another kind or shape."""
    return CODEC.from_dict(data)
