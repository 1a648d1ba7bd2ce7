"""What an evaluation reports: small frozen events, one JSON object per line in `events.jsonl`.

The engine (`workbench.evaluate.engine.run_eval`) yields them; the runner process appends them to
the eval's event log; readers (the Eval screen, `workbench eval`) turn the log back into events
with :func:`event_from_dict`. Per-item data (outputs, verdicts, reasons) is not in the events:
it is in `results.jsonl`, read through `workbench.evaluate.report.load_report`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from workbench.events import EventCodec

FinalState = Literal["finished", "stopped", "failed"]
Outcome = Literal["win", "tie", "loss"]


@dataclass(frozen=True)
class Phase:
    """What the eval is busy with (loading the model, generating, waiting for a batch...)."""

    type: ClassVar[str] = "phase"
    message: str


@dataclass(frozen=True)
class Started:
    """The eval begins (or resumes): `total` items, of which `todo` still need work."""

    type: ClassVar[str] = "started"
    eval_id: str
    total: int
    todo: int
    model: str
    baseline: str
    judge_model: str
    batch: bool = False


@dataclass(frozen=True)
class ItemJudged:
    """One item is done: its outcome for the fine-tuned model, or the error that stopped it."""

    type: ClassVar[str] = "item"
    index: int
    example_id: int
    outcome: Outcome | None
    """win / tie / loss for the fine-tuned model; None when `error` is set."""
    disagreed: bool = False
    """The two orders gave different verdicts (counted as a tie)."""
    identical: bool = False
    """Both outputs were identical: a tie without a judge call."""
    error: str = ""
    preview: str = ""
    """The start of the input, for a progress list."""


@dataclass(frozen=True)
class Progress:
    """Running totals after each item (a later one replaces an earlier one)."""

    type: ClassVar[str] = "progress"
    done: int
    total: int
    wins: int = 0
    ties: int = 0
    losses: int = 0
    errors: int = 0
    judge_calls: int = 0
    """Paid judge requests made by this eval (cached judgments are not calls)."""
    cached_judgments: int = 0
    """Judgments reused from the cache: paid by an earlier eval, free now."""
    judge_input_tokens: int = 0
    """All input tokens the judge read for this eval, prompt-cache writes and reads included."""
    judge_output_tokens: int = 0
    judge_cost_usd: float | None = None
    """None when the judge model has no price in `eval.prices`."""


@dataclass(frozen=True)
class BatchUpdate:
    """The state of a Message Batch the eval waits for."""

    type: ClassVar[str] = "batch"
    batch_id: str
    status: str
    processing: int
    succeeded: int
    errored: int


@dataclass(frozen=True)
class EvalWarning:
    """Something the user should know; the eval goes on."""

    type: ClassVar[str] = "warning"
    message: str


@dataclass(frozen=True)
class Finished:
    """The last event of an attempt: finished, stopped (resumable) or failed (with the reason)."""

    type: ClassVar[str] = "finished"
    state: FinalState
    reason: str
    done: int
    total: int


EvalEvent = Phase | Started | ItemJudged | Progress | BatchUpdate | EvalWarning | Finished
CODEC = EventCodec[EvalEvent](
    Phase, Started, ItemJudged, Progress, BatchUpdate, EvalWarning, Finished
)
EVENT_TYPES = CODEC.types


def event_to_dict(event: EvalEvent) -> dict[str, Any]:
    """The JSON object written to `events.jsonl` (with its `type`)."""
    return CODEC.to_dict(event)


def event_from_dict(raw: Mapping[str, Any]) -> EvalEvent | None:
    """An event read back from the log; None for a type this version does not know."""
    return CODEC.from_dict(raw)
