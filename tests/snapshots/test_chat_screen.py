"""What the Chat screen looks like in its main states (`--snapshot-update` to accept changes).

Conversations are put on the screen through its own widgets with fixed text and timings (a
model's speed differs between runs); the picker reads a real GGUF's header."""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "screens"))
from chat_support import SIZE, demo_gguf, not_a_gguf, pick_path, show_model, show_turn, wait_for
from eval_support import export_gguf

from screens.app import make_app
from screens.chat import ChatScreen
from screens.chat_dialogs import ModelPickerScreen
from workbench.accelerator import Accelerator, Gpu
from workbench.workspace import Workspace

H100 = Accelerator((Gpu("NVIDIA H100 80GB HBM3", 70_000, 81_559, 12),))
SEO = Path(__file__).resolve().parents[2] / "sample_data" / "imports" / "seo_pairs.jsonl"
TUNED = Path("/srv/exports/20260224-101500-ab12/model-q4_k_m.gguf")
BASE = Path("/srv/models/llama-3.2-1b-instruct-f16.gguf")
TUNED_LINE = (
    "seo-writer · llama q4_k_m · 807.7 MB · context 4,096 · 17 layers on the GPU · "
    "its own chat template"
)
BASE_LINE = (
    "Llama 3.2 1B Instruct · llama f16 · 2.5 GB · context 4,096 · 17 layers on the GPU · "
    "its own chat template"
)


def pair(index: int) -> tuple[str, str]:
    """(input, answer) of a sample pair."""
    line = SEO.read_text(encoding="utf-8").splitlines()[index]
    messages = json.loads(line)["messages"]
    return messages[1]["content"], messages[2]["content"]


async def quiet(pilot: Pilot[None]) -> None:
    """Let the app's own start-up work (the Data screen's first import) finish, and clear its
    notifications: the snapshot shows the Chat screen only."""
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
    pilot.app.clear_notifications()


def chat_screen(pilot: Pilot[None]) -> ChatScreen:
    return next(s for s in pilot.app.screen_stack if isinstance(s, ChatScreen))


def conversation(compare: bool = False, *keys: str) -> Callable[[Pilot[None]], Awaitable[None]]:
    """A fine-tuned model's answer (and, comparing, the base model's beside it)."""

    async def run(pilot: Pilot[None]) -> None:
        await quiet(pilot)
        await pilot.press("3")
        await pilot.pause()
        screen = chat_screen(pilot)
        question, answer = pair(2)
        show_model(screen, 0, TUNED, TUNED_LINE)
        if compare:
            screen.settings_shown = False
            show_model(screen, 1, BASE, BASE_LINE)
            screen.comparing = True
            await pilot.pause()
        show_turn(screen, 0, question, answer, "214 tokens · first token 0.04 s · 182.6 tokens/s")
        if compare:
            _, other = pair(5)
            show_turn(
                screen,
                1,
                question,
                other[:420],
                "96 tokens · first token 0.07 s · 121.3 tokens/s · stopped",
            )
        await pilot.pause()
        for key in keys:
            await pilot.press(key)
            await pilot.pause()

    return run


def test_conversation(sample_workspace_opened: Workspace, snap_compare: Any) -> None:
    app = make_app(sample_workspace_opened, probe=lambda: H100)
    assert snap_compare(app, terminal_size=SIZE, run_before=conversation())


def test_compare_side_by_side(sample_workspace_opened: Workspace, snap_compare: Any) -> None:
    app = make_app(sample_workspace_opened, probe=lambda: H100)
    assert snap_compare(app, terminal_size=SIZE, run_before=conversation(True))


def test_send_to_data_editor(sample_workspace_opened: Workspace, snap_compare: Any) -> None:
    app = make_app(sample_workspace_opened, probe=lambda: H100)
    assert snap_compare(app, terminal_size=SIZE, run_before=conversation(False, "ctrl+s"))


@pytest.fixture
def exported(
    sample_workspace_opened: Workspace,
    tmp_path_factory: pytest.TempPathFactory,
    demo_model_dir: Path,
) -> Workspace:
    export_gguf(sample_workspace_opened, demo_gguf(tmp_path_factory, demo_model_dir))
    return sample_workspace_opened


def test_model_picker(exported: Workspace, snap_compare: Any) -> None:
    async def run(pilot: Pilot[None]) -> None:
        await quiet(pilot)
        await pilot.press("3", "ctrl+o")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ModelPickerScreen))
        picker = pilot.app.screen
        await wait_for(pilot, lambda: "✓" in str(picker.query_one("#chat-picker-info").render()))

    app = make_app(exported, probe=lambda: H100)
    assert snap_compare(app, terminal_size=SIZE, run_before=run)


def test_a_file_that_is_not_a_gguf(
    sample_workspace_opened: Workspace, snap_compare: Any, tmp_path: Path
) -> None:
    notes = not_a_gguf(tmp_path / "notes.gguf")

    async def run(pilot: Pilot[None]) -> None:
        await quiet(pilot)
        await pilot.press("3", "ctrl+o")
        await pick_path(pilot, notes)
        screen = chat_screen(pilot)
        await wait_for(pilot, lambda: not screen.loading_sides[0], what="the load")
        await pilot.pause()

    app = make_app(sample_workspace_opened, probe=Accelerator)
    assert snap_compare(app, terminal_size=SIZE, run_before=run)
