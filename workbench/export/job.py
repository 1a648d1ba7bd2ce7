"""The export job: adapter -> merged 16-bit model -> f16 GGUF -> quantized GGUFs -> manifest.

`export_run(request, cancel)` is an iterator of small frozen events (`workbench.export.events`),
like training; `start_export` runs it detached (`python -m workbench.export.runner DIR`), so
the app and the CLI only read `exports/<id>/events.jsonl` and `status.json`.

Layout of `exports/<id>/`: `request.json` (what was asked), `merged/` (the merged Hugging Face
model), `<run>-<checkpoint>-<quant>.gguf` per quantization, `manifest.json` (written last),
plus the job files `status.json`, `events.jsonl`, `output.log`. A stopped or failed export
removes its model files (they are large and incomplete) and keeps its log.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import struct
import sys
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from workbench.config import atomic_write_text
from workbench.export.checkpoints import (
    Checkpoint,
    ExportInputError,
    local_model_dir,
    resolve_checkpoint,
    run_base_model,
    training_chat_template,
)
from workbench.export.convert import GGUFConversionError, iter_convert
from workbench.export.events import (
    ErrorKind,
    ExportError,
    ExportEvent,
    ExportFinished,
    ExportStarted,
    FileWritten,
    Stage,
    StageProgress,
    StageStarted,
)
from workbench.export.manifest import (
    ExportedFile,
    ExportManifest,
    describe_file,
    write_manifest,
)
from workbench.export.merge import MergeError, merge_adapter
from workbench.export.process import Cancelled
from workbench.export.quantize import QuantizeError, check_quant, iter_quantize
from workbench.jobs import JobStatus, new_job_id, observed_status, signal_job, start_detached

REQUEST_FILE = "request.json"
MERGED_DIR = "merged"
PROGRESS_EVERY_S = 0.25
DEFAULT_QUANTS = ("q8_0",)
#: Size of each quantization relative to f16, for the free-disk check.
SIZE_RATIO = {"f16": 1.0, "bf16": 1.0, "q8_0": 0.55, "q6_k": 0.43, "q5_k_m": 0.37}
DEFAULT_RATIO = 0.33


class ExportRefused(Exception):
    """An export that cannot start as asked; the message says why and what to do."""


@dataclass(frozen=True)
class ExportRequest:
    """What to export: written to `request.json` and read back by the runner."""

    run_dir: Path
    export_dir: Path
    checkpoint: str = "best"
    quants: tuple[str, ...] = DEFAULT_QUANTS
    keep_merged: bool = True

    def save(self) -> None:
        data = {**asdict(self), "run_dir": str(self.run_dir), "export_dir": str(self.export_dir)}
        atomic_write_text(self.export_dir / REQUEST_FILE, json.dumps(data, indent=2) + "\n")

    @classmethod
    def load(cls, export_dir: Path) -> ExportRequest:
        data = json.loads((export_dir / REQUEST_FILE).read_text(encoding="utf-8"))
        return cls(
            run_dir=Path(data["run_dir"]),
            export_dir=Path(data["export_dir"]),
            checkpoint=str(data.get("checkpoint", "best")),
            quants=tuple(data.get("quants", DEFAULT_QUANTS)),
            keep_merged=bool(data.get("keep_merged", True)),
        )


def parse_quants(text: str | Sequence[str]) -> tuple[str, ...]:
    """`f16,q8_0,Q4_K_M` -> ('f16', 'q8_0', 'q4_k_m'), in order, without repeats.

    Raises:
        ExportRefused: an unknown name (the message lists the choices) or none at all.
    """
    items = text.split(",") if isinstance(text, str) else list(text)
    try:
        quants = tuple(dict.fromkeys(check_quant(item) for item in items if item.strip()))
    except QuantizeError as exc:
        raise ExportRefused(str(exc)) from exc
    if not quants:
        raise ExportRefused("no quantization given; e.g. --quant f16,q8_0,q4_k_m")
    return quants


def gguf_name(run_id: str, checkpoint: str, quant: str) -> str:
    """`<run>-<checkpoint>-<quant>.gguf`: says what it is when copied elsewhere."""
    return f"{run_id}-{checkpoint}-{quant}.gguf"


# --- starting, stopping ------------------------------------------------------------------------


def plan_export(
    exports_dir: Path, run_dir: Path, checkpoint: str = "best", quants: Sequence[str] = ()
) -> ExportRequest:
    """Check the request (run, checkpoint, base model, quantizations); nothing is written.

    Raises:
        ExportRefused: with one line saying what to change.
    """
    names = parse_quants(list(quants) or list(DEFAULT_QUANTS))
    try:
        resolve_checkpoint(run_dir, checkpoint)
        run_base_model(run_dir)
    except ExportInputError as exc:
        raise ExportRefused(str(exc)) from exc
    return ExportRequest(run_dir, exports_dir / new_job_id(), str(checkpoint), names)


def start_export(request: ExportRequest) -> JobStatus:
    """Create the export directory and start the detached runner; returns at once."""
    request.export_dir.mkdir(parents=True, exist_ok=False)
    request.save()
    argv = [sys.executable, "-m", "workbench.export.runner", str(request.export_dir)]
    return start_detached(request.export_dir, "export", argv)


def stop_export(export_dir: Path) -> bool:
    """Ask a running export to stop (its partial files are removed); False if not running."""
    status = observed_status(export_dir)
    if status is None or not status.active:
        return False
    return signal_job(export_dir)


# --- the job -------------------------------------------------------------------------------------


def export_run(request: ExportRequest, cancel: threading.Event) -> Iterator[ExportEvent]:
    """Merge, convert, quantize and describe; the last event is always `ExportFinished`."""
    started = time.perf_counter()
    job = _Job(request, cancel)
    try:
        yield from job.run()
    except Cancelled:
        job.remove_outputs()
        yield ExportFinished("stopped", "stopped on request", duration_s=_since(started))
        return
    except _Failed as failure:
        job.remove_outputs()
        yield ExportError(failure.kind, failure.message)
        yield ExportFinished("failed", failure.message, duration_s=_since(started))
        return
    except Exception as exc:  # an unexpected bug still ends with events, not a traceback only
        job.remove_outputs()
        message = f"export crashed: {type(exc).__name__}: {exc}"
        yield ExportError("crash", message)
        yield ExportFinished("failed", message, duration_s=_since(started))
        return
    manifest = request.export_dir / "manifest.json"
    yield ExportFinished("finished", "done", str(manifest), _since(started))


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 2)


class _Failed(Exception):
    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind, self.message = kind, message


class _Job:
    """One export's steps; raises _Failed or Cancelled, which `export_run` reports."""

    def __init__(self, request: ExportRequest, cancel: threading.Event) -> None:
        self.request = request
        self.cancel = cancel
        self.out = request.export_dir
        self.run_id = request.run_dir.name
        self.quantized = [quant for quant in request.quants if quant != "f16"]
        self.total = 3 + len(self.quantized)
        self.started = time.time()
        self._last_progress = 0.0

    def run(self) -> Iterator[ExportEvent]:
        checkpoint, named, base_dir = self._inputs()
        yield ExportStarted(
            export_id=self.out.name,
            run_id=self.run_id,
            checkpoint=checkpoint.label,
            checkpoint_path=str(checkpoint.path),
            base_model=named,
            quants=self.request.quants,
            total_stages=self.total,
            checkpoint_step=checkpoint.step,
        )
        check_disk_space(base_dir, self.out, self.request.quants)
        template, source = training_chat_template(checkpoint.path, base_dir)
        yield from self._merge(base_dir, checkpoint, template)
        f16 = self.out / gguf_name(self.run_id, checkpoint.label, "f16")
        written = [(yield from self._convert(f16))]
        for index, quant in enumerate(self.quantized, start=3):
            target = self.out / gguf_name(self.run_id, checkpoint.label, quant)
            written.append((yield from self._quantize(index, f16, target, quant)))
        yield from self._finish(checkpoint, named, source, written, f16)

    def _inputs(self) -> tuple[Checkpoint, str, Path]:
        try:
            checkpoint = resolve_checkpoint(self.request.run_dir, self.request.checkpoint)
            named, model = run_base_model(self.request.run_dir)
            return checkpoint, named, local_model_dir(model)
        except ExportInputError as exc:
            raise _Failed("input", str(exc)) from exc

    def _stage(self, stage: Stage, index: int, message: str) -> StageStarted:
        if self.cancel.is_set():
            raise Cancelled(f"stopped before {stage}")
        return StageStarted(stage, index, self.total, message)

    def _progress(self, stage: Stage, fraction: float, message: str = "") -> list[StageProgress]:
        """A progress event, unless one went out less than `PROGRESS_EVERY_S` ago."""
        now = time.monotonic()
        if now - self._last_progress < PROGRESS_EVERY_S:
            return []
        self._last_progress = now
        return [StageProgress(stage, round(min(fraction, 1.0), 3), message)]

    def _merge(
        self, base_dir: Path, checkpoint: Checkpoint, template: str
    ) -> Iterator[ExportEvent]:
        yield self._stage(
            "merge", 1, f"merging the {checkpoint.label} adapter into {base_dir.name}"
        )
        notes: list[str] = []
        try:
            merge_adapter(base_dir, checkpoint.path, self.out / MERGED_DIR, template, notes.append)
        except MergeError as exc:
            raise _Failed("merge", str(exc)) from exc
        except OSError as exc:
            raise _Failed("disk", f"cannot write the merged model: {exc}") from exc
        yield StageProgress("merge", 1.0, notes[-1] if notes else "")

    def _convert(self, target: Path) -> Generator[ExportEvent, None, ExportedFile]:
        yield self._stage("convert", 2, "converting to GGUF (f16)")
        started = time.perf_counter()
        total = max(1, count_tensors(self.out / MERGED_DIR))
        done = 0
        try:
            name = target.stem.removesuffix("-f16")
            for line in iter_convert(self.out / MERGED_DIR, target, "f16", self.cancel, name):
                if "-->" in line:
                    done += 1
                    yield from self._progress("convert", 0.9 * done / total, f"{done} tensors")
        except GGUFConversionError as exc:
            raise _Failed("convert", str(exc)) from exc
        return (yield from self._written("f16", target, started))

    def _quantize(
        self, index: int, source: Path, target: Path, quant: str
    ) -> Generator[ExportEvent, None, ExportedFile]:
        yield self._stage("quantize", index, f"quantizing to {quant}")
        started = time.perf_counter()
        try:
            for done, total in iter_quantize(source, target, quant, self.cancel):
                yield from self._progress("quantize", done / total, f"{done}/{total} tensors")
        except QuantizeError as exc:
            raise _Failed("quantize", str(exc)) from exc
        return (yield from self._written(quant, target, started))

    def _written(
        self, quant: str, path: Path, started: float
    ) -> Generator[ExportEvent, None, ExportedFile]:
        """Hash the finished file and report it; the manifest entry."""
        entry = describe_file(self.out, path, quant)
        yield FileWritten(quant, str(path), entry.bytes, entry.sha256, _since(started))
        return entry

    def _finish(
        self,
        checkpoint: Checkpoint,
        named: str,
        source: str,
        written: list[ExportedFile],
        f16: Path,
    ) -> Iterator[ExportEvent]:
        yield self._stage("manifest", self.total, "writing manifest.json")
        if "f16" not in self.request.quants:
            f16.unlink(missing_ok=True)
            written = [entry for entry in written if entry.quant != "f16"]
        if not self.request.keep_merged:
            shutil.rmtree(self.out / MERGED_DIR, ignore_errors=True)
        ordered = sorted(written, key=lambda entry: self.request.quants.index(entry.quant))
        write_manifest(
            self.out,
            ExportManifest(
                id=self.out.name,
                run_id=self.run_id,
                checkpoint=checkpoint.label,
                base_model=named,
                files=tuple(ordered),
                checkpoint_step=checkpoint.step,
                eval_loss=checkpoint.eval_loss,
                merged_dir=MERGED_DIR if self.request.keep_merged else "",
                chat_template_source=source,
                created_at=self.started,
                duration_s=round(time.time() - self.started, 2),
            ),
        )

    def remove_outputs(self) -> None:
        """Delete the (large, incomplete) model files of a stopped or failed export."""
        shutil.rmtree(self.out / MERGED_DIR, ignore_errors=True)
        for path in self.out.glob("*.gguf"):
            path.unlink(missing_ok=True)
        for path in self.out.glob(".*.partial"):
            path.unlink(missing_ok=True)


