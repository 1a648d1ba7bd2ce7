"""Detached jobs (training, export, eval) and the files they leave behind.

A job is a directory (`runs/<id>/`, `exports/<id>/`, `evals/<id>/`) holding `status.json` (pid,
state) and `events.jsonl` (one JSON event per line). The job runs in its own process session, so
closing the app or losing SSH stops nothing; readers only ever read these files.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from workbench.config import atomic_write_text

JobKind = Literal["run", "export", "eval", "sweep", "capture", "synth"]
JobState = Literal[
    "queued", "starting", "running", "stopping", "finished", "failed", "stopped", "lost"
]

JOB_DIRS: dict[JobKind, str] = {
    "run": "runs",
    "export": "exports",
    "eval": "evals",
    "sweep": "sweeps",
    "capture": "captures",
    "synth": "synths",
}
ACTIVE_STATES = frozenset({"starting", "running", "stopping"})
STATUS_FILE = "status.json"
EVENTS_FILE = "events.jsonl"
LOG_FILE = "output.log"


@dataclass(frozen=True)
class JobStatus:
    """The contents of a job's `status.json`."""

    id: str
    kind: JobKind
    state: JobState
    pid: int | None = None
    started_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    message: str = ""

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES


def new_job_id(now: float | None = None) -> str:
    """A sortable, unique id: `20261127-233501-3fa9`."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now or time.time()))
    return f"{stamp}-{secrets.token_hex(2)}"


def write_status(job_dir: Path, status: JobStatus) -> None:
    """Replace `status.json` atomically (readers never see half a file)."""
    atomic_write_text(job_dir / STATUS_FILE, json.dumps(asdict(status), indent=2) + "\n")


def update_status(job_dir: Path, **changes: Any) -> JobStatus:
    """Change some fields of `status.json` and stamp `updated_at`."""
    current = read_status(job_dir)
    if current is None:
        raise FileNotFoundError(job_dir / STATUS_FILE)
    status = replace(current, updated_at=time.time(), **changes)
    write_status(job_dir, status)
    return status


def read_status(job_dir: Path) -> JobStatus | None:
    """The job's recorded status, or None when the file is missing or unreadable."""
    try:
        raw = json.loads((job_dir / STATUS_FILE).read_text(encoding="utf-8"))
        return JobStatus(**raw)
    except (OSError, ValueError, TypeError):
        return None


def pid_alive(pid: int | None) -> bool:
    """Whether a process with this pid exists (and is not a zombie we could reap)."""
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def observed_status(job_dir: Path) -> JobStatus | None:
    """The status as it really is: an active job whose process has gone is `lost`."""
    status = read_status(job_dir)
    if status is not None and status.active and not pid_alive(status.pid):
        return replace(status, state="lost", message=status.message or "the process has ended")
    return status


def list_jobs(root: Path, kinds: Sequence[JobKind] = ("run", "export", "eval")) -> list[JobStatus]:
    """Every job in the workspace at `root`, oldest first."""
    jobs = []
    for kind in kinds:
        base = root / JOB_DIRS[kind]
        if not base.is_dir():
            continue
        for job_dir in base.iterdir():
            if (status := observed_status(job_dir)) is not None:
                jobs.append(status)
    return sorted(jobs, key=lambda job: (job.started_at, job.id))


def running_jobs(root: Path) -> list[JobStatus]:
    """The jobs of every kind whose process is alive."""
    return [job for job in list_jobs(root, kinds=tuple(JOB_DIRS)) if job.active]


def start_detached(
    job_dir: Path,
    kind: JobKind,
    argv: Sequence[str],
    env: Mapping[str, str] | None = None,
    started_at: float | None = None,
) -> JobStatus:
    """Start `argv` in a new process session, its output in `output.log`; record its pid.

    `started_at` keeps the original start time when a job is restarted (a resumed run).
    """
    job_dir.mkdir(parents=True, exist_ok=True)
    with open(job_dir / LOG_FILE, "ab") as log:
        process = subprocess.Popen(
            list(argv),
            cwd=job_dir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            env=dict(env) if env is not None else None,
        )
    status = JobStatus(id=job_dir.name, kind=kind, state="starting", pid=process.pid)
    if started_at is not None:
        status = replace(status, started_at=started_at)
    write_status(job_dir, status)
    return status


def signal_job(job_dir: Path, signum: int = signal.SIGTERM) -> bool:
    """Send `signum` to the job's process (SIGTERM: a graceful stop); False if it is not alive."""
    status = read_status(job_dir)
    if status is None or not pid_alive(status.pid):
        return False
    try:
        os.kill(status.pid or 0, signum)
    except ProcessLookupError:
        return False
    return True


def append_event(job_dir: Path, event: Mapping[str, Any]) -> None:
    """Add one event (a JSON object with a `type`) to the job's log, stamped with the time."""
    line = json.dumps({"time": round(time.time(), 3), **event}, ensure_ascii=False)
    with open(job_dir / EVENTS_FILE, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")


def read_events(job_dir: Path) -> list[dict[str, Any]]:
    """Every whole event the job has written so far (its history), oldest first."""
    return EventTail(job_dir).read_new()


class EventTail:
    """Reads a job's `events.jsonl` incrementally: each call returns only the new events.

    A line still being written (no newline yet) waits for the next call; a corrupt line is
    returned as an `unreadable` event rather than stopping the reader.
    """

    def __init__(self, job_dir: Path) -> None:
        self.path = job_dir / EVENTS_FILE
        self.offset = 0
        self.bytes_read = 0
        """Bytes read over all calls: the file's size when only a half-written last line was
        ever read twice (what shows that a reader never starts over)."""

    def read_new(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                chunk = handle.read()
        except FileNotFoundError:
            return []
        self.bytes_read += len(chunk)
        end = chunk.rfind(b"\n") + 1
        self.offset += end
        return list(_parse_events(chunk[:end]))


def _parse_events(chunk: bytes) -> Iterator[dict[str, Any]]:
    for raw in chunk.splitlines():
        if not raw.strip():
            continue
        try:
            event = json.loads(raw)
        except ValueError:
            event = None
        if isinstance(event, dict):
            yield event
        else:
            yield {"type": "unreadable", "line": raw.decode("utf-8", "replace")[:200]}
