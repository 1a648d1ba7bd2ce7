"""What a training run reports: small frozen events, one JSON object per line in `events.jsonl`.

The engine (`workbench.train.engine.train`) yields them; the runner process appends them to the
run's event log; readers (the Train screen, `workbench runs follow`) turn the log back into
events with :func:`event_from_dict` and fold them into a :class:`RunHistory`. The event log *is*
the history: reopening a run replays it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from workbench.events import EventCodec

FinalState = Literal["finished", "stopped", "failed"]
WarningKind = Literal["overfitting", "memorizing", "data", "device", "backend"]
ErrorKind = Literal["nan_loss", "out_of_memory", "config", "data", "model", "crash"]


@dataclass(frozen=True)
class Phase:
    """What the run is busy with before or between steps (loading the model, tokenizing...)."""

    type: ClassVar[str] = "phase"
    message: str


@dataclass(frozen=True)
class Started:
    """Training begins (or begins again after a resume): the plan of the run."""

    type: ClassVar[str] = "started"
    backend: str
    base_model: str
    device: str
    total_steps: int
    train_examples: int
    val_examples: int
    train_tokens: int
    resumed_from_step: int = 0


@dataclass(frozen=True)
class Resumed:
    """The run continues from a checkpoint: later points in the log up to here are replaced."""

    type: ClassVar[str] = "resumed"
    from_step: int
    checkpoint: str


@dataclass(frozen=True)
class Step:
    """One optimizer step: the training curve."""

    type: ClassVar[str] = "step"
    step: int
    total_steps: int
    epoch: float
    loss: float
    learning_rate: float
    grad_norm: float | None = None
    tokens_per_s: float | None = None
    gpu_memory_gib: float | None = None
    """Peak GPU memory allocated so far (None on CPU)."""
    gpu_util: float | None = None
    """GPU utilization in percent, sampled from nvidia-smi (None on CPU or when unknown)."""
    elapsed_s: float = 0.0
    """Seconds since training (this attempt) began."""


@dataclass(frozen=True)
class Evaluated:
    """A validation pass: the eval-loss curve. `best` when it is the lowest so far."""

    type: ClassVar[str] = "eval"
    step: int
    eval_loss: float
    best: bool


@dataclass(frozen=True)
class CheckpointSaved:
    """An adapter was written: `kind` checkpoint (resumable) or best (lowest eval loss)."""

    type: ClassVar[str] = "checkpoint"
    step: int
    path: str
    kind: Literal["checkpoint", "best"] = "checkpoint"
    eval_loss: float | None = None


@dataclass(frozen=True)
class RunWarning:
    """Something the user should look at; the run goes on."""

    type: ClassVar[str] = "warning"
    kind: WarningKind
    message: str
    step: int | None = None


@dataclass(frozen=True)
class RunError:
    """The run cannot go on; `message` says what happened and what to do."""

    type: ClassVar[str] = "error"
    kind: ErrorKind
    message: str
    step: int | None = None


@dataclass(frozen=True)
class Finished:
    """The last event of an attempt: finished, stopped (resumable) or failed."""

    type: ClassVar[str] = "finished"
    state: FinalState
    reason: str
    step: int
    total_steps: int
    best_eval_loss: float | None = None
    best_step: int | None = None
    duration_s: float = 0.0


TrainEvent = (
    Phase
    | Started
    | Resumed
    | Step
    | Evaluated
    | CheckpointSaved
    | RunWarning
    | RunError
    | Finished
)
CODEC = EventCodec[TrainEvent](
    Phase,
    Started,
    Resumed,
    Step,
    Evaluated,
    CheckpointSaved,
    RunWarning,
    RunError,
    Finished,
    null_non_finite=True,
)
EVENT_TYPES = CODEC.types


def event_to_dict(event: TrainEvent) -> dict[str, Any]:
    """The JSON object written to `events.jsonl` (non-finite floats become null)."""
    return CODEC.to_dict(event)


def event_from_dict(data: Mapping[str, Any]) -> TrainEvent | None:
    """The event a log line holds; None for lines of another kind or shape (skipped by readers)."""
    return CODEC.from_dict(data)


@dataclass
class RunHistory:
    """A run's curves and notable events, folded from its event log (see :meth:`add`).

    A resume replays the steps after its checkpoint, so :class:`Resumed` drops the points
    recorded after that step: the curves continue where the checkpoint left them.
    """

    steps: list[Step] = field(default_factory=list)
    evals: list[Evaluated] = field(default_factory=list)
    checkpoints: list[CheckpointSaved] = field(default_factory=list)
    warnings: list[RunWarning] = field(default_factory=list)
    errors: list[RunError] = field(default_factory=list)
    started: Started | None = None
    finished: Finished | None = None
    phase: str = ""
    attempts: int = 0
    active_s: float = 0.0
    """Seconds the run has been working, over all its attempts (pauses between them excluded)."""
    _last_stamp: float | None = None

    def add(self, event: TrainEvent) -> None:
        """Fold one more event in."""
        if isinstance(event, Step):
            self.steps.append(event)
        elif isinstance(event, Evaluated):
            self.evals.append(event)
        elif isinstance(event, CheckpointSaved):
            self.checkpoints.append(event)
        elif isinstance(event, RunWarning):
            self.warnings.append(event)
        elif isinstance(event, RunError):
            self.errors.append(event)
        elif isinstance(event, Phase):
            self.phase = event.message
        else:
            self._add_lifecycle(event)

    def _add_lifecycle(self, event: TrainEvent) -> None:
        if isinstance(event, Started):
            self.started, self.finished = event, None
            self.attempts += 1
        elif isinstance(event, Resumed):
            self._rewind(event.from_step)
        elif isinstance(event, Finished):
            self.finished = event
            self.phase = ""

    def _rewind(self, step: int) -> None:
        self.steps = [point for point in self.steps if point.step <= step]
        self.evals = [point for point in self.evals if point.step <= step]
        self.finished = None

    def add_dicts(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Fold raw `events.jsonl` objects in (unknown or unreadable lines are skipped)."""
        for record in records:
            event = event_from_dict(record)
            stamp = record.get("time")
            if isinstance(stamp, int | float):
                self._clock(float(stamp), isinstance(event, Resumed))
            if event is not None:
                self.add(event)

    def _clock(self, stamp: float, new_attempt: bool) -> None:
        """Add the time since the previous event, unless a new attempt starts here."""
        if self._last_stamp is not None and not new_attempt:
            self.active_s += max(0.0, stamp - self._last_stamp)
        self._last_stamp = stamp

    @property
    def step(self) -> int:
        """The last step reached."""
        return self.steps[-1].step if self.steps else 0

    @property
    def total_steps(self) -> int:
        if self.steps:
            return self.steps[-1].total_steps
        return self.started.total_steps if self.started else 0

    @property
    def best(self) -> Evaluated | None:
        """The evaluation with the lowest eval loss."""
        return min(self.evals, key=lambda point: point.eval_loss, default=None)

    @property
    def last_loss(self) -> float | None:
        return self.steps[-1].loss if self.steps else None


