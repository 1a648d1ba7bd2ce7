"""Training from the shell, end to end on the tiny model: detached runs that survive their
launcher, kill -9 and resume, graceful stop, refusals that leave the workspace alone, sweeps."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.data.store import ExampleStore
from workbench.jobs import observed_status, read_events
from workbench.train.runs import last_checkpoint, read_history
from workbench.train.sweep import read_sweep
from workbench.workspace import Workspace

pytestmark = pytest.mark.slow

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "imports" / "seo_pairs.jsonl"
TINY = {
    "train.base_model": "workbench:demo-tiny",
    "train.max_seq_length": 96,
    "train.batch_size": 4,
    "train.max_steps": 8,
    "train.eval_steps": 4,
    "train.lora_r": 4,
    "train.lora_alpha": 8,
    "train.learning_rate": 1e-3,
}


def add_examples(workspace: Workspace, train: int, val: int, system_prompt: bool = False) -> None:
    records = [json.loads(line) for line in SAMPLE.read_text().splitlines()[: train + val]]
    if not system_prompt:
        for record in records:
            record["messages"] = [m for m in record["messages"] if m["role"] != "system"]
    with ExampleStore(workspace.db_path) as store:
        ids = store.add_examples(records, source="seo_pairs.jsonl")
        store.set_split(ids[:train], "train")
        store.set_split(ids[train:], "val")


@pytest.fixture
def ready(workspace: Workspace) -> Workspace:
    """A workspace with 24 train and 6 val examples, set to train the tiny model briefly."""
    add_examples(workspace, train=24, val=6)
    return workspace.set_values(dict(TINY))


def cli(workspace: Workspace, *args: str) -> int:
    return main(["-w", str(workspace.root), *args])


def wait_for(predicate: Callable[[], object], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def state(run_dir: Path) -> str:
    status = observed_status(run_dir)
    return status.state if status else "missing"


def has_event(run_dir: Path, **fields: object) -> bool:
    return any(all(e.get(k) == v for k, v in fields.items()) for e in read_events(run_dir))


def start(workspace: Workspace, capsys: pytest.CaptureFixture[str], *args: str) -> Path:
    assert cli(workspace, "train", *args) == 0
    run_id = capsys.readouterr().out.strip().splitlines()[-1]
    return workspace.runs_dir / run_id


def test_a_run_outlives_its_launcher_and_keeps_its_whole_history(
    ready: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    launcher = subprocess.Popen(
        [sys.executable, "-m", "workbench.cli", "-w", str(ready.root), "train", "--follow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    assert launcher.stdout is not None
    run_dir = ready.runs_dir / launcher.stdout.readline().strip()
    while not launcher.stdout.readline().startswith("step "):
        pass
    os.killpg(launcher.pid, signal.SIGHUP)  # the terminal closes: the launcher and its group
    # Killed by the hang-up, or (on a fast machine) already done following a short run.
    assert launcher.wait(timeout=30) in (-signal.SIGHUP, 0)

    assert cli(ready, "runs", "follow", run_dir.name) == 0
    followed = capsys.readouterr().out
    assert followed.startswith("loading the base model\n")  # the history, from the start
    assert "training on cpu with hf: 8 steps, 24 train / 6 val examples" in followed
    assert "eval at step 4: eval loss" in followed and "eval at step 8: eval loss" in followed
    assert "finished: completed 8 steps, best eval loss" in followed

    assert cli(ready, "runs", "show", run_dir.name[-4:], "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["state"], shown["step"], shown["total_steps"]) == ("finished", 8, 8)
    assert shown["best_step"] in (4, 8) and shown["best_eval_loss"] > 0
    assert (shown["train_examples"], shown["val_examples"]) == (24, 6)
    assert shown["config"]["max_steps"] == 8 and len(shown["data_hash"]) == 64
    assert (run_dir / "best" / "adapter_model.safetensors").is_file()
    assert len((run_dir / "train.jsonl").read_text().splitlines()) == 24
    environment = json.loads((run_dir / "environment.json").read_text())
    assert environment["packages"]["transformers"] == "5.17.0" and environment["gpus"] == []

    assert cli(ready, "runs", "list") == 0
    assert f"{run_dir.name}  finished" in capsys.readouterr().out


def test_kill_9_then_resume_then_stop_then_resume_continues_the_curves(
    ready: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = start(ready, capsys, "--set", "max_steps=24")
    wait_for(lambda: has_event(run_dir, type="checkpoint", step=4, kind="checkpoint"))
    os.kill(observed_status(run_dir).pid or 0, signal.SIGKILL)  # type: ignore[union-attr]
    wait_for(lambda: state(run_dir) == "lost")

    assert cli(ready, "runs", "resume", run_dir.name) == 0
    wait_for(lambda: has_event(run_dir, type="resumed", from_step=last_step(run_dir, "resumed")))
    wait_for(lambda: read_history(run_dir).step > 6)
    assert cli(ready, "runs", "stop", run_dir.name) == 0
    wait_for(lambda: state(run_dir) == "stopped")
    stopped_at = read_history(run_dir).step
    checkpoint = last_checkpoint(run_dir)
    assert checkpoint is not None and checkpoint.name == f"checkpoint-{stopped_at}"

    capsys.readouterr()
    assert cli(ready, "runs", "resume", run_dir.name, "--follow") == 0
    assert f"resuming from step {stopped_at}" in capsys.readouterr().out
    history = read_history(run_dir)
    assert [point.step for point in history.steps] == list(range(1, 25))
    assert [point.step for point in history.evals] == list(range(4, 25, 4))
    assert history.finished is not None and history.finished.state == "finished"
    resumes = [e["from_step"] for e in read_events(run_dir) if e["type"] == "resumed"]
    assert resumes[0] >= 4 and resumes[1] == stopped_at
    assert state(run_dir) == "finished"


def last_step(run_dir: Path, kind: str) -> int | None:
    found = [e.get("from_step") for e in read_events(run_dir) if e["type"] == kind]
    return found[-1] if found else -1


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("no-val", "hold some examples out (S on the Data screen"),
        ("bad-model", "train.base_model = '/nonexistent/model': no such directory"),
        ("short-max-length", "train.max_seq_length = 64 is below the prompt length of 30 of 30"),
    ],
)
def test_a_refused_run_says_why_and_leaves_the_workspace_unchanged(
    workspace: Workspace, capsys: pytest.CaptureFixture[str], case: str, expected: str
) -> None:
    add_examples(
        workspace,
        train=24 if case != "no-val" else 30,
        val=6 if case != "no-val" else 0,
        system_prompt=case == "short-max-length",
    )
    ready = workspace.set_values(dict(TINY))
    toml_before = ready.config_path.read_bytes()
    with ExampleStore(ready.db_path) as store:
        splits_before = store.split_counts()
    overrides = {
        "no-val": [],
        "bad-model": ["--set", "base_model=/nonexistent/model"],
        "short-max-length": ["--set", "max_seq_length=64"],
    }[case]
    assert cli(ready, "train", *overrides) == 1
    err = capsys.readouterr().err
    assert err.startswith("workbench: cannot start the run:\n")
    assert expected in err
    assert list(ready.runs_dir.iterdir()) == []
    assert ready.config_path.read_bytes() == toml_before
    with ExampleStore(ready.db_path) as store:
        assert store.split_counts() == splits_before


def test_a_sweep_runs_its_variants_in_turn_ranks_them_and_keeps_the_best(
    ready: Workspace, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    sweep_file = tmp_path / "sweep.toml"
    sweep_file.write_text(
        "[base]\nmax_steps = 6\neval_steps = 3\n\n[grid]\nlearning_rate = [1e-6, 5e-3]\n"
    )
    assert cli(ready, "sweep", str(sweep_file), "--keep-best", "--follow") == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[1] == "variant 1: learning_rate=1e-06 (" + lines[1].split("(")[1]
    ranked = [line for line in lines if re.match(r"^ *\d+  \d{8}-", line)]
    assert ranked[0].endswith("learning_rate=0.005  (kept)")
    assert ranked[1].endswith("learning_rate=1e-06")
    best_id, other_id = ranked[0].split()[1], ranked[1].split()[1]
    assert all(f" {best_id} finished " in line or best_id not in line for line in ranked)
    assert (ready.runs_dir / best_id / "best").is_dir()
    assert not (ready.runs_dir / other_id / "best").exists()
    assert not (ready.runs_dir / other_id / "checkpoints").exists()
    assert read_history(ready.runs_dir / other_id).step == 6  # its history stays

    assert cli(ready, "sweep", "--show", "last", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert [run["id"] for run in shown] == [best_id, other_id]
    assert shown[0]["best_eval_loss"] < shown[1]["best_eval_loss"]
    assert {run["variant"] for run in shown} == {"learning_rate=0.005", "learning_rate=1e-06"}


def test_stopping_a_sweep_stops_its_run_with_a_checkpoint_and_starts_no_more(
    ready: Workspace, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    sweep_file = tmp_path / "sweep.toml"
    sweep_file.write_text("[base]\nmax_steps = 400\n\n[grid]\nlora_r = [2, 4]\n")
    assert cli(ready, "sweep", str(sweep_file)) == 0
    sweep_dir = ready.root / "sweeps" / capsys.readouterr().out.strip()
    first, second = (ready.runs_dir / run["run_id"] for run in read_sweep(sweep_dir)["runs"])
    wait_for(lambda: read_history(first).step >= 1)
    assert cli(ready, "sweep", "--stop", sweep_dir.name[-4:]) == 0
    wait_for(lambda: state(sweep_dir) == "stopped")
    assert state(first) == "stopped" and state(second) == "stopped"
    checkpoint = last_checkpoint(first)
    assert checkpoint is not None and checkpoint.name == f"checkpoint-{read_history(first).step}"
    assert observed_status(second).message == "the sweep was stopped before this run"  # type: ignore[union-attr]
    assert read_events(second) == []


def test_a_sweep_with_a_bad_variant_starts_nothing(
    ready: Workspace, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    sweep_file = tmp_path / "sweep.toml"
    sweep_file.write_text('[[variant]]\nlora_r = 8\n\n[[variant]]\nname = "zero"\nlora_r = 0\n')
    assert cli(ready, "sweep", str(sweep_file)) == 1
    err = capsys.readouterr().err
    assert "variant 'zero': train.lora_r = 0: Input should be greater than or equal to 1" in err
    assert list(ready.runs_dir.iterdir()) == []
    assert not (ready.root / "sweeps").exists()
