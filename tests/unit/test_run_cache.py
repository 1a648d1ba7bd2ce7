"""The Train screen's run cache: whichever reader (list refresh or follower) reads a log first,
a follower gets every record once and in order, the file is read only incrementally, and runs
whose directories were deleted are forgotten."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from workbench.jobs import JobStatus, write_status
from workbench.train.events import Step, event_to_dict
from workbench.train.runs import KEEP_RECORDS, ReadMark, RunCache, RunRecords
from workbench.workspace import Workspace

T0 = 1_772_000_000.0


def make_run(workspace: Workspace, run_id: str, started_at: float = T0) -> Path:
    """A finished run with an empty log, as `create_run` and the runner leave it."""
    run_dir = workspace.runs_dir / run_id
    run_dir.mkdir(parents=True)
    write_status(run_dir, JobStatus(run_id, "run", "finished", None, started_at, started_at))
    (run_dir / "events.jsonl").touch()
    return run_dir


def append_steps(run_dir: Path, first: int, last: int, total: int = 1000) -> None:
    """Steps `first`..`last`, appended as the runner appends them."""
    with open(run_dir / "events.jsonl", "a", encoding="utf-8") as handle:
        for n in range(first, last + 1):
            event = Step(n, total, n / 10, 2.0 / n, 2e-4, elapsed_s=float(n))
            handle.write(json.dumps({"time": T0 + n, **event_to_dict(event)}) + "\n")


def step_numbers(records: list[dict[str, object]]) -> list[object]:
    return [record["step"] for record in records]


class Follower:
    """What the Train screen's follow worker keeps: its mark and every record it was handed."""

    def __init__(self, cache: RunCache, run_dir: Path) -> None:
        self.cache, self.run_dir = cache, run_dir
        self.mark: ReadMark | None = None
        self.got: list[dict[str, object]] = []
        self.last: RunRecords | None = None

    def poll(self) -> RunRecords | None:
        read = self.cache.since(self.run_dir, self.mark)
        if read is not None:
            assert not read.restarted or self.mark is None, "a continuation was restarted"
            self.got += read.records
            self.mark, self.last = read.mark, read
        return read


@pytest.mark.parametrize("seed", range(6))
def test_a_follower_gets_every_record_once_in_order_whoever_reads_the_log(
    workspace: Workspace, seed: int
):
    run_dir = make_run(workspace, "20260225-110000-cccc")
    cache, chance = RunCache(), random.Random(seed)
    follower, written = Follower(cache, run_dir), 0
    follower.poll()  # the run is picked while its log is still empty
    for _ in range(40):
        action = chance.choice(["append", "append", "list", "list", "follow"])
        if action == "append":
            batch = chance.randint(1, 7)
            append_steps(run_dir, written + 1, written + batch)
            written += batch
        elif action == "list":
            cache.list_runs(workspace)  # the 2 s refresh reads the same log first
        else:
            follower.poll()
    cache.summary(run_dir)
    follower.poll()
    assert step_numbers(follower.got) == list(range(1, written + 1))
    assert follower.last is not None and follower.last.history.step == written
    assert follower.poll() is None  # nothing new: nothing handed twice
    size = (run_dir / "events.jsonl").stat().st_size
    assert cache.entry(run_dir).tail.bytes_read == size  # each byte read once


def test_records_a_list_refresh_read_first_reach_the_follower(workspace: Workspace):
    run_dir = make_run(workspace, "20260225-110000-cccc")
    append_steps(run_dir, 1, 2)
    cache = RunCache()
    follower = Follower(cache, run_dir)
    follower.poll()
    append_steps(run_dir, 3, 3)
    assert cache.summary(run_dir).step == 3  # the refresh read step 3 before the follower
    read = follower.poll()
    assert read is not None and not read.restarted
    assert step_numbers(read.records) == [3]
    assert read.history.step == 3


def test_a_follower_starting_from_a_peek_gets_only_what_came_after(workspace: Workspace):
    run_dir = make_run(workspace, "20260225-110000-cccc")
    append_steps(run_dir, 1, 4)
    cache = RunCache()
    cache.list_runs(workspace)
    shown = cache.peek(run_dir, wait=False)
    assert shown is not None and step_numbers(shown.records) == [1, 2, 3, 4]
    append_steps(run_dir, 5, 6)
    read = cache.since(run_dir, shown.mark)
    assert read is not None and not read.restarted
    assert step_numbers(read.records) == [5, 6]


def test_more_records_than_are_kept_restart_the_follower_with_the_last_ones(
    workspace: Workspace,
):
    run_dir = make_run(workspace, "20260225-110000-cccc")
    cache = RunCache()
    follower = Follower(cache, run_dir)
    follower.poll()
    append_steps(run_dir, 1, KEEP_RECORDS + 50)
    cache.summary(run_dir)
    read = cache.since(run_dir, follower.mark)
    assert read is not None and read.restarted
    assert step_numbers(read.records) == list(range(51, KEEP_RECORDS + 51))
    assert len(read.history.steps) == KEEP_RECORDS + 50  # the history misses nothing


def test_a_rewritten_log_restarts_the_follower(workspace: Workspace):
    run_dir = make_run(workspace, "20260225-110000-cccc")
    append_steps(run_dir, 1, 5)
    cache = RunCache()
    follower = Follower(cache, run_dir)
    follower.poll()
    (run_dir / "events.jsonl").write_text("")
    append_steps(run_dir, 1, 2)
    read = cache.since(run_dir, follower.mark)
    assert read is not None and read.restarted
    assert step_numbers(read.records) == [1, 2] and read.history.step == 2


def test_runs_whose_directories_were_deleted_are_forgotten(workspace: Workspace):
    kept = make_run(workspace, "20260225-090000-aaaa", T0)
    gone = make_run(workspace, "20260225-100000-bbbb", T0 + 1)
    for run_dir in (kept, gone):
        append_steps(run_dir, 1, 3)
    cache = RunCache()
    assert [run.id for run in cache.list_runs(workspace)] == [kept.name, gone.name]
    entry = cache.entry(kept)
    mark = cache.since(gone, None)
    shutil.rmtree(gone)
    assert [run.id for run in cache.list_runs(workspace)] == [kept.name]
    assert cache.peek(gone) is None
    assert cache.entry(kept) is entry  # the kept run is not read again
    gone.mkdir()  # a run of the same name again: an old mark is no place in its log
    append_steps(gone, 1, 1)
    assert mark is not None
    read = cache.since(gone, mark.mark)
    assert read is not None and read.restarted and step_numbers(read.records) == [1]
