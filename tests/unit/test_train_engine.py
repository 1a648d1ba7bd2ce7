"""The training engine on the tiny real model: events, eval loss, best/, stop, resume, NaN."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest

from workbench.config import TrainSection
from workbench.train.data import FrozenData
from workbench.train.engine import TrainJob, describe_failure, train
from workbench.train.events import (
    CheckpointSaved,
    Evaluated,
    Finished,
    RunError,
    RunHistory,
    RunWarning,
    Started,
    Step,
    TrainEvent,
)
from workbench.train.runs import last_checkpoint

pytestmark = pytest.mark.slow

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "imports" / "seo_pairs.jsonl"


def sample_conversations(count: int) -> tuple[list[dict[str, str]], ...]:
    """Sample pairs without the long system prompt (as the data step would strip it)."""
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()[:count]
    return tuple(
        [m for m in json.loads(line)["messages"] if m["role"] != "system"] for line in lines
    )


def settings(**changes: object) -> TrainSection:
    base: dict[str, object] = {
        "base_model": "workbench:demo-tiny",
        "max_seq_length": 96,
        "batch_size": 4,
        "max_steps": 6,
        "eval_steps": 3,
        "learning_rate": 1e-3,
        "lora_r": 4,
        "lora_alpha": 8,
    }
    return TrainSection.model_validate({**base, **changes})


def job(model: Path, out: Path, config: TrainSection, data: FrozenData | None = None) -> TrainJob:
    conversations = sample_conversations(20)
    data = data or FrozenData(train=conversations[:16], val=conversations[16:])
    return TrainJob(config=config, model=str(model), backend="hf", data=data, output_dir=out)


def run_all(train_job: TrainJob, cancel: threading.Event | None = None) -> list[TrainEvent]:
    return list(train(train_job, cancel or threading.Event()))


def of(events: list[TrainEvent], kind: type) -> list:  # type: ignore[type-arg]
    return [event for event in events if isinstance(event, kind)]


def test_a_run_reports_its_curves_and_keeps_the_best_adapter(
    demo_model_dir: Path, tmp_path: Path
) -> None:
    events = run_all(job(demo_model_dir, tmp_path, settings(learning_rate=5e-3)))
    started, steps, evals = of(events, Started)[0], of(events, Step), of(events, Evaluated)
    assert (started.backend, started.device, started.total_steps) == ("hf", "cpu", 6)
    assert (started.train_examples, started.val_examples) == (16, 4)
    assert [point.step for point in steps] == [1, 2, 3, 4, 5, 6]
    assert all(point.grad_norm is not None and point.tokens_per_s for point in steps)
    assert max(point.learning_rate for point in steps) == pytest.approx(5e-3)
    assert [point.step for point in evals] == [3, 6]
    assert evals[1].eval_loss < evals[0].eval_loss and evals[1].best
    checkpoints = [e.step for e in of(events, CheckpointSaved) if e.kind == "checkpoint"]
    assert checkpoints == [3, 6]
    finished = events[-1]
    assert isinstance(finished, Finished) and finished.state == "finished"
    best = min(evals, key=lambda point: point.eval_loss)
    assert (finished.best_eval_loss, finished.best_step) == (best.eval_loss, best.step)
    meta = json.loads((tmp_path / "best" / "workbench.json").read_text())
    assert meta == {"step": best.step, "eval_loss": best.eval_loss}
    assert (tmp_path / "best" / "adapter_model.safetensors").is_file()
    assert (tmp_path / "best" / "tokenizer_config.json").is_file()
    assert last_checkpoint(tmp_path) == tmp_path / "checkpoints" / "checkpoint-6"


def test_cancel_stops_with_a_checkpoint_and_resume_continues_from_it(
    demo_model_dir: Path, tmp_path: Path
) -> None:
    cancel = threading.Event()
    config = settings(max_steps=8, eval_steps=4)
    first: list[TrainEvent] = []
    for event in train(job(demo_model_dir, tmp_path, config), cancel):
        first.append(event)
        if isinstance(event, Step) and event.step == 2:
            cancel.set()
    stopped = first[-1]
    assert isinstance(stopped, Finished) and stopped.state == "stopped"
    assert stopped.step in (2, 3) and "resume" in stopped.reason  # the step under way finishes
    checkpoint = last_checkpoint(tmp_path)
    assert checkpoint is not None and checkpoint.name == f"checkpoint-{stopped.step}"

    history = RunHistory()
    for event in first:
        history.add(event)
    resumed = job(demo_model_dir, tmp_path, config)
    resumed = TrainJob(**{**resumed.__dict__, "resume_from": checkpoint, "history": history})
    second = run_all(resumed)
    assert of(second, Started)[0].resumed_from_step == stopped.step
    assert [point.step for point in of(second, Step)] == list(range(stopped.step + 1, 9))
    assert isinstance(second[-1], Finished) and second[-1].state == "finished"
    assert second[-1].step == 8


def test_eval_loss_rising_warns_of_overfitting_and_patience_stops_early(
    demo_model_dir: Path, tmp_path: Path
) -> None:
    # Learning "yes yes ..." makes the held-out "no no ..." answers less likely at every step.
    def pairs(word: str, count: int) -> tuple[list[dict[str, str]], ...]:
        return tuple(
            [
                {"role": "user", "content": f"Reply to message {n}."},
                {"role": "assistant", "content": " ".join([word] * 12)},
            ]
            for n in range(count)
        )

    data = FrozenData(train=pairs("yes", 16), val=pairs("no", 4))
    config = settings(
        max_steps=30, eval_steps=2, early_stopping_patience=2, lr_scheduler="constant"
    )
    events = run_all(job(demo_model_dir, tmp_path, config, data))
    evals = of(events, Evaluated)
    assert [point.best for point in evals] == [True, False, False]
    warnings = [warning.kind for warning in of(events, RunWarning)]
    assert "overfitting" in warnings
    finished = events[-1]
    assert isinstance(finished, Finished) and finished.state == "finished"
    assert finished.step == 6 and finished.reason.startswith("early stopping")
    assert last_checkpoint(tmp_path) == tmp_path / "checkpoints" / "checkpoint-6"


def test_a_nan_loss_stops_the_run_and_says_so(demo_model_dir: Path, tmp_path: Path) -> None:
    from safetensors.numpy import load_file, save_file

    broken = tmp_path / "broken-model"
    shutil.copytree(demo_model_dir, broken)
    weights = load_file(broken / "model.safetensors")
    weights["model.norm.weight"][:] = float("nan")
    save_file(weights, str(broken / "model.safetensors"), metadata={"format": "pt"})
    events = run_all(job(broken, tmp_path / "run", settings()))
    errors = of(events, RunError)
    assert [error.kind for error in errors] == ["nan_loss"]
    assert errors[0].message.startswith("training loss became nan at step 1: the run stopped")
    assert "Lower train.learning_rate" in errors[0].message
    assert isinstance(events[-1], Finished) and events[-1].state == "failed"
    assert not of(events, Evaluated) and last_checkpoint(tmp_path / "run") is None


def test_an_unloadable_model_ends_the_run_with_a_model_error(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text('{"model_type": "llama"}')
    events = run_all(job(tmp_path / "model", tmp_path / "run", settings()))
    assert [e.kind for e in of(events, RunError)] == ["model"]
    assert of(events, RunError)[0].message.startswith("cannot load workbench:demo-tiny")
    assert isinstance(events[-1], Finished) and events[-1].state == "failed"


def test_out_of_memory_says_what_to_change() -> None:
    import torch

    error = describe_failure(torch.OutOfMemoryError("CUDA out of memory"), settings(), 12)
    assert error.kind == "out_of_memory" and error.step == 12
    assert error.message.startswith("out of GPU memory (batch_size 4, max_seq_length 96)")
    assert "lower train.batch_size" in error.message
    assert "shorten train.max_seq_length" in error.message
    unquantized = describe_failure(MemoryError("out of memory"), settings(load_in_4bit=False))
    assert unquantized.message.endswith("or set train.load_in_4bit = true")
