"""The Chat screen by keyboard alone, without a model: typing starts a message, the number keys
still switch screens, Esc leaves the message box, the palette and the help know the screen."""

from __future__ import annotations

import sys
from pathlib import Path

from textual.widgets import Markdown

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chat_support import SIZE, open_chat, wait_until

from screens.app import make_app
from screens.chat_dialogs import ModelPickerScreen
from screens.data import DataScreen
from screens.help import HelpScreen
from screens.widgets.chat_prompt import ChatPromptInput
from screens.widgets.chat_transcript import ChatTranscript
from workbench.accelerator import Accelerator
from workbench.workspace import Workspace


async def test_typing_starts_a_message_and_the_number_keys_still_switch_screens(
    workspace: Workspace,
) -> None:
    app = make_app(workspace, probe=Accelerator)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_chat(pilot)
        prompt = screen.query_one(ChatPromptInput)
        assert isinstance(app.focused, ChatTranscript)
        await pilot.press("h", "i", "space", "5")
        assert app.focused is prompt and prompt.text == "hi 5"
        await pilot.press("ctrl+j", "x")
        assert prompt.text == "hi 5\nx", "Ctrl+J starts a new line, Enter would send"
        await pilot.press("escape")  # leaves the message box (nothing is being answered)
        assert isinstance(app.focused, ChatTranscript) and prompt.text == "hi 5\nx"
        await pilot.press("1")
        assert isinstance(app.screen, DataScreen)
        await pilot.press("3")
        assert app.screen is screen


async def test_the_palette_has_the_chat_commands(workspace: Workspace) -> None:
    app = make_app(workspace, probe=Accelerator)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_chat(pilot)
        titles = [command.title for command in screen.palette_commands()]
        assert titles[:3] == [
            "chat: open model",
            "chat: compare with a second model",
            "chat: regenerate",
        ]
        assert "chat: send to data" in titles and "chat: unload models" in titles
        await pilot.press("ctrl+p")
        await pilot.press(*"chat: compare")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ModelPickerScreen))
        assert app.screen.query_one("#chat-picker-panel").border_title == (
            "Compare with a second model (B)"
        )


async def test_f1_explains_the_focused_widget_the_screen_and_its_keys(
    workspace: Workspace,
) -> None:
    app = make_app(workspace, probe=Accelerator)
    async with app.run_test(size=SIZE) as pilot:
        await open_chat(pilot)
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        text = app.screen.query_one(Markdown).source
        assert text.startswith("## Here\nThe conversation with this model")
        assert "## Chat" in text
        assert "| `^o` | Open a GGUF model: the workspace's exports, or any path |" in text
        assert "| `^s` | Save the conversation (answer corrected if need be)" in text
