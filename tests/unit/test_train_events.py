"""Run events: their JSON form, the history they fold into, and the curve warnings."""

from __future__ import annotations

import json
import math

from workbench.train.events import (
    CheckpointSaved,
    Evaluated,
    Finished,
    Resumed,
    RunHistory,
    RunWarning,
    Started,
    Step,
    describe_event,
    event_from_dict,
    event_to_dict,
)
from workbench.train.watch import CurveWatch


def step(n: int, loss: float = 1.0) -> Step:
    return Step(step=n, total_steps=10, epoch=n / 10, loss=loss, learning_rate=1e-4)


def test_events_survive_a_round_trip_through_json() -> None:
    events = [
        step(3, 2.5),
        Evaluated(step=4, eval_loss=1.5, best=True),
        CheckpointSaved(step=4, path="runs/x/best", kind="best", eval_loss=1.5),
        RunWarning(kind="overfitting", message="m", step=4),
        Finished(state="stopped", reason="r", step=4, total_steps=10),
    ]
    for event in events:
        line = json.dumps(event_to_dict(event))
        assert event_from_dict(json.loads(line)) == event


def test_non_finite_numbers_are_written_as_null_and_unknown_lines_skipped() -> None:
    record = event_to_dict(Evaluated(step=1, eval_loss=math.inf, best=False))
    assert record["eval_loss"] is None and record["type"] == "eval"
    assert event_from_dict({"type": "unreadable", "line": "x"}) is None
    assert event_from_dict({"type": "step", "step": 1}) is None  # fields missing


def test_a_resume_replaces_the_points_after_its_checkpoint() -> None:
    history = RunHistory()
    for n in range(1, 8):
        history.add(step(n, loss=10 - n))
    history.add(Evaluated(step=5, eval_loss=3.0, best=True))
    history.add(Evaluated(step=6, eval_loss=2.0, best=True))  # after the checkpoint: redone
    history.add(Resumed(from_step=5, checkpoint="checkpoint-5"))
    for n in range(6, 9):
        history.add(step(n, loss=1.0))
    assert [point.step for point in history.steps] == list(range(1, 9))
    assert [point.step for point in history.evals] == [5]
    assert history.best == Evaluated(step=5, eval_loss=3.0, best=True)
    assert (history.step, history.last_loss) == (8, 1.0)


def test_active_time_leaves_out_the_pause_before_a_resume() -> None:
    history = RunHistory()
    history.add_dicts(
        [
            {"time": 100.0, **event_to_dict(step(1))},
            {"time": 110.0, **event_to_dict(step(2))},
            {"time": 5000.0, **event_to_dict(Resumed(from_step=0, checkpoint=""))},
            {"time": 5020.0, **event_to_dict(step(1))},
        ]
    )
    assert history.active_s == 30.0
    assert history.attempts == 0  # no Started events in this log


def test_follow_lines_say_what_happened() -> None:
    line = describe_event(
        Step(
            step=3,
            total_steps=40,
            epoch=0.1,
            loss=2.5,
            learning_rate=2e-4,
            grad_norm=0.5,
            tokens_per_s=1234.0,
        )
    )
    assert line == "step 3/40  loss 2.5000  lr 2.00e-04  grad norm 0.500  1,234 tokens/s"
    started = Started(
        backend="hf",
        base_model="m",
        device="cpu",
        total_steps=40,
        train_examples=90,
        val_examples=10,
        train_tokens=1000,
    )
    assert describe_event(started).startswith("training on cpu with hf: 40 steps")
    finished = Finished(
        state="finished",
        reason="completed 40 steps",
        step=40,
        total_steps=40,
        best_eval_loss=1.25,
        best_step=30,
        duration_s=42,
    )
    assert describe_event(finished) == (
        "finished: completed 40 steps, best eval loss 1.2500 at step 30 (42 s)"
    )


def test_eval_loss_rising_while_train_loss_falls_warns_of_overfitting_once() -> None:
    watch = CurveWatch()
    warnings = []
    train_losses = iter([3.0, 2.8, 2.4, 2.2, 1.6, 1.2, 0.8, 0.6, 0.4, 0.3, 0.2, 0.1])
    for eval_step, eval_loss in [(2, 2.0), (4, 1.8), (6, 1.9), (8, 2.1), (10, 2.4), (12, 2.6)]:
        for n in (eval_step - 1, eval_step):
            watch.on_step(n, next(train_losses))
        warnings.append(watch.on_eval(eval_step, eval_loss))
    found = [warning for warning in warnings if warning is not None]
    assert [(warning.kind, warning.step) for warning in found] == [("overfitting", 8)]
    assert "1.800 -> 1.900 -> 2.100" in found[0].message


def test_no_overfitting_warning_while_both_curves_fall_or_train_loss_rises_too() -> None:
    falling = CurveWatch()
    for n, loss in enumerate([3.0, 2.5, 2.0, 1.8, 1.6], start=1):
        falling.on_step(n, loss + 0.1)
        assert falling.on_eval(n, loss) is None
    diverging = CurveWatch()
    for n, loss in enumerate([1.0, 1.5, 2.0, 2.5], start=1):
        diverging.on_step(n, loss)  # train loss rises too: not overfitting
        assert diverging.on_eval(n, loss) is None


def test_a_very_low_eval_loss_warns_of_memorizing() -> None:
    watch = CurveWatch()
    assert watch.on_eval(10, 0.5) is None
    warning = watch.on_eval(20, 0.01)
    assert warning is not None and warning.kind == "memorizing"
    assert "copies of training ones" in warning.message
    assert watch.on_eval(30, 0.005) is None  # said once
