"""Sweeps: several run variants queued one after another on the one GPU, ranked by eval loss.

A sweep file (TOML) names the settings to vary, on top of the workspace's `[train]` table::

    [base]                       # optional: applies to every variant
    max_steps = 60
    [grid]                       # optional: every combination of these lists
    learning_rate = [1e-4, 3e-4]
    lora_r = [8, 16]
    [[variant]]                  # optional: explicit variants (after the grid's)
    name = "long"                # optional label
    epochs = 3

Every variant is checked before anything starts; then each becomes a queued run (sharing the
same frozen data) and a detached sweep process (`python -m workbench.train.sweep SWEEP_DIR`)
runs them in turn. `sweeps/<id>/` holds `sweep.json`, `status.json` and `events.jsonl`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import signal
import sys
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from workbench.config import atomic_write_text
from workbench.jobs import (
    ACTIVE_STATES,
    JobStatus,
    append_event,
    new_job_id,
    observed_status,
    pid_alive,
    read_status,
    signal_job,
    start_detached,
    update_status,
    write_status,
)
from workbench.train.config import Device, probe_device
from workbench.train.data import DataError, collect_examples
from workbench.train.runs import (
    BEST_DIR,
    CHECKPOINTS_DIR,
    RunRefused,
    RunSummary,
    create_run,
    launch_run,
    load_run,
    plan_run,
    runner_env,
)
from workbench.workspace import Workspace

SWEEP_FILE = "sweep.json"
MAX_VARIANTS = 64


@dataclass(frozen=True)
class Variant:
    """One set of overrides and its label."""

    name: str
    overrides: dict[str, Any]


def read_sweep_file(path: Path) -> list[Variant]:
    """The variants a sweep file describes; RunRefused names the file and the problem."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RunRefused([f"{path}: cannot read: {exc.strerror}"]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise RunRefused([f"{path}: invalid TOML: {exc}"]) from exc
    return parse_sweep(raw, path)


def parse_sweep(raw: Mapping[str, Any], path: Path) -> list[Variant]:
    """Expand `[base]`, `[grid]` and `[[variant]]` into the list of variants."""
    unknown = sorted(set(raw) - {"base", "grid", "variant"})
    if unknown:
        raise RunRefused([f"{path}: unknown table {unknown[0]!r} (allowed: base, grid, variant)"])
    base = dict(raw.get("base", {}))
    variants = [*_grid(raw.get("grid", {}), path), *_listed(raw.get("variant", []), path)]
    if not variants:
        raise RunRefused([f"{path}: no variants: add a [grid] table or [[variant]] entries"])
    if len(variants) > MAX_VARIANTS:
        raise RunRefused([f"{path}: {len(variants)} variants; at most {MAX_VARIANTS} per sweep"])
    return [Variant(v.name, {**base, **v.overrides}) for v in variants]


def _grid(grid: Mapping[str, Any], path: Path) -> list[Variant]:
    if not grid:
        return []
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise RunRefused([f"{path}: grid.{key} must be a non-empty list of values"])
    keys = list(grid)
    return [
        Variant(_label(dict(zip(keys, combo, strict=True))), dict(zip(keys, combo, strict=True)))
        for combo in itertools.product(*(grid[key] for key in keys))
    ]


def _listed(entries: Sequence[Any], path: Path) -> list[Variant]:
    variants = []
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            raise RunRefused([f"{path}: variant {number} must be a table of settings"])
        overrides = {key: value for key, value in entry.items() if key != "name"}
        variants.append(Variant(str(entry.get("name") or _label(overrides)), overrides))
    return variants


def _label(overrides: Mapping[str, Any]) -> str:
    return " ".join(f"{key}={value}" for key, value in overrides.items()) or "defaults"


# --- starting ----------------------------------------------------------------------------------


