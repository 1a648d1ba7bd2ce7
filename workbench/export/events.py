"""What an export reports: small frozen events, one JSON object per line in `events.jsonl`.

`export_run` yields them, the detached runner appends them to the export's log, and readers
(the Train screen, `workbench export`) turn the lines back into events with
:func:`event_from_dict` and fold them into an :class:`ExportProgress`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from workbench.events import EventCodec

Stage = Literal["merge", "convert", "quantize", "manifest"]
FinalState = Literal["finished", "stopped", "failed"]
ErrorKind = Literal["input", "disk", "merge", "convert", "quantize", "crash"]


@dataclass(frozen=True)
class ExportStarted:
    """The plan: which adapter, which base model, which files."""

    type: ClassVar[str] = "started"
    export_id: str
    run_id: str
    checkpoint: str
    checkpoint_path: str
    base_model: str
    quants: tuple[str, ...]
    total_stages: int
    checkpoint_step: int | None = None


@dataclass(frozen=True)
class StageStarted:
    """A stage begins (`index` of `total`, from 1)."""

    type: ClassVar[str] = "stage"
    stage: Stage
    index: int
    total: int
    message: str


@dataclass(frozen=True)
class StageProgress:
    """How far the current stage is (at most a few per second)."""

    type: ClassVar[str] = "progress"
    stage: Stage
    fraction: float
    message: str = ""


@dataclass(frozen=True)
class FileWritten:
    """A GGUF is complete."""

    type: ClassVar[str] = "file"
    quant: str
    path: str
    bytes: int
    sha256: str
    seconds: float


@dataclass(frozen=True)
class ExportError:
    """The export cannot go on; `message` says what happened and what to do."""

    type: ClassVar[str] = "error"
    kind: ErrorKind
    message: str


@dataclass(frozen=True)
class ExportFinished:
    """The last event: finished (manifest written), stopped or failed."""

    type: ClassVar[str] = "finished"
    state: FinalState
    reason: str
    manifest: str = ""
    duration_s: float = 0.0


ExportEvent = (
    ExportStarted | StageStarted | StageProgress | FileWritten | ExportError | ExportFinished
)
CODEC = EventCodec[ExportEvent](
    ExportStarted, StageStarted, StageProgress, FileWritten, ExportError, ExportFinished
)
EVENT_TYPES = CODEC.types


def event_to_dict(event: ExportEvent) -> dict[str, Any]:
    """The JSON object written to `events.jsonl`."""
    return CODEC.to_dict(event)


def event_from_dict(data: Mapping[str, Any]) -> ExportEvent | None:
    """The event a log line holds; None for other or malformed lines (readers skip them)."""
    return CODEC.from_dict(data)


@dataclass
class ExportProgress:
    """An export's state folded from its events: for a progress bar and a summary."""

    started: ExportStarted | None = None
    stage: StageStarted | None = None
    fraction: float = 0.0
    """Progress of the current stage, 0-1."""
    files: list[FileWritten] = field(default_factory=list)
    errors: list[ExportError] = field(default_factory=list)
    finished: ExportFinished | None = None

    def add(self, event: ExportEvent) -> None:
        """Fold one more event in."""
        if isinstance(event, ExportStarted):
            self.started = event
        elif isinstance(event, StageStarted):
            self.stage, self.fraction = event, 0.0
        elif isinstance(event, StageProgress):
            self.fraction = event.fraction
        elif isinstance(event, FileWritten):
            self.files.append(event)
        elif isinstance(event, ExportError):
            self.errors.append(event)
        elif isinstance(event, ExportFinished):
            self.finished = event

    def add_dicts(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Fold raw `events.jsonl` objects in."""
        for record in records:
            if (event := event_from_dict(record)) is not None:
                self.add(event)

    @property
    def overall(self) -> float:
        """Progress of the whole export, 0-1 (each stage counts the same)."""
        if self.finished is not None and self.finished.state == "finished":
            return 1.0
        if self.stage is None:
            return 0.0
        return min(1.0, (self.stage.index - 1 + self.fraction) / self.stage.total)
