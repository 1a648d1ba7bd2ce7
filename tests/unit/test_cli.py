"""The `workbench` command: exit codes 0/1/2, messages a user can act on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.config import load_config


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workbench.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        check=False,
    )


def test_help_lists_every_command() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for command in (
        "init",
        "demo-model",
        "data",
        "train",
        "runs",
        "sweep",
        "export",
        "chat",
        "eval",
        "config",
    ):
        assert f"    {command}" in result.stdout


def test_init_then_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", str(tmp_path / "ws"), "--name", "mine"]) == 0
    assert "Created workspace 'mine'" in capsys.readouterr().out
    assert main(["-w", str(tmp_path / "ws"), "config", "check"]) == 0


def test_init_twice_is_a_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["init", str(tmp_path / "ws")])
    assert main(["init", str(tmp_path / "ws")]) == 1
    assert "already a workspace" in capsys.readouterr().err


def test_bad_config_is_one_line_naming_the_key(tmp_path: Path) -> None:
    main(["init", str(tmp_path / "ws")])
    config = tmp_path / "ws" / "workbench.toml"
    config.write_text(config.read_text().replace("lora_r = 16", "lora_r = -1"))
    result = run_cli("-w", str(tmp_path / "ws"), "config", "check")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "workbench.toml:" in lines[0] and "train.lora_r = -1" in lines[0]


def test_workspace_found_from_a_subdirectory(tmp_path: Path) -> None:
    main(["init", str(tmp_path / "ws")])
    result = run_cli("runs", "list", "--json", cwd=tmp_path / "ws" / "runs")
    assert result.returncode == 0
    assert json.loads(result.stdout) == []


def test_no_workspace_is_a_usage_error_with_a_way_out(tmp_path: Path) -> None:
    result = run_cli("runs", "list", cwd=tmp_path)
    assert result.returncode == 2
    assert "workbench init DIR" in result.stderr


def test_unknown_option_is_a_usage_error() -> None:
    assert run_cli("init", "--bogus").returncode == 2


def test_config_set_keeps_comments_and_refuses_bad_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = tmp_path / "ws"
    main(["init", str(ws)])
    assert main(["-w", str(ws), "config", "set", "train.lora_r=32", "train.packing=true"]) == 0
    config = load_config(ws / "workbench.toml")
    assert (config.train.lora_r, config.train.packing) == (32, True)
    assert "# LoRA rank" in (ws / "workbench.toml").read_text()
    assert main(["-w", str(ws), "config", "set", "train.lora_r=zero"]) == 1
    assert "train.lora_r = 'zero'" in capsys.readouterr().err
    assert load_config(ws / "workbench.toml").train.lora_r == 32


def test_config_show_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["init", str(tmp_path / "ws")])
    capsys.readouterr()
    assert main(["-w", str(tmp_path / "ws"), "config", "show", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["train"]["lora_r"] == 16


def test_demo_model_command_builds_a_loadable_model(tmp_path: Path) -> None:
    result = run_cli("demo-model", str(tmp_path / "tiny"), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["path"] == str(tmp_path / "tiny")
    assert 1_000_000 < report["bytes"] < 20_000_000
    config = json.loads((tmp_path / "tiny" / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert (tmp_path / "tiny" / "tokenizer.model").stat().st_size > 0


def test_demo_model_is_built_once_into_the_cache(isolated_machine: Path) -> None:
    from workbench.demo_model import ensure_demo_model

    first = ensure_demo_model()
    assert first == isolated_machine / "cache" / "workbench" / "models" / "demo-tiny"
    stamp = (first / "model.safetensors").stat().st_mtime_ns
    assert ensure_demo_model() == first
    assert (first / "model.safetensors").stat().st_mtime_ns == stamp
