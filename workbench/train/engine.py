"""One training attempt, as events: `run_training(job, cancel, emit)` and `train(job, cancel)`.

`run_training` trains in the calling thread and hands each event to `emit`: the detached runner
calls it from its main thread, where torch.compile (Unsloth) and CUDA state work as in a plain
script. `train` runs the same in a worker thread and yields the events from a queue, for callers
that want to iterate (tests, the TUI-free tools). Setting `cancel` stops the run gracefully at
the next step: a checkpoint is saved and the last event is `Finished(state="stopped")`.
"""

from __future__ import annotations

import queue
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.config import TrainSection
from workbench.train.config import Backend
from workbench.train.data import FrozenData, TokenizedSplit, ensure_chat_template, tokenize_split
from workbench.train.events import (
    Evaluated,
    FinalState,
    Finished,
    Phase,
    RunError,
    RunHistory,
    RunWarning,
    Started,
    TrainEvent,
)
from workbench.train.watch import CurveWatch

Emit = Callable[[TrainEvent], None]


@dataclass(frozen=True)
class TrainJob:
    """Everything one attempt needs; `resume_from` is a checkpoint directory to continue from."""

    config: TrainSection
    model: str
    """A local model directory or a hub id (see `workbench.train.config.resolve_model`)."""
    backend: Backend
    data: FrozenData
    output_dir: Path
    """The run directory: checkpoints/ and best/ are written here."""
    resume_from: Path | None = None
    history: RunHistory = field(default_factory=RunHistory)
    """Earlier attempts (for the best eval loss so far and the warnings' memory)."""


_DONE = object()


def run_training(job: TrainJob, cancel: threading.Event, emit: Emit) -> Finished:
    """Train in this thread, passing each event to `emit`; the last one, returned, is `Finished`.

    A failure is reported as events (an error, then `Finished(state="failed")`), not raised:
    whoever writes the log must always hear how the attempt ended.
    """
    state = _Attempt(job=job, started=time.perf_counter())

    def tracked(event: TrainEvent) -> None:
        state.track(event)
        emit(event)

    try:
        _attempt(job, cancel, state, tracked)
    except BaseException as exc:  # reported as events: the log must always hear the end
        traceback.print_exc()
        tracked(describe_failure(exc, job.config, state.step, loading=state.loading))
        tracked(state.finished("failed", f"{type(exc).__name__}: {exc}"[:300]))
    if state.last is None:  # every path above ends with Finished; keep that promise regardless
        tracked(state.finished("failed", "the attempt ended without a final event"))
    return state.last or state.finished("failed", "no final event")


def train(job: TrainJob, cancel: threading.Event) -> Iterator[TrainEvent]:
    """`run_training` in a worker thread, its events yielded as they happen (`Finished` last).

    Leaving the loop early stops the trainer as `cancel` would, and waits for it.
    """
    events: queue.Queue[Any] = queue.Queue()
    halt = _Either(cancel)
    thread = threading.Thread(
        target=_worker, args=(job, halt, events), name="workbench-train", daemon=True
    )
    thread.start()
    try:
        while (item := events.get()) is not _DONE:
            yield item
    finally:
        halt.own.set()
        thread.join()


class _Either(threading.Event):
    """Set when the caller's cancel flag or this iterator's own flag is set."""

    def __init__(self, outer: threading.Event) -> None:
        super().__init__()
        self.outer = outer
        self.own = threading.Event()

    def is_set(self) -> bool:
        return self.outer.is_set() or self.own.is_set()


def _worker(job: TrainJob, cancel: threading.Event, events: queue.Queue[Any]) -> None:
    try:
        run_training(job, cancel, events.put)
    finally:
        events.put(_DONE)