def describe_event(event: TrainEvent) -> str:
    """One line of plain text for an event (the CLI's `runs follow`, a log pane)."""
    if isinstance(event, Step):
        parts = [
            f"step {event.step}/{event.total_steps}",
            f"loss {event.loss:.4f}",
            f"lr {event.learning_rate:.2e}",
        ]
        if event.grad_norm is not None:
            parts.append(f"grad norm {event.grad_norm:.3f}")
        if event.tokens_per_s is not None:
            parts.append(f"{event.tokens_per_s:,.0f} tokens/s")
        if event.gpu_memory_gib is not None:
            parts.append(f"{event.gpu_memory_gib:.2f} GiB")
        if event.gpu_util is not None:
            parts.append(f"GPU {event.gpu_util:.0f}%")
        return "  ".join(parts)
    if isinstance(event, Evaluated):
        return f"eval at step {event.step}: eval loss {event.eval_loss:.4f}" + (
            " (best so far)" if event.best else ""
        )
    return _describe_other(event)


def _describe_other(event: TrainEvent) -> str:
    if isinstance(event, CheckpointSaved):
        what = "best adapter" if event.kind == "best" else "checkpoint"
        return f"{what} saved at step {event.step}: {event.path}"
    if isinstance(event, RunWarning):
        return f"warning ({event.kind}): {event.message}"
    if isinstance(event, RunError):
        return f"error ({event.kind}): {event.message}"
    if isinstance(event, Started):
        return (
            f"training on {event.device} with {event.backend}: {event.total_steps} steps, "
            f"{event.train_examples} train / {event.val_examples} val examples"
        )
    if isinstance(event, Resumed):
        where = f"step {event.from_step}" if event.checkpoint else "the start (no checkpoint)"
        return f"resuming from {where}"
    if isinstance(event, Finished):
        best = (
            f", best eval loss {event.best_eval_loss:.4f} at step {event.best_step}"
            if event.best_eval_loss is not None
            else ""
        )
        return f"{event.state}: {event.reason}{best} ({event.duration_s:.0f} s)"
    return event.message if isinstance(event, Phase) else str(event)
