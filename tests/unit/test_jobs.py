"""Detached jobs: their own session, their files, and readers that survive partial writes."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

from workbench.jobs import (
    EventTail,
    JobStatus,
    append_event,
    list_jobs,
    new_job_id,
    observed_status,
    read_status,
    running_jobs,
    start_detached,
    update_status,
    write_status,
)


def wait_for(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_detached_job_runs_in_its_own_session_and_is_seen_running(tmp_path: Path) -> None:
    job_dir = tmp_path / "runs" / new_job_id()
    script = "import os, time; print(os.getsid(0), flush=True); time.sleep(30)"
    status = start_detached(job_dir, "run", [sys.executable, "-c", script])
    try:
        wait_for(lambda: (job_dir / "output.log").read_text().strip() != "")
        session = int((job_dir / "output.log").read_text().split()[0])
        assert session == status.pid != os.getsid(0)
        assert [job.id for job in running_jobs(tmp_path)] == [job_dir.name]
    finally:
        os.killpg(status.pid or 0, signal.SIGKILL)
    wait_for(lambda: observed_status(job_dir).state == "lost")  # type: ignore[union-attr]
    assert running_jobs(tmp_path) == []


def test_finished_job_stays_finished(tmp_path: Path) -> None:
    job_dir = tmp_path / "exports" / "e1"
    job_dir.mkdir(parents=True)
    write_status(job_dir, JobStatus(id="e1", kind="export", state="running", pid=os.getpid()))
    update_status(job_dir, state="finished", message="3 files")
    jobs = list_jobs(tmp_path)
    assert [(job.id, job.state, job.message) for job in jobs] == [("e1", "finished", "3 files")]


def test_unreadable_status_is_skipped_not_fatal(tmp_path: Path) -> None:
    job_dir = tmp_path / "runs" / "broken"
    job_dir.mkdir(parents=True)
    (job_dir / "status.json").write_text("{not json")
    assert read_status(job_dir) is None
    assert list_jobs(tmp_path) == []


def test_event_tail_returns_each_event_once_and_waits_for_whole_lines(tmp_path: Path) -> None:
    tail = EventTail(tmp_path)
    assert tail.read_new() == []
    append_event(tmp_path, {"type": "step", "step": 1, "loss": 2.5})
    append_event(tmp_path, {"type": "step", "step": 2, "loss": 2.25})
    assert [event["step"] for event in tail.read_new()] == [1, 2]
    with open(tmp_path / "events.jsonl", "a") as handle:
        handle.write(json.dumps({"type": "step", "step": 3})[:10])
    assert tail.read_new() == []
    with open(tmp_path / "events.jsonl", "a") as handle:
        handle.write(json.dumps({"type": "step", "step": 3})[10:] + "\nnot json\n")
    events = tail.read_new()
    assert events[0]["step"] == 3
    assert events[1]["type"] == "unreadable"


def test_job_ids_sort_by_time() -> None:
    first, second = new_job_id(1_000_000_000), new_job_id(1_000_000_060)
    assert first < second
