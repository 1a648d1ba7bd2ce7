"""Training runs on disk: plan (every check, nothing written), create, launch, stop, resume, read.

A run is `runs/<id>/` holding its settings (`config.json`, `run.json`), frozen data
(`train.jsonl`, `val.jsonl`, `data.json`), environment (`environment.json`), history
(`events.jsonl`), state (`status.json`), `checkpoints/` and `best/`. The training itself happens
in a detached process (`python -m workbench.train.runner RUN_DIR`), so closing the app or losing
SSH stops nothing; everything here only reads and writes those files.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import sys
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from workbench.config import TrainSection, atomic_write_text
from workbench.jobs import (
    ACTIVE_STATES,
    EVENTS_FILE,
    EventTail,
    JobState,
    JobStatus,
    new_job_id,
    observed_status,
    read_events,
    read_status,
    signal_job,
    start_detached,
    write_status,
)
from workbench.train.config import (
    Backend,
    Device,
    TrainConfigError,
    choose_backend,
    config_from_file,
    probe_device,
    resolve_model,
    run_config,
)
from workbench.train.data import (
    DATA_FILE,
    DataError,
    FrozenData,
    LengthCheck,
    check_lengths,
    collect_examples,
    length_problem,
    write_frozen,
)
from workbench.train.events import RunHistory
from workbench.workspace import Workspace

CONFIG_FILE = "config.json"
RUN_FILE = "run.json"
ENVIRONMENT_FILE = "environment.json"
CHECKPOINTS_DIR = "checkpoints"
BEST_DIR = "best"
RESUMABLE_STATES = frozenset({"stopped", "failed", "lost", "queued"})


class RunRefused(Exception):
    """A run that cannot be started, stopped or resumed as asked; `problems` says why."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class RunPlan:
    """A run that passed every check and can be created: nothing is written yet."""

    config: TrainSection
    backend: Backend
    model: str
    """The loadable base model: a local directory or a hub id."""
    data: FrozenData
    lengths: LengthCheck
    notes: tuple[str, ...] = ()
    overrides: dict[str, Any] = field(default_factory=dict)


def plan_run(
    workspace: Workspace,
    overrides: Mapping[str, Any] | None = None,
    device: Device | None = None,
    data: FrozenData | None = None,
) -> RunPlan:
    """Check settings, backend, base model and data; RunRefused with the reasons if any fails.

    Loads the base model's tokenizer to measure the prompts (seconds: call it from a worker).
    """
    try:
        config = run_config(workspace.config.train, overrides)
        backend, note = choose_backend(config, device or probe_device())
        model = resolve_model(config.base_model, workspace.root)
        data = data or collect_examples(workspace.db_path)
    except (TrainConfigError, DataError) as exc:
        raise RunRefused(getattr(exc, "problems", [str(exc)])) from exc
    tokenizer = load_tokenizer(model, config.base_model)
    try:
        lengths = check_lengths(tokenizer, data, config.max_seq_length)
    except Exception as exc:  # a chat template that cannot render these messages
        raise RunRefused(
            [f"cannot render the examples with the chat template of {config.base_model}: {exc}"]
        ) from exc
    if problem := length_problem(lengths, config.max_seq_length):
        raise RunRefused([problem])
    notes = (note,) if note else ()
    return RunPlan(config, backend, model, data, lengths, notes, dict(overrides or {}))


def load_tokenizer(model: str, given: str) -> Any:
    """The base model's tokenizer; RunRefused (not a traceback) when it cannot be read."""
    from transformers import AutoTokenizer

    from workbench.train.data import ensure_chat_template

    try:
        tokenizer = AutoTokenizer.from_pretrained(model)
    except Exception as exc:  # transformers raises many kinds for a broken directory
        raise RunRefused(
            [f"train.base_model = {given!r}: cannot load its tokenizer: {str(exc)[:200]}"]
        ) from exc
    ensure_chat_template(tokenizer)
    return tokenizer


def create_run(
    workspace: Workspace,
    plan: RunPlan,
    state: JobState = "starting",
    sweep: str = "",
    variant: str = "",
) -> Path:
    """Write the run directory (settings and frozen data) in one rename; return its path."""
    run_id = new_job_id()
    staging = workspace.runs_dir / f".new-{run_id}"
    staging.mkdir(parents=True)
    try:
        _write_json(staging / CONFIG_FILE, plan.config.model_dump())
        _write_json(staging / RUN_FILE, _run_record(plan, sweep, variant))
        write_frozen(staging, plan.data)
        write_status(staging, JobStatus(id=run_id, kind="run", state=state))
        target = workspace.runs_dir / run_id
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _run_record(plan: RunPlan, sweep: str, variant: str) -> dict[str, Any]:
    return {
        "backend": plan.backend,
        "model": plan.model,
        "base_model": plan.config.base_model,
        "overrides": plan.overrides,
        "notes": list(plan.notes),
        "sweep": sweep,
        "variant": variant,
        "lengths": asdict(plan.lengths),
    }


