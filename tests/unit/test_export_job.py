"""Export requests against a run's files: which adapter, which base model, which quantizations;
the manifest and the event log a screen reads; and failures that end with a clear event."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from workbench.config import DEMO_MODEL
from workbench.export.checkpoints import (
    CHATML_TEMPLATE,
    ExportInputError,
    resolve_checkpoint,
    run_base_model,
    training_chat_template,
)
from workbench.export.events import (
    ExportError,
    ExportFinished,
    ExportProgress,
    ExportStarted,
    FileWritten,
    StageProgress,
    StageStarted,
    event_from_dict,
    event_to_dict,
)
from workbench.export.job import (
    ExportRefused,
    ExportRequest,
    disk_needed,
    export_run,
    parse_quants,
    plan_export,
)
from workbench.export.manifest import (
    ExportedFile,
    ExportManifest,
    list_exported_ggufs,
    read_manifest,
    write_manifest,
)


def fake_adapter(path: Path, **meta: object) -> Path:
    """A directory with the files of a peft adapter (contents are not read here)."""
    path.mkdir(parents=True)
    (path / "adapter_config.json").write_text("{}")
    (path / "adapter_model.safetensors").write_bytes(b"\0" * 8)
    if meta:
        (path / "workbench.json").write_text(json.dumps(meta))
    return path


@pytest.fixture
def run_dir(tmp_path: Path, demo_model_dir: Path) -> Path:
    """A run as training leaves it: settings, best/ and two checkpoints."""
    run = tmp_path / "runs" / "20261128-101500-ab12"
    fake_adapter(run / "best", step=40, eval_loss=1.25)
    fake_adapter(run / "checkpoints" / "checkpoint-40")
    fake_adapter(run / "checkpoints" / "checkpoint-60")
    (run / "checkpoints" / "checkpoint-80").mkdir()  # being written: no adapter yet
    (run / "config.json").write_text(json.dumps({"base_model": "my/base"}))
    (run / "run.json").write_text(
        json.dumps({"model": str(demo_model_dir), "base_model": "my/base"})
    )
    return run


def test_best_last_and_step_name_the_adapters_training_wrote(run_dir: Path) -> None:
    best = resolve_checkpoint(run_dir, "best")
    assert (best.label, best.step, best.eval_loss) == ("best", 40, 1.25)
    last = resolve_checkpoint(run_dir, "last")
    assert (last.label, last.step, last.path.name) == ("last", 60, "checkpoint-60")
    assert resolve_checkpoint(run_dir, 40).label == "step-40"
    with pytest.raises(ExportInputError, match=r"no checkpoint at step 80 \(saved steps: 40, 60\)"):
        resolve_checkpoint(run_dir, "80")
    with pytest.raises(ExportInputError, match="expected best, last or a step number"):
        resolve_checkpoint(run_dir, "latest")


def test_a_run_without_a_best_adapter_yet_says_what_to_do(tmp_path: Path) -> None:
    run = tmp_path / "run"
    fake_adapter(run / "checkpoints" / "checkpoint-10")
    with pytest.raises(ExportInputError, match=r"no best adapter yet.*--checkpoint last"):
        resolve_checkpoint(run, "best")
    with pytest.raises(ExportInputError, match="no run directory"):
        resolve_checkpoint(tmp_path / "nope", "best")


def test_base_model_comes_from_the_run(run_dir: Path, demo_model_dir: Path, tmp_path: Path) -> None:
    assert run_base_model(run_dir) == ("my/base", str(demo_model_dir))
    demo_run = tmp_path / "demo-run"
    demo_run.mkdir()
    (demo_run / "config.json").write_text(json.dumps({"base_model": DEMO_MODEL}))
    named, model = run_base_model(demo_run)
    assert named == DEMO_MODEL and (Path(model) / "tokenizer.model").is_file()
    (run_dir / "run.json").write_text(json.dumps({"model": str(tmp_path / "moved-away")}))
    with pytest.raises(ExportInputError, match=r"base model of run .* is gone"):
        run_base_model(run_dir)


def test_the_chat_template_is_the_one_training_saved(tmp_path: Path, demo_model_dir: Path) -> None:
    adapter = fake_adapter(tmp_path / "best")
    assert training_chat_template(adapter, demo_model_dir)[1] == "base model"
    (adapter / "chat_template.jinja").write_text("{{ messages }}")
    assert training_chat_template(adapter, demo_model_dir) == ("{{ messages }}", "adapter")
    empty_base = tmp_path / "base"
    empty_base.mkdir()
    assert training_chat_template(tmp_path / "nothing", empty_base)[0] == CHATML_TEMPLATE


def test_quantizations_are_checked_up_front(run_dir: Path, tmp_path: Path) -> None:
    assert parse_quants("f16, Q8_0,q4_k_m,q8_0") == ("f16", "q8_0", "q4_k_m")
    with pytest.raises(ExportRefused, match=r"unknown quantization 'q3'.*q4_k_m"):
        parse_quants("f16,q3")
    request = plan_export(tmp_path / "exports", run_dir, "last", ["q4_k_m"])
    assert request.quants == ("q4_k_m",) and request.checkpoint == "last"
    assert not request.export_dir.exists(), "planning writes nothing"
    with pytest.raises(ExportRefused, match="step 7"):
        plan_export(tmp_path / "exports", run_dir, "7", ["f16"])


def test_a_failed_export_ends_with_error_events_and_leaves_no_model_files(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "r1"
    run.mkdir(parents=True)
    out = tmp_path / "exports" / "e1"
    out.mkdir(parents=True)
    (out / "leftover.gguf").write_bytes(b"GGUF")
    events = list(export_run(ExportRequest(run, out, "best", ("f16",)), threading.Event()))
    assert [type(event) for event in events] == [ExportError, ExportFinished]
    error, finished = events
    assert isinstance(error, ExportError) and error.kind == "input"
    assert "no best adapter" in error.message
    assert isinstance(finished, ExportFinished) and finished.state == "failed"
    assert not list(out.glob("*.gguf")) and read_manifest(out) is None


def test_disk_estimate_covers_merged_model_and_every_file(demo_model_dir: Path) -> None:
    weights = (demo_model_dir / "model.safetensors").stat().st_size  # float32
    needed = disk_needed(demo_model_dir, ("f16", "q8_0", "q4_k_m"))
    assert weights < needed < weights * 2, "merged + f16 at 16 bits, plus the quantized files"


def test_events_round_trip_and_fold_into_progress() -> None:
    events = [
        ExportStarted("e1", "r1", "best", "/r1/best", "base", ("f16", "q8_0"), 4, 40),
        StageStarted("merge", 1, 4, "merging"),
        StageStarted("convert", 2, 4, "converting"),
        StageProgress("convert", 0.5, "10 tensors"),
        FileWritten("f16", "/e1/a.gguf", 10, "ab" * 32, 1.0),
    ]
    progress = ExportProgress()
    progress.add_dicts([json.loads(json.dumps(event_to_dict(event))) for event in events])
    assert progress.started == events[0], "tuples survive JSON"
    assert progress.overall == pytest.approx(1.5 / 4)
    assert [file.quant for file in progress.files] == ["f16"]
    progress.add(ExportFinished("finished", "done", "/e1/manifest.json", 3.0))
    assert progress.overall == 1.0
    assert event_from_dict({"type": "step", "step": 1}) is None
    assert event_from_dict({"type": "stage", "stage": "merge"}) is None


def test_manifests_list_exported_ggufs_newest_first(tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    for number, quants in ((1, ("q8_0",)), (2, ("f16", "q4_k_m"))):
        export_dir = exports / f"e{number}"
        export_dir.mkdir(parents=True)
        files = []
        for size, quant in enumerate(quants, start=1):
            (export_dir / f"run-best-{quant}.gguf").write_bytes(b"x" * size * 100)
            files.append(ExportedFile(quant, f"run-best-{quant}.gguf", size * 100, "0" * 64))
        manifest = ExportManifest(f"e{number}", "run", "best", "base", tuple(files))
        write_manifest(export_dir, manifest)
        assert read_manifest(export_dir) == manifest
    (exports / "half-done").mkdir()
    listed = list_exported_ggufs(exports)
    assert [(entry.export_id, entry.quant) for entry in listed] == [
        ("e2", "f16"),
        ("e2", "q4_k_m"),
        ("e1", "q8_0"),
    ]
    assert listed[0].label == "run best f16 (100 B)"
    assert oct((exports / "e1" / "manifest.json").stat().st_mode & 0o777) != "0o600"