def start_sweep(
    workspace: Workspace, path: Path, keep_best: bool = False, device: Device | None = None
) -> Path:
    """Check every variant, queue their runs and launch the sweep; the sweep's directory.

    Nothing is written if any variant is refused (the error names it).
    """
    variants = read_sweep_file(path)
    device = device or probe_device()
    try:
        data = collect_examples(workspace.db_path)
    except DataError as exc:
        raise RunRefused([str(exc)]) from exc
    plans = []
    for variant in variants:
        try:
            plans.append(plan_run(workspace, variant.overrides, device, data=data))
        except RunRefused as exc:
            raise RunRefused(
                [f"variant {variant.name!r}: {line}" for line in exc.problems]
            ) from exc
    sweep_id = new_job_id()
    sweep_dir = workspace.root / "sweeps" / sweep_id
    sweep_dir.mkdir(parents=True)
    runs = [
        {
            "name": variant.name,
            "overrides": variant.overrides,
            "run_id": create_run(workspace, plan, "queued", sweep_id, variant.name).name,
        }
        for variant, plan in zip(variants, plans, strict=True)
    ]
    _write_sweep(sweep_dir, {"file": str(path), "keep_best": keep_best, "runs": runs})
    write_status(sweep_dir, JobStatus(id=sweep_id, kind="sweep", state="queued"))
    argv = [sys.executable, "-m", "workbench.train.sweep", str(sweep_dir)]
    start_detached(sweep_dir, "sweep", argv, env=runner_env())
    return sweep_dir


def _write_sweep(sweep_dir: Path, data: Mapping[str, Any]) -> None:
    atomic_write_text(sweep_dir / SWEEP_FILE, json.dumps(data, indent=2) + "\n")