# --- sizes -------------------------------------------------------------------------------------


def count_tensors(model_dir: Path) -> int:
    """Tensors in a model directory's safetensors files (read from their headers)."""
    total = 0
    for path in model_dir.glob("*.safetensors"):
        with open(path, "rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(length))
        total += sum(1 for key in header if key != "__metadata__")
    return total


def weights_bytes_16bit(model_dir: Path) -> int:
    """Size of the model's weights at 16 bits per parameter (from its weight files)."""
    files = list(model_dir.glob("*.safetensors")) or list(model_dir.glob("*.bin"))
    size = sum(path.stat().st_size for path in files)
    config: dict[str, object] = {}
    with contextlib.suppress(OSError, ValueError):
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    if str(config.get("dtype") or config.get("torch_dtype")) == "float32":
        size //= 2
    return size


def disk_needed(base_dir: Path, quants: Sequence[str]) -> int:
    """Bytes an export writes: the merged model, the f16 GGUF and each quantization."""
    half = weights_bytes_16bit(base_dir)
    extra = sum(SIZE_RATIO.get(quant, DEFAULT_RATIO) for quant in quants if quant != "f16")
    return int(half * (2 + extra))


def check_disk_space(base_dir: Path, out_dir: Path, quants: Sequence[str]) -> None:
    """_Failed("disk") when the export would not fit on the disk holding `out_dir`."""
    needed = disk_needed(base_dir, quants)
    free = shutil.disk_usage(out_dir).free
    if needed > free:
        raise _Failed(
            "disk",
            f"the export needs about {needed / 1e9:.1f} GB and {free / 1e9:.1f} GB is free in "
            f"{out_dir.parent}; free some space (old exports, runs' checkpoints) and try again",
        )
