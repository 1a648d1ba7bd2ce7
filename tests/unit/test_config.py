"""workbench.toml: defaults, validation errors a user can act on, comments kept on write-back."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.config import (
    ConfigError,
    WorkbenchConfig,
    default_config_text,
    iter_fields,
    load_config,
    parse_assignment,
    update_config,
)


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "workbench.toml"
    path.write_text(default_config_text("demo"), encoding="utf-8")
    return path


def test_default_file_round_trips_to_the_defaults(config_file: Path) -> None:
    config = load_config(config_file)
    assert config.model_dump(exclude={"workspace"}) == WorkbenchConfig().model_dump(
        exclude={"workspace"}
    )
    assert config.workspace.name == "demo"


def test_default_file_explains_every_setting(config_file: Path) -> None:
    text = config_file.read_text()
    for key, description in iter_fields():
        assert description, f"{key} has no docstring"
        assert description.splitlines()[0].strip() in text


def test_unknown_key_names_file_line_key_and_allowed_keys(config_file: Path) -> None:
    text = config_file.read_text().replace(
        "[chat] # Local chat with an exported GGUF.", "[chat]\ntemprature = 0.2"
    )
    config_file.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(config_file)
    (problem,) = caught.value.problems
    line = text.splitlines().index("temprature = 0.2") + 1
    assert problem.startswith(f"{config_file}:{line}: unknown key 'chat.temprature'")
    assert "temperature" in problem.split("allowed here:")[1]


def test_unknown_table_is_reported(config_file: Path) -> None:
    config_file.write_text(config_file.read_text() + "\n[trian]\nlora_r = 4\n")
    with pytest.raises(ConfigError, match=r"unknown key 'trian' \(allowed here: workspace, data"):
        load_config(config_file)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "lora_r = 16",
            "lora_r = 0",
            "train.lora_r = 0: Input should be greater than or equal to 1",
        ),
        ('backend = "auto"', 'backend = "cuda"', "Input should be 'auto', 'unsloth' or 'hf'"),
        ("learning_rate = 0.0002", 'learning_rate = "fast"', "train.learning_rate = 'fast'"),
    ],
)
def test_bad_values_say_what_is_allowed(
    config_file: Path, old: str, new: str, expected: str
) -> None:
    text = config_file.read_text()
    assert old in text
    config_file.write_text(text.replace(old, new))
    with pytest.raises(ConfigError) as caught:
        load_config(config_file)
    assert expected in str(caught.value)
    assert str(caught.value).startswith(f"{config_file}:")


def test_invalid_toml_names_file_and_position(tmp_path: Path) -> None:
    path = tmp_path / "workbench.toml"
    path.write_text("[train]\nlora_r = = 3\n")
    with pytest.raises(ConfigError, match=r"invalid TOML: .*line 2"):
        load_config(path)


def test_update_keeps_comments_and_validates_first(config_file: Path) -> None:
    config_file.write_text(config_file.read_text() + "# my own note\n")
    config = update_config(config_file, {"train.lora_r": 64, "chat.temperature": 0.0})
    assert (config.train.lora_r, config.chat.temperature) == (64, 0.0)
    text = config_file.read_text()
    assert "# my own note" in text
    assert "# LoRA rank: capacity of the adapter." in text
    before = text
    with pytest.raises(ConfigError, match="lora_r"):
        update_config(config_file, {"train.lora_r": -5})
    assert config_file.read_text() == before


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("train.lora_r=32", ("train.lora_r", 32)),
        ("train.learning_rate=1e-4", ("train.learning_rate", 1e-4)),
        ("train.packing=true", ("train.packing", True)),
        (
            "train.base_model=meta-llama/Llama-3.2-1B",
            ("train.base_model", "meta-llama/Llama-3.2-1B"),
        ),
        ('train.target_modules=["q_proj"]', ("train.target_modules", ["q_proj"])),
    ],
)
def test_parse_assignment(given: str, expected: tuple[str, object]) -> None:
    assert parse_assignment(given) == expected


def test_parse_assignment_without_equals_is_refused() -> None:
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_assignment("train.lora_r")
