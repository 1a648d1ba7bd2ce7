"""Capture and synth as detached jobs: start, resume, stop, list and wait for them.

A job lives in `captures/<id>/` or `synths/<id>/` of the workspace, like the other long jobs:
`job.json` (what to do; never a key), `status.json`, `events.jsonl`, `output.log`. The process
runs `python -m workbench.collect.runner JOB_DIR` in its own session, so closing the app or
losing SSH stops nothing.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Collection
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal, cast

from workbench.collect.settings import CaptureSettings
from workbench.collect.synth import SynthSpec
from workbench.jobs import (
    EventTail,
    JobKind,
    JobStatus,
    new_job_id,
    observed_status,
    pid_alive,
    read_status,
    signal_job,
    start_detached,
)
from workbench.workspace import Workspace

CollectKind = Literal["capture", "synth"]
JOB_DIRS: dict[CollectKind, str] = {"capture": "captures", "synth": "synths"}
JOB_FILE = "job.json"


class LaunchError(Exception):
    """A job that cannot be started, resumed or found; the message says what to do."""


def jobs_root(workspace: Workspace, kind: CollectKind) -> Path:
    return workspace.root / JOB_DIRS[kind]


def job_dir(workspace: Workspace, kind: CollectKind, job_id: str) -> Path:
    return jobs_root(workspace, kind) / job_id


def read_job(path: Path) -> dict[str, Any]:
    """A job's `job.json`: kind, workspace and settings."""
    try:
        data = json.loads((path / JOB_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LaunchError(f"{path}: no readable {JOB_FILE}") from exc
    if not isinstance(data, dict):
        raise LaunchError(f"{path / JOB_FILE}: not a job description")
    return data


def _launch(workspace: Workspace, kind: CollectKind, path: Path, settings: dict) -> JobStatus:
    path.mkdir(parents=True, exist_ok=True)
    job = {"kind": kind, "workspace": str(workspace.root), "settings": settings}
    (path / JOB_FILE).write_text(json.dumps(job, indent=2) + "\n", encoding="utf-8")
    argv = [sys.executable, "-m", "workbench.collect.runner", str(path)]
    previous = read_status(path)
    started = previous.started_at if previous is not None else None
    return start_detached(path, cast(JobKind, kind), argv, env=os.environ, started_at=started)


def start_capture(workspace: Workspace, settings: CaptureSettings) -> JobStatus:
    """Start the capture proxy in the background."""
    path = job_dir(workspace, "capture", new_job_id())
    return _launch(workspace, "capture", path, asdict(settings))


def start_synth(workspace: Workspace, spec: SynthSpec) -> JobStatus:
    """Start generating synthetic examples in the background."""
    job_id = new_job_id()
    spec = SynthSpec(**{**asdict(spec), "job_id": job_id})
    return _launch(workspace, "synth", job_dir(workspace, "synth", job_id), asdict(spec))


def resume_synth(workspace: Workspace, job_id: str) -> JobStatus:
    """Run a synth job again: calls already answered come from its cache, unpaid."""
    path = job_dir(workspace, "synth", job_id)
    status = observed_status(path)
    if status is None:
        raise LaunchError(f"no synth job {job_id}: `workbench synth --list` shows them")
    if status.active:
        raise LaunchError(f"synth job {job_id} is still running")
    return _launch(workspace, "synth", path, read_job(path)["settings"])


def list_jobs(workspace: Workspace, kind: CollectKind) -> list[JobStatus]:
    """The jobs of one kind, oldest first."""
    root = jobs_root(workspace, kind)
    if not root.is_dir():
        return []
    found = [s for d in root.iterdir() if d.is_dir() and (s := observed_status(d)) is not None]
    return sorted(found, key=lambda job: (job.started_at, job.id))


def running(workspace: Workspace, kind: CollectKind) -> list[JobStatus]:
    return [job for job in list_jobs(workspace, kind) if job.active]


def stop(workspace: Workspace, kind: CollectKind, job_id: str, wait_s: float = 30.0) -> JobStatus:
    """Ask a job to stop (SIGTERM: it finishes what is in flight) and wait until it has."""
    path = job_dir(workspace, kind, job_id)
    signal_job(path, signal.SIGTERM)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        status = read_status(path)
        if status is None or not status.active or not pid_alive(status.pid):
            break
        time.sleep(0.1)
    final = observed_status(path)
    if final is None:
        raise LaunchError(f"no {kind} job {job_id}")
    return final


def wait_for_event(
    path: Path, types: Collection[str], timeout: float = 15.0
) -> dict[str, Any] | None:
    """The first event of one of `types` the job writes, or None (timed out or it ended)."""
    tail = EventTail(path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in tail.read_new():
            if event.get("type") in types:
                return event
        status = read_status(path)
        if status is not None and not status.active:
            return next((e for e in tail.read_new() if e.get("type") in types), None)
        time.sleep(0.05)
    return None