def _write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def read_run_record(run_dir: Path) -> dict[str, Any]:
    """`run.json`: backend, resolved model, overrides, sweep and variant."""
    try:
        data = json.loads((run_dir / RUN_FILE).read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def runner_argv(
    run_dir: Path, resume: bool = False, gpus: int = 0, backend: str = "hf"
) -> list[str]:
    """The detached command: the runner, through `accelerate launch` on several GPUs (hf)."""
    tail = [str(run_dir), *(["--resume"] if resume else [])]
    if backend == "hf" and gpus > 1:
        launch = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(gpus)]
        return [*launch, "-m", "workbench.train.runner", *tail]
    return [sys.executable, "-m", "workbench.train.runner", *tail]


def runner_env() -> dict[str, str]:
    """The runner's environment: unbuffered output, no progress bars in output.log."""
    env = dict(os.environ)
    env.update(
        PYTHONUNBUFFERED="1",
        TOKENIZERS_PARALLELISM="false",
        HF_DATASETS_DISABLE_PROGRESS_BARS="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
    )
    return env


def launch_run(run_dir: Path, resume: bool = False, device: Device | None = None) -> JobStatus:
    """Start the detached runner for `run_dir`; it returns at once."""
    record = read_run_record(run_dir)
    gpus = (device or probe_device()).gpus if record.get("backend") == "hf" else 0
    previous = observed_status(run_dir)
    argv = runner_argv(run_dir, resume, gpus, str(record.get("backend", "hf")))
    started_at = previous.started_at if previous and resume else None
    return start_detached(run_dir, "run", argv, env=runner_env(), started_at=started_at)


def start_run(
    workspace: Workspace, overrides: Mapping[str, Any] | None = None, device: Device | None = None
) -> Path:
    """Plan, create and launch a run; RunRefused (workspace unchanged) if a check fails."""
    plan = plan_run(workspace, overrides, device)
    run_dir = create_run(workspace, plan)
    launch_run(run_dir, device=device)
    return run_dir


def stop_run(run_dir: Path) -> bool:
    """Ask the run to stop gracefully (a checkpoint is saved); False if it is not running."""
    status = observed_status(run_dir)
    if status is None or status.state not in ACTIVE_STATES:
        return False
    return signal_job(run_dir)


def resume_run(run_dir: Path, device: Device | None = None) -> JobStatus:
    """Continue a stopped, failed or killed run from its last checkpoint, in a new process."""
    status = observed_status(run_dir)
    if status is None:
        raise RunRefused([f"{run_dir}: not a run (no readable status.json)"])
    if status.state in ACTIVE_STATES:
        raise RunRefused([f"run {status.id} is still {status.state}; stop it first"])
    if status.state == "finished":
        raise RunRefused([f"run {status.id} has finished; start a new run to train further"])
    return launch_run(run_dir, resume=status.state != "queued", device=device)


def last_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint (its trainer_state.json, written last, is readable)."""
    candidates = []
    for path in (run_dir / CHECKPOINTS_DIR).glob("checkpoint-*"):
        step = path.name.rsplit("-", 1)[-1]
        if step.isdigit() and _complete_checkpoint(path):
            candidates.append((int(step), path))
    return max(candidates)[1] if candidates else None


def _complete_checkpoint(path: Path) -> bool:
    try:
        json.loads((path / "trainer_state.json").read_text("utf-8"))
    except (OSError, ValueError):
        return False
    return any(path.glob("adapter_model.*")) and (path / "optimizer.pt").exists()


# --- reading -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSummary:
    """What a list or a header shows about a run, read from its files."""

    id: str
    dir: Path
    state: JobState
    message: str
    config: TrainSection | None
    backend: str
    started_at: float
    duration_s: float
    step: int
    total_steps: int
    last_loss: float | None
    best_eval_loss: float | None
    best_step: int | None
    train_examples: int
    val_examples: int
    data_hash: str
    sweep: str = ""
    variant: str = ""
    error: str = ""
    warnings: tuple[str, ...] = ()

    @property
    def has_best(self) -> bool:
        return (self.dir / BEST_DIR).is_dir()


def read_history(run_dir: Path) -> RunHistory:
    """The run's whole history, replayed from its event log."""
    history = RunHistory()
    history.add_dicts(read_events(run_dir))
    return history


def load_run(run_dir: Path) -> RunSummary:
    """A run's summary: status, settings, progress, best eval loss, duration."""
    return summarize(run_dir, read_history(run_dir), RunFiles.read(run_dir))


