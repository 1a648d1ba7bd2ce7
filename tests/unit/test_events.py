"""Every package's events as `events.jsonl` lines: round trips, odd numbers, old logs."""

from __future__ import annotations

import json
import math
import types
import typing
from dataclasses import fields
from typing import Any

import pytest

from workbench.collect import events as collect_events
from workbench.evaluate import events as eval_events
from workbench.export import events as export_events
from workbench.train import events as train_events

PACKAGES = {
    "train": (train_events, train_events.TrainEvent),
    "export": (export_events, export_events.ExportEvent),
    "evaluate": (eval_events, eval_events.EvalEvent),
    "collect": (collect_events, collect_events.CollectEvent),
}
EVERY_EVENT = [
    pytest.param(module, cls, id=f"{package}.{cls.__name__}")
    for package, (module, union) in PACKAGES.items()
    for cls in typing.get_args(union)
]


def sample_value(hint: Any, index: int) -> Any:
    """A value of the declared type, different for each field (so swapped fields would show)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        return args[-1]
    if origin in (typing.Union, types.UnionType):
        return sample_value(next(arg for arg in args if arg is not type(None)), index)
    if origin is tuple:
        return (f"a{index}", f"b{index}")
    if origin is dict:
        return {"added": index, "note": "x"}
    return {bool: True, int: 10 + index, float: index + 0.25, str: f"text {index}"}[hint]


def sample(cls: type) -> Any:
    """An instance of an event class with every field set, defaults included."""
    hints = typing.get_type_hints(cls)
    values = {item.name: sample_value(hints[item.name], n) for n, item in enumerate(fields(cls))}
    return cls(**values)


@pytest.mark.parametrize(("module", "cls"), EVERY_EVENT)
def test_every_event_of_every_package_survives_a_log_line(module: Any, cls: type) -> None:
    event = sample(cls)
    record = module.event_to_dict(event)
    assert next(iter(record)) == "type" and record["type"] == cls.type
    line = json.dumps({"time": 1795830111.163, **record})  # as `jobs.append_event` writes it
    assert module.event_from_dict(json.loads(line)) == event


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_reads_every_event_it_declares(package: str) -> None:
    module, union = PACKAGES[package]
    assert set(module.EVENT_TYPES.values()) == set(typing.get_args(union))


@pytest.mark.parametrize("package", PACKAGES)
def test_unknown_types_and_wrong_shapes_read_as_nothing(package: str) -> None:
    module, _ = PACKAGES[package]
    assert module.event_from_dict({"type": "unreadable", "line": "x"}) is None
    assert module.event_from_dict({"message": "no type at all"}) is None
    assert module.event_from_dict({"type": "finished"}) is None  # its fields missing


def test_training_writes_nan_and_infinity_as_null() -> None:
    step = train_events.Step(
        step=2, total_steps=6, epoch=0.1, loss=math.nan, learning_rate=1e-4, grad_norm=math.inf
    )
    record = train_events.event_to_dict(step)
    assert (record["loss"], record["grad_norm"]) == (None, None)
    assert train_events.event_from_dict(json.loads(json.dumps(record))) == train_events.Step(
        step=2, total_steps=6, epoch=0.1, loss=None, learning_rate=1e-4, grad_norm=None
    )


def test_the_other_packages_keep_writing_non_finite_numbers_as_json_does() -> None:
    progress = eval_events.Progress(done=1, total=2, judge_cost_usd=math.inf)
    line = json.dumps(eval_events.event_to_dict(progress))
    assert '"judge_cost_usd": Infinity' in line
    read = eval_events.event_from_dict(json.loads(line))
    assert isinstance(read, eval_events.Progress) and read.judge_cost_usd == math.inf


OLD_LINES = [
    # Written by the code before workbench/events.py (runs, exports, evals and a synth job).
    (
        train_events,
        '{"time": 1795830111.163, "type": "step", "step": 1, "total_steps": 6, "epoch": 0.0769, '
        '"loss": 7.01232385635376, "learning_rate": 0.0, "grad_norm": 0.4569011330604553, '
        '"tokens_per_s": 5070.6, "gpu_memory_gib": null, "elapsed_s": 2.701}',
        train_events.Step(
            step=1,
            total_steps=6,
            epoch=0.0769,
            loss=7.01232385635376,
            learning_rate=0.0,
            grad_norm=0.4569011330604553,
            tokens_per_s=5070.6,
            elapsed_s=2.701,
        ),
    ),
    (
        train_events,
        '{"type": "step", "step": 2, "total_steps": 6, "epoch": 0.1, "loss": null, '
        '"learning_rate": 0.0001, "grad_norm": null, "tokens_per_s": null, '
        '"gpu_memory_gib": null, "elapsed_s": 0.0}',
        train_events.Step(step=2, total_steps=6, epoch=0.1, loss=None, learning_rate=1e-4),
    ),
    (
        train_events,
        '{"time": 1795830144.709, "type": "checkpoint", "step": 5, '
        '"path": "/tmp/trws/runs/20261128-014142-fece/best", "kind": "best", '
        '"eval_loss": 6.899271488189697}',
        train_events.CheckpointSaved(
            step=5,
            path="/tmp/trws/runs/20261128-014142-fece/best",
            kind="best",
            eval_loss=6.899271488189697,
        ),
    ),
    (
        export_events,
        '{"time": 1795830183.001, "type": "started", "export_id": "20261128-014302-8572", '
        '"run_id": "20261128-014142-fece", "checkpoint": "best", '
        '"checkpoint_path": "/tmp/trws/runs/20261128-014142-fece/best", '
        '"base_model": "workbench:demo-tiny", "quants": ["q8_0"], "total_stages": 4, '
        '"checkpoint_step": 6}',
        export_events.ExportStarted(
            export_id="20261128-014302-8572",
            run_id="20261128-014142-fece",
            checkpoint="best",
            checkpoint_path="/tmp/trws/runs/20261128-014142-fece/best",
            base_model="workbench:demo-tiny",
            quants=("q8_0",),
            total_stages=4,
            checkpoint_step=6,
        ),
    ),
    (
        eval_events,
        '{"time": 1795826463.325, "type": "item", "index": 0, "example_id": 101, '
        '"outcome": "loss", "disagreed": false, "identical": false, "error": "", '
        '"preview": "Topic: Starting strength training after 40"}',
        eval_events.ItemJudged(
            index=0,
            example_id=101,
            outcome="loss",
            preview="Topic: Starting strength training after 40",
        ),
    ),
    (
        collect_events,
        '{"type": "finished", "state": "finished", "reason": "done", "totals": {"added": 8}}',
        collect_events.JobFinished(state="finished", reason="done", totals={"added": 8}),
    ),
]


@pytest.mark.parametrize(("module", "line", "expected"), OLD_LINES)
def test_lines_of_older_logs_still_read(module: Any, line: str, expected: Any) -> None:
    assert module.event_from_dict(json.loads(line)) == expected


def test_an_event_is_written_as_the_same_line_as_before() -> None:
    call = collect_events.SynthCall(
        index=2,
        calls=10,
        cached=False,
        generated=5,
        added=4,
        duplicates=1,
        invalid=0,
        cost_usd=0.0123,
        total_cost_usd=0.0246,
        total_added=8,
        input_tokens=900,
        output_tokens=1200,
    )
    assert json.dumps(collect_events.event_to_dict(call)) == (
        '{"type": "call", "index": 2, "calls": 10, "cached": false, "generated": 5, "added": 4, '
        '"duplicates": 1, "invalid": 0, "cost_usd": 0.0123, "total_cost_usd": 0.0246, '
        '"total_added": 8, "input_tokens": 900, "output_tokens": 1200}'
    )


def test_a_step_line_says_how_busy_the_gpu_was() -> None:
    step = train_events.Step(
        step=3, total_steps=40, epoch=0.1, loss=2.5, learning_rate=2e-4, gpu_util=87.0
    )
    assert train_events.describe_event(step).endswith("GPU 87%")
