"""Fixtures shared by every test layer: the machine is isolated, workspaces are temporary,
and the tiny demo model is built once per session."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from workbench.workspace import Workspace, init_workspace, open_workspace

REPO = Path(__file__).resolve().parents[1]
SAMPLE_DATA = REPO / "sample_data"


@pytest.fixture(autouse=True)
def isolated_machine(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Point the user's config, cache and state dirs at a temporary directory; quiet Textual."""
    home = tmp_path_factory.mktemp("home")
    for variable, sub in (
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_CACHE_HOME", "cache"),
        ("XDG_STATE_HOME", "state"),
    ):
        monkeypatch.setenv(variable, str(home / sub))
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.setenv("TEXTUAL_ANIMATIONS", "none")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    return home


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    """A new, empty workspace."""
    return init_workspace(tmp_path / "ws", name="test-ws")


@pytest.fixture
def sample_workspace(tmp_path: Path) -> Path:
    """A copy of the bundled sample workspace, without any state a developer left in it."""
    target = tmp_path / "sample_data"
    shutil.copytree(
        SAMPLE_DATA,
        target,
        ignore=shutil.ignore_patterns("examples.db*", "runs", "exports", "evals"),
    )
    return target


@pytest.fixture
def sample_workspace_opened(sample_workspace: Path) -> Workspace:
    return open_workspace(sample_workspace)


# --------------------------------------------------------------------------
# Demo base model (workbench.demo_model)
#
# A tiny random-weight Llama with a ChatML SentencePiece tokenizer, standing in
# for a real base model. Built once per session (well under a second); tests
# must treat the directory as read-only -- copy it before changing anything.
# --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def demo_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of the session's demo base model directory."""
    from workbench.demo_model import build_demo_model

    return build_demo_model(tmp_path_factory.mktemp("demo-model"))


@pytest.fixture
def gguf_model(tmp_path_factory: pytest.TempPathFactory, demo_model_dir: Path) -> Path:
    """The demo model as an f16 GGUF, converted once per session and shared by the xdist
    workers (read-only, like `demo_model_dir`)."""
    unit = str(REPO / "tests" / "unit")
    if unit not in sys.path:
        sys.path.insert(0, unit)
    from fake_anthropic import demo_gguf

    return demo_gguf(tmp_path_factory, demo_model_dir)