@dataclass(frozen=True)
class RunFiles:
    """The files a run writes once, at creation: read once per run by a `RunCache`."""

    record: dict[str, Any]
    manifest: dict[str, Any]
    config: TrainSection | None

    @classmethod
    def read(cls, run_dir: Path) -> RunFiles:
        record, manifest = read_run_record(run_dir), _read_json(run_dir / DATA_FILE)
        return cls(record, manifest, _read_config(run_dir))


def summarize(
    run_dir: Path, history: RunHistory, files: RunFiles, status: JobStatus | None = None
) -> RunSummary:
    """The summary of a run whose history is already folded (no event is read here)."""
    status = status or observed_status(run_dir)
    status = status or JobStatus(id=run_dir.name, kind="run", state="lost")
    record, manifest, best = files.record, files.manifest, history.best
    return RunSummary(
        id=run_dir.name,
        dir=run_dir,
        state=status.state,
        message=status.message,
        config=files.config,
        backend=str(record.get("backend", "")),
        started_at=status.started_at,
        duration_s=round(history.active_s, 1),
        step=history.step,
        total_steps=history.total_steps,
        last_loss=history.last_loss,
        best_eval_loss=best.eval_loss if best else None,
        best_step=best.step if best else None,
        train_examples=int(manifest.get("train_examples", 0)),
        val_examples=int(manifest.get("val_examples", 0)),
        data_hash=str(manifest.get("hash", "")),
        sweep=str(record.get("sweep", "")),
        variant=str(record.get("variant", "")),
        error=history.errors[-1].message if history.errors else "",
        warnings=tuple(warning.message for warning in history.warnings),
    )


def _read_config(run_dir: Path) -> TrainSection | None:
    try:
        return config_from_file(run_dir / CONFIG_FILE)
    except (OSError, ValueError):
        return None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def run_dirs(workspace: Workspace) -> list[Path]:
    """Every run directory of the workspace, oldest first (by creation: ids made within the
    same second do not sort by time)."""
    if not workspace.runs_dir.is_dir():
        return []
    found = [
        (status.started_at, path.name, path)
        for path in workspace.runs_dir.iterdir()
        if not path.name.startswith(".") and (status := read_status(path)) is not None
    ]
    return [path for _, _, path in sorted(found)]


def list_runs(workspace: Workspace) -> list[RunSummary]:
    """Summaries of every run, oldest first."""
    return [load_run(path) for path in run_dirs(workspace)]


def find_run(workspace: Workspace, run_id: str) -> Path:
    """The run named by `run_id`: an exact id, a unique prefix or suffix, or `last`."""
    runs = run_dirs(workspace)
    if run_id == "last" and runs:
        return runs[-1]
    exact = [path for path in runs if path.name == run_id]
    matches = exact or [
        path for path in runs if path.name.startswith(run_id) or path.name.endswith(run_id)
    ]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise RunRefused([f"no run {run_id!r} in {workspace.runs_dir} (see `workbench runs list`)"])
    names = ", ".join(path.name for path in matches[:5])
    raise RunRefused([f"{run_id!r} matches several runs ({names}); give more of the id"])


# --- reading many runs, again and again (the Train screen) -------------------------------------

KEEP_RECORDS = 400
"""Raw events kept per run for the log tail a screen shows when the run is picked."""

_readings = itertools.count(1)
"""Numbers each reading of a log from its start, so a mark from an earlier reading (a log since
rewritten, an entry since pruned) is never taken for a place in the current one."""


def copy_history(history: RunHistory) -> RunHistory:
    """A copy another thread can read while the cache keeps folding into the original."""
    return replace(
        history,
        steps=list(history.steps),
        evals=list(history.evals),
        checkpoints=list(history.checkpoints),
        warnings=list(history.warnings),
        errors=list(history.errors),
    )


@dataclass(frozen=True)
class ReadMark:
    """Where a reader of one run's records stands: which reading of the log, how many records.

    Whoever reads the file (a list refresh, a follower), a follower holding a mark is handed
    every record after it exactly once.
    """

    reading: int
    count: int


@dataclass(frozen=True)
class RunRecords:
    """A run's history and the records a reader has not had yet, as of `mark`."""

    history: RunHistory
    records: list[dict[str, Any]]
    mark: ReadMark
    restarted: bool
    """The records do not continue what the reader had (never read, log rewritten, or more
    appended than are kept): they are the last KEEP_RECORDS, to be shown from scratch."""