@dataclass
class _Attempt:
    """What an attempt knows about itself, for its final event."""

    job: TrainJob
    started: float
    loading: bool = True
    step: int = 0
    total_steps: int = 0
    best: tuple[float, int] | None = None
    last: Finished | None = None

    def track(self, event: TrainEvent) -> None:
        if isinstance(event, Finished):
            self.last = event
        if isinstance(event, Started):
            self.total_steps = event.total_steps
        if isinstance(event, Evaluated) and (self.best is None or event.eval_loss < self.best[0]):
            self.best = (event.eval_loss, event.step)
        step = getattr(event, "step", None)
        if isinstance(step, int):
            self.step = max(self.step, step)

    def finished(self, state: FinalState, reason: str) -> Finished:
        return Finished(
            state=state,
            reason=reason,
            step=self.step,
            total_steps=self.total_steps,
            best_eval_loss=self.best[0] if self.best else None,
            best_step=self.best[1] if self.best else None,
            duration_s=round(time.perf_counter() - self.started, 2),
        )


def _attempt(job: TrainJob, cancel: threading.Event, state: _Attempt, emit: Emit) -> None:
    """Load, tokenize, train: the events of one attempt, in order."""
    if job.backend == "unsloth":
        from workbench.train.backends import prepare_unsloth

        prepare_unsloth()
    from workbench.train.backends import load_model

    emit(Phase("loading the base model"))
    loaded = load_model(job.backend, job.config, job.model)
    state.loading = False
    for note in loaded.notes:
        emit(RunWarning(kind="device", message=note))
    if ensure_chat_template(loaded.tokenizer):
        emit(RunWarning(kind="data", message="the base model has no chat template: using ChatML"))
    emit(Phase("tokenizing"))
    train_split, val_split = _tokenize(job, loaded.tokenizer)
    for warning in _data_warnings(train_split, val_split, job.config.max_seq_length):
        emit(warning)
    if not train_split.examples or not val_split.examples:
        emit(
            RunError(
                kind="data",
                message="no example has anything left to learn after "
                "truncation: raise train.max_seq_length",
            )
        )
        emit(state.finished("failed", "no usable examples"))
    elif cancel.is_set():
        emit(state.finished("stopped", "stopped before training began"))
    else:
        _fit(job, cancel, state, emit, loaded, train_split, val_split)


def _tokenize(job: TrainJob, tokenizer: Any) -> tuple[TokenizedSplit, TokenizedSplit]:
    config = job.config
    completion_only = config.completion_only_loss
    return (
        tokenize_split(tokenizer, job.data.train, config.max_seq_length, completion_only),
        tokenize_split(tokenizer, job.data.val, config.max_seq_length, completion_only),
    )


def _examples(count: int, one: str = "is", many: str = "are") -> str:
    """`1 example is`, `3 examples are`."""
    return f"1 example {one}" if count == 1 else f"{count:,} examples {many}"


def _data_warnings(
    train_split: TokenizedSplit, val_split: TokenizedSplit, max_length: int
) -> Iterator[RunWarning]:
    truncated = train_split.truncated + val_split.truncated
    if truncated:
        yield RunWarning(
            kind="data",
            message=f"{_examples(truncated)} longer than max_seq_length {max_length}: "
            "truncated (the answers' ends are not learned)",
        )
    dropped = train_split.dropped + val_split.dropped
    if dropped:
        yield RunWarning(
            kind="data",
            message=f"{_examples(dropped, 'was', 'were')} left out: no assistant answer to learn "
            "within max_seq_length",
        )


def _fit(
    job: TrainJob,
    cancel: threading.Event,
    state: _Attempt,
    emit: Emit,
    loaded: Any,
    train_split: TokenizedSplit,
    val_split: TokenizedSplit,
) -> None:
    """Build the shared SFTTrainer and train; its callback emits the progress events.

    GPU utilization is polled beside the training (`gpu_util_sampler`), never inside a step.
    """
    from workbench.train.trainer import (
        build_trainer,
        event_callback,
        gpu_util_sampler,
        training_arguments,
    )

    config, history = job.config, job.history
    args = training_arguments(config, job.output_dir, job.backend)
    sampler = gpu_util_sampler(args.device)  # this rank's device, also under accelerate
    best = history.best
    state.best = (best.eval_loss, best.step) if best else None
    emit(Phase("preparing the trainer"))
    callback = event_callback(
        emit=emit,
        cancel=cancel,
        started=lambda total: _started_event(job, loaded.device, train_split, val_split, total),
        output_dir=job.output_dir,
        config=config,
        tokens_per_step=_tokens_per_step(train_split, config),
        best_so_far=state.best,
        watch=_watch_from(history),
        tokenizer=loaded.tokenizer,
        evals_since_best=_evals_since_best(history),
        gpu_util=lambda: sampler.latest,
    )
    trainer = build_trainer(
        loaded.model, loaded.tokenizer, train_split.records(), val_split.records(), args, callback
    )
    resume = str(job.resume_from) if job.resume_from else None
    with sampler:
        trainer.train(resume_from_checkpoint=resume)
    emit(_outcome(state, callback, config))


