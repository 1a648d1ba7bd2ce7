"""Bad input on the Chat screen: a file that is not a GGUF, a truncated GGUF, one larger than
free memory, a malicious chat template, a conversation too long for the context, settings out
of range. Each gives a clear message, and the app keeps working."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.widgets import Static

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chat_support import (
    MALICIOUS_TEMPLATE,
    QUESTION,
    SIZE,
    answered,
    answers,
    giant_gguf,
    load_model,
    not_a_gguf,
    notifications,
    open_chat,
    paste,
    pick_path,
    questions,
    send,
    status_line,
    truncated_copy,
    wait_until,
    with_template,
)

from screens.app import make_app
from screens.chat_dialogs import ModelPickerScreen
from workbench.accelerator import Accelerator
from workbench.workspace import Workspace

pytestmark = pytest.mark.slow


@pytest.fixture
def ws(workspace: Workspace) -> Workspace:
    return workspace.set_values({"chat.n_ctx": 1024, "chat.max_tokens": 12})


BAD_FILES: dict[str, tuple[Callable[[Path, Path], Path], str]] = {
    "not a GGUF": (
        lambda model, folder: not_a_gguf(folder / "notes.gguf"),
        "notes.gguf is not a GGUF model file (it does not start with 'GGUF'); export one",
    ),
    "truncated": (
        lambda model, folder: truncated_copy(model, folder / "half.gguf"),
        "half.gguf is truncated: 1,718,544 bytes of 3,437,088 bytes; the download or copy "
        "did not finish, so fetch or export the file again",
    ),
    "larger than memory": (
        lambda model, folder: giant_gguf(folder / "giant.gguf"),
        "giant.gguf needs about 4505.7 GiB of memory with n_ctx=1024",
    ),
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
async def test_a_bad_file_is_named_in_the_picker_and_refused_with_a_clear_message(
    ws: Workspace, gguf_model: Path, tmp_path: Path, kind: str
) -> None:
    make, message = BAD_FILES[kind]
    path = make(gguf_model, tmp_path)
    app = make_app(ws, probe=Accelerator)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_chat(pilot)
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: isinstance(app.screen, ModelPickerScreen))
        picker = app.screen
        picker.query_one("#chat-picker-path").focus()
        await paste(pilot, str(path))
        info = picker.query_one("#chat-picker-info", Static)
        if kind != "larger than memory":  # the header is fine; only loading checks memory
            await wait_until(pilot, lambda: "✗" in str(info.render()), what="the header check")
            assert message in str(info.render()).replace("\n", " ")
        await pilot.press("enter")
        await wait_until(pilot, lambda: not screen.loading_sides[0], what="the load")
        await pilot.pause()
        assert any(message in note for note in notifications(app))
        assert "✗" in status_line(screen) and screen.slots.get(0) is None
        # Nothing crashed: the app takes keys and can open a good model.
        await load_model(pilot, screen, gguf_model)
        assert "llama f16" in status_line(screen)


async def test_a_failed_load_keeps_the_model_you_had(
    ws: Workspace, gguf_model: Path, tmp_path: Path
) -> None:
    app = make_app(ws, probe=Accelerator)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_chat(pilot)
        await load_model(pilot, screen, gguf_model)
        await pilot.press("ctrl+o")
        await pick_path(pilot, not_a_gguf(tmp_path / "notes.gguf"))
        await wait_until(pilot, lambda: not screen.loading_sides[0], what="the load")
        await pilot.pause()
        assert "notes.gguf is not a GGUF model file" in notifications(app)[-1]
        assert "llama f16" in status_line(screen) and screen.paths[0] == gguf_model.resolve()
        await send(pilot, screen, QUESTION)
        await answered(pilot, screen)
        assert answers(screen)[0].status.startswith("12 tokens")


async def test_a_malicious_chat_template_runs_nothing_and_says_so(
    ws: Workspace, gguf_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    evil = with_template(gguf_model, tmp_path / "evil.gguf", MALICIOUS_TEMPLATE)
    app = make_app(ws, probe=Accelerator)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_chat(pilot)
        await load_model(pilot, screen, evil)
        await send(pilot, screen, QUESTION)
        await answered(pilot, screen)
        (answer,) = answers(screen)
        assert "tried an unsafe operation" in answer.error
        assert "do not trust this GGUF file" in answer.error
        assert any("do not trust this GGUF file" in note for note in notifications(app))
        assert answer.has_class("-failed") and answer.text == ""
        assert not (tmp_path / "pwned").exists()

        # The next message leaves the unanswered question out (and it fails the same way).
        await send(pilot, screen, "Hello?")
        await answered(pilot, screen)
        assert questions(screen) == [QUESTION, "Hello?"]
        assert screen.pane(0).turns[0].has_class("-left-out")
        assert [t["content"] for t in screen.conversations[0].turns] == ["Hello?"]


async def test_a_conversation_longer_than_the_context_says_what_to_do(
    ws: Workspace, gguf_model: Path
) -> None:
    app = make_app(ws, probe=Accelerator)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_chat(pilot)
        await pilot.press("ctrl+o")
        await pick_path(pilot, gguf_model, ("n-ctx", "128"))
        await wait_until(pilot, lambda: screen.paths[0] is not None, what="the model")
        loaded = screen.slots.get(0)
        assert loaded is not None and loaded.context_size <= 256  # llama.cpp rounds it up
        assert f"context {loaded.context_size}" in status_line(screen)
        await send(pilot, screen, "Tell me about cafés. " * 80)
        await answered(pilot, screen)
        (answer,) = answers(screen)
        assert f"the context holds {loaded.context_size}: clear the chat" in answer.error
        await pilot.press("ctrl+l")
        await send(pilot, screen, "Hi")
        await answered(pilot, screen)
        (answer,) = answers(screen)
        assert not answer.error and answer.text


async def test_settings_out_of_range_are_named_and_hold_the_message(ws: Workspace) -> None:
    app = make_app(ws, probe=Accelerator)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_chat(pilot)
        temperature = screen.query_one("#chat-temperature")
        temperature.focus()
        temperature.value = ""  # type: ignore[attr-defined]
        await pilot.press("9")
        error = screen.query_one("#chat-settings-error", Static)
        assert str(error.render()) == "Temperature: input should be less than or equal to 5"
        assert error.display and temperature.has_class("-invalid")
        await send(pilot, screen, QUESTION)
        assert "Fix the settings first: Temperature" in notifications(app)[-1]
        assert screen.query_one("#chat-prompt").text == QUESTION  # type: ignore[attr-defined]
        assert screen.conversations[0].turns == []


async def test_the_picker_checks_its_fields_before_loading(ws: Workspace, gguf_model: Path) -> None:
    app = make_app(ws, probe=Accelerator)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_chat(pilot)
        await pilot.press("ctrl+o")
        await pick_path(pilot, Path("/no/such/model.gguf"))
        picker = app.screen
        assert isinstance(picker, ModelPickerScreen)
        assert str(picker.query_one("#chat-picker-error").render()) == (
            "/no/such/model.gguf: no such file."
        )
        picker.query_one("#chat-picker-path").value = ""  # type: ignore[attr-defined]
        await pick_path(pilot, gguf_model, ("n-ctx", "64"))
        assert str(picker.query_one("#chat-picker-error").render()) == (
            "Context size: input should be greater than or equal to 128"
        )
        await pilot.press("escape")
        assert app.screen is screen and screen.slots.get(0) is None