@dataclass
class FollowedRun:
    """One run as read so far: where its log reader stopped, what it folded, its last events."""

    tail: EventTail
    history: RunHistory = field(default_factory=RunHistory)
    recent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=KEEP_RECORDS))
    reading: int = field(default_factory=lambda: next(_readings))
    count: int = 0
    """Records folded in this reading: `recent` holds the last of them."""
    files: RunFiles | None = None
    summary: RunSummary | None = None
    summary_key: tuple[Any, ...] = ()
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def mark(self) -> ReadMark:
        return ReadMark(self.reading, self.count)

    def restart(self, run_dir: Path) -> None:
        """The log was rewritten: forget it all and read it again from its start."""
        self.tail, self.history, self.summary_key = EventTail(run_dir), RunHistory(), ()
        self.recent.clear()
        self.reading, self.count = next(_readings), 0

    def records_after(self, mark: ReadMark | None) -> RunRecords | None:
        """The records after `mark` (all kept ones if they do not continue it); None if none."""
        if mark == self.mark:
            return None
        first_kept = self.count - len(self.recent)
        if (
            mark is None
            or mark.reading != self.reading
            or not first_kept <= mark.count <= self.count
        ):
            return RunRecords(copy_history(self.history), list(self.recent), self.mark, True)
        new = list(itertools.islice(self.recent, mark.count - first_kept, None))
        return RunRecords(copy_history(self.history), new, self.mark, False)


class RunCache:
    """Every run's event log folded once, then only extended with the events appended since.

    A screen that lists runs every few seconds and switches between them would otherwise replay
    whole logs (thousands of events each) on every refresh and every key press. Here each byte
    of a log is parsed once, by whichever thread asks first; a summary is rebuilt only when the
    run's log or status changed, and a follower asks for the records after its `ReadMark`, so
    it misses none that a list refresh read. A log that shrank (rewritten) is read again from
    its start. Runs whose directories are gone are dropped at the next listing. Safe to share
    between threads.
    """

    def __init__(self) -> None:
        self._runs: dict[Path, FollowedRun] = {}
        self._lock = threading.Lock()

    def entry(self, run_dir: Path) -> FollowedRun:
        with self._lock:
            if (found := self._runs.get(run_dir)) is None:
                found = self._runs[run_dir] = FollowedRun(EventTail(run_dir))
            return found

    def prune(self, keep: Iterable[Path]) -> None:
        """Forget every run not in `keep` (their directories were deleted)."""
        wanted = set(keep)
        with self._lock:
            for run_dir in [path for path in self._runs if path not in wanted]:
                del self._runs[run_dir]

    def update(self, run_dir: Path) -> None:
        """Fold in the events appended since the file was last read (by anyone)."""
        run = self.entry(run_dir)
        with run.lock:
            self._update(run_dir, run)

    def _update(self, run_dir: Path, run: FollowedRun) -> None:
        size = _size(run_dir / EVENTS_FILE)
        if size < run.tail.offset:
            run.restart(run_dir)
        if size == run.tail.offset:
            return
        records = run.tail.read_new()
        run.history.add_dicts(records)
        run.recent.extend(records)
        run.count += len(records)

    def since(self, run_dir: Path, mark: ReadMark | None) -> RunRecords | None:
        """Read what was appended, then return the records after `mark` (None: the run was
        never shown) with the history; None when the reader already has them all."""
        run = self.entry(run_dir)
        with run.lock:
            self._update(run_dir, run)
            return run.records_after(mark)

    def peek(self, run_dir: Path, wait: bool = True) -> RunRecords | None:
        """What was read of the run so far (no file is touched), or None if never read.

        `wait=False` (the UI thread) also answers None while another thread is folding the
        run's log, rather than waiting for it.
        """
        with self._lock:
            run = self._runs.get(run_dir)
        if run is None or not run.lock.acquire(blocking=wait):
            return None
        try:
            if run.tail.offset == 0 and run.summary is None:
                return None
            return run.records_after(None)
        finally:
            run.lock.release()

    def history(self, run_dir: Path) -> RunHistory:
        """The run's whole history, brought up to date (only new events are read)."""
        self.update(run_dir)
        seen = self.peek(run_dir)
        return seen.history if seen is not None else RunHistory()

    def summary(self, run_dir: Path) -> RunSummary:
        """The run's summary, rebuilt only when its log or `status.json` changed."""
        run = self.entry(run_dir)
        with run.lock:
            self._update(run_dir, run)
            status = observed_status(run_dir)
            key = (run.tail.offset, status)
            if run.summary is None or key != run.summary_key:
                run.files = run.files or RunFiles.read(run_dir)
                run.summary = summarize(run_dir, run.history, run.files, status)
                run.summary_key = key
            return run.summary

    def list_runs(self, workspace: Workspace) -> list[RunSummary]:
        """Summaries of every run, oldest first (as `list_runs`, reading only what changed);
        runs deleted since the last listing are forgotten."""
        paths = run_dirs(workspace)
        self.prune(paths)
        return [self.summary(path) for path in paths]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