def read_sweep(sweep_dir: Path) -> dict[str, Any]:
    """`sweep.json`: the file, keep_best, and each variant's name, overrides and run id."""
    try:
        data = json.loads((sweep_dir / SWEEP_FILE).read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise RunRefused([f"{sweep_dir}: not a sweep ({exc})"]) from exc
    return data if isinstance(data, dict) else {}


def find_sweep(workspace: Workspace, sweep_id: str) -> Path:
    """The sweep named by an id, a unique prefix or suffix, or `last`."""
    base = workspace.root / "sweeps"
    sweeps = sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
    if sweep_id == "last" and sweeps:
        return sweeps[-1]
    matches = [p for p in sweeps if p.name == sweep_id] or [
        p for p in sweeps if p.name.startswith(sweep_id) or p.name.endswith(sweep_id)
    ]
    if len(matches) != 1:
        what = "no sweep" if not matches else "several sweeps match"
        raise RunRefused([f"{what} {sweep_id!r} in {base}"])
    return matches[0]


def stop_sweep(sweep_dir: Path) -> bool:
    """Stop a sweep: its current run stops gracefully, the queued ones never start."""
    status = observed_status(sweep_dir)
    if status is None or status.state not in ACTIVE_STATES:
        return False
    return signal_job(sweep_dir)


# --- the sweep process ---------------------------------------------------------------------------


def run_sweep(sweep_dir: Path) -> int:
    """Run the queued variants one after another (the detached sweep process)."""
    sweep = read_sweep(sweep_dir)
    runs_dir = sweep_dir.parent.parent / "runs"
    stopping = _stop_flag(sweep_dir, runs_dir, sweep)
    update_status(sweep_dir, state="running", message="")
    for index, entry in enumerate(sweep["runs"]):
        run_dir = runs_dir / entry["run_id"]
        if stopping["stop"]:
            _mark_stopped(run_dir)
            continue
        _run_one(sweep_dir, run_dir, index, entry, stopping)
    summary = sweep_summary(sweep_dir)
    best = summary[0] if summary and summary[0].best_eval_loss is not None else None
    if sweep.get("keep_best") and best is not None and not stopping["stop"]:
        keep_best(sweep_dir)
    state = "stopped" if stopping["stop"] else "finished"
    message = f"best: {best.id} ({best.variant})" if best else "no variant measured an eval loss"
    append_event(
        sweep_dir, {"type": "finished", "state": state, "best_run": best.id if best else None}
    )
    update_status(sweep_dir, state=state, message=message)
    return 0


def _run_one(
    sweep_dir: Path, run_dir: Path, index: int, entry: Mapping[str, Any], stopping: dict[str, Any]
) -> None:
    status = read_status(run_dir)
    if status is None or status.state != "queued":
        return
    name, run_id = entry["name"], entry["run_id"]
    append_event(
        sweep_dir, {"type": "variant_started", "index": index, "name": name, "run_id": run_id}
    )
    update_status(
        sweep_dir, message=f"variant {index + 1}/{len(read_sweep(sweep_dir)['runs'])}: {name}"
    )
    stopping["current"] = run_dir
    child = launch_run(run_dir)
    _wait(child.pid or 0)
    stopping["current"] = None
    summary = load_run(run_dir)
    append_event(
        sweep_dir,
        {
            "type": "variant_finished",
            "index": index,
            "name": name,
            "run_id": run_id,
            "state": summary.state,
            "best_eval_loss": summary.best_eval_loss,
        },
    )


def _wait(pid: int) -> None:
    """Wait for our child run (signals may arrive meanwhile: the wait resumes after them)."""
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:  # not our child (a relaunched sweep): poll
        while pid_alive(pid):
            time.sleep(0.5)


def _stop_flag(sweep_dir: Path, runs_dir: Path, sweep: Mapping[str, Any]) -> dict[str, Any]:
    """SIGTERM stops the current run gracefully and leaves the rest queued as stopped."""
    flag: dict[str, Any] = {"stop": False, "current": None}

    def stop(signum: int, frame: FrameType | None) -> None:
        flag["stop"] = True
        update_status(sweep_dir, state="stopping", message="stopping the current run")
        if flag["current"] is not None:
            signal_job(flag["current"])

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    return flag


def _mark_stopped(run_dir: Path) -> None:
    status = read_status(run_dir)
    if status is not None and status.state == "queued":
        update_status(run_dir, state="stopped", message="the sweep was stopped before this run")


# --- results -------------------------------------------------------------------------------------


def sweep_summary(sweep_dir: Path) -> list[RunSummary]:
    """The sweep's runs, best eval loss first (runs without one last)."""
    runs_dir = sweep_dir.parent.parent / "runs"
    summaries = [
        load_run(runs_dir / entry["run_id"])
        for entry in read_sweep(sweep_dir).get("runs", [])
        if (runs_dir / entry["run_id"]).is_dir()
    ]
    return sorted(
        summaries,
        key=lambda run: (run.best_eval_loss is None, run.best_eval_loss or 0.0, run.id),
    )


def keep_best(sweep_dir: Path) -> RunSummary:
    """Keep the best variant's run; delete the other variants' weights (their logs stay)."""
    ranked = sweep_summary(sweep_dir)
    if not ranked or ranked[0].best_eval_loss is None:
        raise RunRefused([f"sweep {sweep_dir.name}: no variant has an eval loss yet"])
    best, others = ranked[0], ranked[1:]
    for run in others:
        status = observed_status(run.dir)
        if status is not None and status.state in ACTIVE_STATES:
            continue
        shutil.rmtree(run.dir / CHECKPOINTS_DIR, ignore_errors=True)
        shutil.rmtree(run.dir / BEST_DIR, ignore_errors=True)
        update_status(run.dir, message=f"weights removed: sweep kept {best.id}")
    sweep = read_sweep(sweep_dir)
    _write_sweep(sweep_dir, {**sweep, "kept": best.id})
    return best


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m workbench.train.sweep SWEEP_DIR`: the detached sweep process."""
    parser = argparse.ArgumentParser(prog="python -m workbench.train.sweep")
    parser.add_argument("sweep_dir", type=Path)
    args = parser.parse_args(argv)
    return run_sweep(args.sweep_dir.resolve())


if __name__ == "__main__":
    sys.exit(main())