def _outcome(state: _Attempt, callback: Any, config: TrainSection) -> Finished:
    if callback.failed is not None:
        return state.finished("failed", callback.failed.message)
    if callback.stopped:
        return state.finished(
            "stopped", f"stopped at step {state.step}; resume continues from here"
        )
    if callback.early_stopped:
        return state.finished(
            "finished",
            f"early stopping: no better eval loss in {config.early_stopping_patience} evaluations",
        )
    return state.finished("finished", f"completed {state.step} steps")


def _started_event(
    job: TrainJob, device: str, train_split: TokenizedSplit, val_split: TokenizedSplit, total: int
) -> Started:
    return Started(
        backend=job.backend,
        base_model=job.config.base_model,
        device=device,
        total_steps=total,
        train_examples=len(train_split.examples),
        val_examples=len(val_split.examples),
        train_tokens=train_split.tokens,
        resumed_from_step=_checkpoint_step(job.resume_from),
    )


def _checkpoint_step(path: Path | None) -> int:
    if path is None:
        return 0
    try:
        return int(path.name.rsplit("-", 1)[-1])
    except ValueError:
        return 0


def _tokens_per_step(split: TokenizedSplit, config: TrainSection) -> float:
    mean = split.tokens / max(1, len(split.examples))
    return mean * config.batch_size * config.gradient_accumulation_steps


def _watch_from(history: RunHistory) -> CurveWatch:
    watch = CurveWatch()
    for point in history.steps:
        watch.on_step(point.step, point.loss)
    watch.evals = [(point.step, point.eval_loss) for point in history.evals]
    watch.warned = {warning.kind for warning in history.warnings}
    return watch


def _evals_since_best(history: RunHistory) -> int:
    best = history.best
    if best is None:
        return 0
    return sum(1 for point in history.evals if point.step > best.step)


def describe_failure(
    exc: BaseException, config: TrainSection, step: int = 0, loading: bool = False
) -> RunError:
    """One clear error for an exception that ended a run, saying what to change."""
    text = str(exc)
    lowered = text.lower()
    at = step or None
    if _is_out_of_memory(exc):
        hint = (
            f"out of GPU memory (batch_size {config.batch_size}, max_seq_length "
            f"{config.max_seq_length}{'' if config.load_in_4bit else ', 16-bit weights'}): "
            "lower train.batch_size (raise gradient_accumulation_steps to keep the effective "
            "batch), shorten train.max_seq_length"
        )
        hint += ", or set train.load_in_4bit = true" if not config.load_in_4bit else ""
        return RunError(kind="out_of_memory", message=hint, step=at)
    if "target modules" in lowered and "not found" in lowered:
        return RunError(
            kind="config",
            message=f"train.target_modules {list(config.target_modules)} do not exist in "
            f"{config.base_model}: {text[:200]}",
            step=at,
        )
    if loading:
        return RunError(kind="model", message=f"cannot load {config.base_model}: {text[:300]}")
    return RunError(
        kind="crash", message=f"{type(exc).__name__}: {text[:300]} (see output.log)", step=at
    )


def _is_out_of_memory(exc: BaseException) -> bool:
    if type(exc).__name__ in {"OutOfMemoryError", "OutOfMemoryErr"}:
        return True
    return "out of memory" in str(exc).lower() and isinstance(exc, RuntimeError | MemoryError)
