"""Starting, following, stopping and resuming evals as detached jobs; sending losses to the data.

This is the API the Eval screen and `workbench eval` share:

    eval_dir = create_eval(workspace, Path("exports/x/model-f16.gguf"), baseline="stored")
    start_eval(eval_dir)                      # a detached `python -m workbench.evaluate.runner`
    for event in follow_eval(eval_dir, cancel):
        ...                                   # Started, Progress, ItemJudged, ..., Finished
    report = load_report(eval_dir, workspace.config.eval)

Nothing here imports `anthropic`, `httpx` or `llama_cpp`.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from workbench.config import WorkbenchConfig
from workbench.data.store import ExampleStore
from workbench.evaluate.evalset import select_items, write_items
from workbench.evaluate.events import EvalEvent, Finished, event_from_dict
from workbench.evaluate.judge import missing_key_message
from workbench.evaluate.report import load_report
from workbench.evaluate.spec import EvalError, EvalSpec, load_spec, save_spec, spec_from_config
from workbench.jobs import (
    EventTail,
    JobStatus,
    new_job_id,
    observed_status,
    read_status,
    start_detached,
    write_status,
)
from workbench.workspace import Workspace

FOLLOW_POLL_S = 0.25


def key_problem(config: WorkbenchConfig) -> str | None:
    """What to set before an eval can run (None when the judge's API key is in the
    environment): for the Eval screen to show before the user starts anything."""
    env_name = config.eval.api_key_env
    return None if os.environ.get(env_name, "").strip() else missing_key_message(env_name)


def check_ready(spec: EvalSpec) -> None:
    """EvalError, saying what to do, when the eval cannot start (no key, no model...)."""
    if not os.environ.get(spec.api_key_env, "").strip():
        raise EvalError(missing_key_message(spec.api_key_env))
    if not Path(spec.model).is_file():
        raise EvalError(f"{spec.model}: no such GGUF file: export the model first")
    if spec.baseline == "http" and not spec.baseline_url:
        raise EvalError(
            "baseline http needs eval.baseline_url: `workbench config set "
            'eval.baseline_url="http://host:8000/v1"`'
        )
    if spec.baseline == "cmd" and not spec.baseline_command.strip():
        raise EvalError(
            "baseline cmd needs eval.baseline_command: `workbench config set "
            'eval.baseline_command="./old_pipeline.sh"` (reads stdin, writes stdout)'
        )


def create_eval(workspace: Workspace, model: Path, **overrides: Any) -> Path:
    """A new eval directory with its settings and frozen eval set; returns its path.

    `overrides` are EvalSpec fields (baseline, limit, judge_model, concurrency, batch, split,
    filter_text, tag...); None values keep the workspace's settings.
    """
    spec = spec_from_config(workspace.config, model, **overrides)
    check_ready(spec)
    with ExampleStore(workspace.db_path) as store:
        items = select_items(store, spec.split, spec.limit, spec.filter_text, spec.tag)
    eval_dir = workspace.evals_dir / new_job_id()
    eval_dir.mkdir(parents=True)
    save_spec(eval_dir, spec)
    write_items(eval_dir, items)
    write_status(eval_dir, JobStatus(id=eval_dir.name, kind="eval", state="queued"))
    return eval_dir


def runner_argv(eval_dir: Path) -> list[str]:
    """The command line of the detached eval process."""
    return [sys.executable, "-m", "workbench.evaluate.runner", str(eval_dir)]


def start_eval(eval_dir: Path) -> JobStatus:
    """Run the eval (new or to resume) as a detached process; the API key travels in its
    environment only."""
    status = observed_status(eval_dir)
    if status is not None and status.active:
        raise EvalError(f"eval {eval_dir.name} is already running (pid {status.pid})")
    started = status.started_at if status is not None and status.state != "queued" else None
    return start_detached(eval_dir, "eval", runner_argv(eval_dir), started_at=started)


def resume_eval(workspace: Workspace, eval_id: str) -> JobStatus:
    """Start a stopped, failed or finished eval again: only unfinished or failed items are
    redone, and cached judgments are free."""
    eval_dir = find_eval(workspace, eval_id)
    check_ready(load_spec(eval_dir))
    return start_eval(eval_dir)


def stop_eval(eval_dir: Path) -> bool:
    """Ask a running eval to stop (it finishes the answer in progress); False if not running."""
    status = read_status(eval_dir)
    if status is None or observed_status(eval_dir) is None or not status.active or not status.pid:
        return False
    try:
        os.kill(status.pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    return True


def find_eval(workspace: Workspace, eval_id: str) -> Path:
    """The directory of eval `eval_id` (a unique prefix is enough); EvalError if none."""
    base = workspace.evals_dir
    exact = base / eval_id
    if eval_id and (exact / "spec.json").is_file():
        return exact
    matches = [p for p in base.glob(f"{eval_id}*") if (p / "spec.json").is_file()]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise EvalError(f"no eval {eval_id!r} in {base}: `workbench eval list` shows them")
    raise EvalError(f"{eval_id!r} matches {len(matches)} evals: give more of the id")


def follow_eval(
    eval_dir: Path, cancel: threading.Event | None = None, poll_s: float = FOLLOW_POLL_S
) -> Iterator[EvalEvent]:
    """The eval's events, history first, then live until its process ends (the last event is
    then a `Finished`, made up from `status.json` if the process died without writing one), or
    until `cancel` is set."""
    tail = EventTail(eval_dir)
    cancel = cancel or threading.Event()
    last: EvalEvent | None = None
    while not cancel.is_set():
        for raw in tail.read_new():
            if (event := event_from_dict(raw)) is not None:
                last = event
                yield event
        status = observed_status(eval_dir)
        if status is not None and not status.active and status.state != "queued":
            for raw in tail.read_new():
                if (event := event_from_dict(raw)) is not None:
                    last = event
                    yield event
            if not isinstance(last, Finished) or status.state == "lost":
                yield _final_from_status(status)
            return
        cancel.wait(poll_s)


def _final_from_status(status: JobStatus) -> Finished:
    """The Finished event of a job that ended without writing one (killed, crashed)."""
    if status.state == "lost":
        return Finished("failed", "the eval process ended unexpectedly: resume it", 0, 0)
    state = status.state if status.state in ("finished", "stopped") else "failed"
    return Finished(state, status.message or f"the eval is {status.state}", 0, 0)


def send_to_data(
    workspace: Workspace, eval_dir: Path, index: int, answer: str | None = None
) -> int:
    """Add an eval item as a training example: its input with `answer` (default: the old
    pipeline's answer); returns the new example's id."""
    report = load_report(eval_dir)
    entry = next((i for i in report.items if i.item.index == index), None)
    if entry is None:
        raise EvalError(f"eval {eval_dir.name} has no item {index}")
    text = entry.baseline_text if answer is None else answer
    if not text.strip():
        raise EvalError("the answer is empty: write one before sending it to the data")
    record = {"messages": [*entry.item.messages, {"role": "assistant", "content": text}]}
    with ExampleStore(workspace.db_path) as store:
        (example_id,) = store.add_examples(
            [record],
            source=f"eval:{eval_dir.name}:{index}",
            label=f"add eval item {index} to the data",
            split="train",
            tags=["from-eval"],
        )
    return example_id
