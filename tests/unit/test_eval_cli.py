"""`workbench eval`: what a user sees when something is missing (the whole flow is in e2e)."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.cli import main
from workbench.evaluate.launch import key_problem
from workbench.workspace import Workspace


def run(ws: Workspace, *args: str) -> int:
    return main(["-w", str(ws.root), "eval", *args])


def test_without_a_key_the_cli_says_what_to_set(
    workspace: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")
    assert run(workspace, "--model", str(model)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("workbench: set ANTHROPIC_API_KEY to your Anthropic API key")
    assert len(err.splitlines()) == 1 and "never saved" in err
    assert list(workspace.evals_dir.iterdir()) == []


def test_without_a_model_the_cli_says_how_to_get_one(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(workspace) == 2
    assert "pass --model GGUF" in capsys.readouterr().err
    export = workspace.exports_dir / "e1"
    export.mkdir()
    (export / "model-f16.gguf").write_bytes(b"GGUF")
    assert run(workspace, "--limit", "5") == 2
    assert f"e.g. --model {export / 'model-f16.gguf'}" in capsys.readouterr().err


def test_a_missing_model_file_or_empty_test_split_is_explained(
    workspace: Workspace,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-cli")
    assert run(workspace, "--model", str(tmp_path / "nope.gguf")) == 2
    assert "no such GGUF file: export the model first" in capsys.readouterr().err
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")
    assert run(workspace, "--model", str(model)) == 2
    assert "no examples in the val split: split the data first" in capsys.readouterr().err


def test_unknown_evals_and_an_empty_history(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(workspace, "report", "20990101") == 2
    assert "no eval '20990101'" in capsys.readouterr().err
    assert run(workspace, "list") == 0
    assert "no evals yet: `workbench eval --model GGUF` starts one" in capsys.readouterr().out
    assert run(workspace, "list", "--json") == 0
    assert capsys.readouterr().out.strip() == "[]"


def test_the_screen_can_tell_what_to_set_before_starting(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    problem = key_problem(workspace.config)
    assert problem is not None and problem.startswith("set ANTHROPIC_API_KEY")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-screen")
    assert key_problem(workspace.config) is None
