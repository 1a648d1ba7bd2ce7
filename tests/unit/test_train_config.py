"""Run settings are checked before anything starts, and every refusal says what to change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.config import DEMO_MODEL, TrainSection
from workbench.train.config import (
    Device,
    TrainConfigError,
    choose_backend,
    resolve_model,
    run_config,
)
from workbench.train.runs import runner_argv

CPU = Device()
ONE_GPU = Device(gpus=1, name="NVIDIA H100", unsloth_installed=True)


def test_overrides_apply_with_or_without_the_table_name() -> None:
    config = run_config(TrainSection(), {"lora_r": 4, "train.learning_rate": 1e-3})
    assert (config.lora_r, config.learning_rate) == (4, 1e-3)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"lora_r": 0}, "train.lora_r = 0: Input should be greater than or equal to 1"),
        ({"learning_rate": -1.0}, "train.learning_rate = -1.0: Input should be greater than 0"),
        ({"lr_scheduler": "zigzag"}, "train.lr_scheduler = 'zigzag': Input should be"),
        ({"target_modules": []}, "train.target_modules = []: List should have at least 1 item"),
        ({"batch_size": "eight"}, "train.batch_size = 'eight': Input should be a valid integer"),
    ],
)
def test_bad_values_are_refused_with_the_reason(overrides: dict, expected: str) -> None:
    with pytest.raises(TrainConfigError) as caught:
        run_config(TrainSection(), overrides)
    assert caught.value.problems[0].startswith(expected)


def test_an_unknown_setting_is_refused_naming_the_allowed_ones() -> None:
    with pytest.raises(TrainConfigError) as caught:
        run_config(TrainSection(), {"lora_rank": 8})
    assert "unknown setting train.lora_rank" in str(caught.value)
    assert "lora_r" in str(caught.value)


def test_auto_backend_picks_unsloth_on_one_gpu_and_transformers_elsewhere() -> None:
    assert choose_backend(TrainSection(), CPU) == ("hf", "")
    assert choose_backend(TrainSection(), ONE_GPU) == ("unsloth", "")
    backend, note = choose_backend(TrainSection(), Device(gpus=4, unsloth_installed=True))
    assert backend == "hf" and "accelerate launch" in note
    backend, note = choose_backend(TrainSection(), Device(gpus=1, unsloth_installed=False))
    assert backend == "hf" and "Unsloth is not installed" in note
    assert choose_backend(TrainSection(backend="hf"), ONE_GPU) == ("hf", "")


def test_unsloth_forced_without_a_gpu_is_refused() -> None:
    with pytest.raises(TrainConfigError, match="needs a CUDA GPU"):
        choose_backend(TrainSection(backend="unsloth"), CPU)


def test_several_gpus_train_through_accelerate_launch(tmp_path: Path) -> None:
    argv = runner_argv(tmp_path, resume=True, gpus=2, backend="hf")
    assert argv[1:5] == ["-m", "accelerate.commands.launch", "--num_processes", "2"]
    assert argv[-4:] == ["-m", "workbench.train.runner", str(tmp_path), "--resume"]
    assert runner_argv(tmp_path, gpus=2, backend="unsloth")[1:3] == ["-m", "workbench.train.runner"]


def test_the_demo_model_name_resolves_to_a_built_model() -> None:
    path = Path(resolve_model(DEMO_MODEL))
    assert (path / "config.json").is_file() and (path / "tokenizer.model").is_file()


def test_a_model_directory_is_resolved_relative_to_the_workspace(
    tmp_path: Path, demo_model_dir: Path
) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "tiny").symlink_to(demo_model_dir)
    assert resolve_model("models/tiny", tmp_path) == str(demo_model_dir.resolve())


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("missing", "no such directory"),
        ("empty", "is not a model directory (no config.json)"),
        ("corrupt", "cannot read"),
        ("no-weights", "holds no weights"),
        ("file", "is a file"),
    ],
)
def test_an_unreadable_model_path_is_refused(tmp_path: Path, setup: str, expected: str) -> None:
    target = tmp_path / "model"
    if setup == "file":
        target.write_text("not a model")
    elif setup != "missing":
        target.mkdir()
    if setup == "corrupt":
        (target / "config.json").write_text("{not json")
    if setup == "no-weights":
        (target / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(TrainConfigError) as caught:
        resolve_model(str(target))
    assert expected in str(caught.value)
    assert str(caught.value).startswith(f"train.base_model = {str(target)!r}")


def test_a_hub_id_that_is_not_cached_is_refused_offline() -> None:
    with pytest.raises(TrainConfigError, match="not in the local Hugging Face cache"):
        resolve_model("someone/not-a-cached-model")


def test_a_bare_name_is_neither_path_nor_hub_id() -> None:
    with pytest.raises(TrainConfigError, match="neither a local model directory nor a hub id"):
        resolve_model("llama")
