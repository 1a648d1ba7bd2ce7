"""Compare mode (two models answer one prompt side by side), "send to data" (the conversation,
with its answer corrected, becomes an example tagged from-chat) and "open in chat" from the Data
screen, driven by key presses on the tiny demo model."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from textual.message import Message
from textual.widgets import TextArea

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chat_support import (
    QUESTION,
    SIZE,
    answered,
    answers,
    copy_model,
    load_model,
    notifications,
    open_chat,
    paste,
    pick_path,
    questions,
    send,
    sent,
    wait_until,
)
from eval_support import export_gguf

from screens.app import make_app
from screens.chat import ChatScreen
from screens.chat_dialogs import ChatAnswerEditor, ModelPickerScreen
from screens.data_dialogs import ChoiceScreen
from workbench.accelerator import Accelerator
from workbench.data.store import ExampleStore, Query
from workbench.workspace import Workspace

pytestmark = pytest.mark.slow

SYSTEM = "You write short, keyword-rich page titles."
EXAMPLE = {
    "messages": [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "Topic: Growing basil indoors\nKeywords: basil, windowsill"},
        {"role": "assistant", "content": "Grow Basil on a Windowsill: 7 Easy Steps"},
    ]
}


@pytest.fixture
def ws(workspace: Workspace) -> Workspace:
    return workspace.set_values({"chat.n_ctx": 1024, "chat.max_tokens": 16})


def stored_from_chat(workspace: Workspace) -> list[dict]:
    with ExampleStore(workspace.db_path) as store:
        return [
            {"messages": example.messages, "tags": example.tags, "source": example.source}
            for example in store.iter_examples()
            if "from-chat" in example.tags
        ]


async def test_two_models_answer_one_prompt_side_by_side(
    ws: Workspace, gguf_model: Path, tmp_path: Path
) -> None:
    tuned = copy_model(gguf_model, tmp_path / "models" / "tuned-f16.gguf")
    messages: list[Message] = []
    app = make_app(ws, probe=Accelerator)
    async with app.run_test(size=SIZE, message_hook=messages.append) as pilot:
        screen = await open_chat(pilot)
        await load_model(pilot, screen, gguf_model)
        await send(pilot, screen, QUESTION)  # before comparing: B continues from here
        await answered(pilot, screen)

        await pilot.press("ctrl+b")
        await wait_until(pilot, lambda: isinstance(app.screen, ModelPickerScreen))
        assert app.screen.query_one("#chat-picker-panel").border_title == (
            "Compare with a second model (B)"
        )
        await pick_path(pilot, tuned)
        await wait_until(pilot, lambda: screen.paths[1] == tuned.resolve(), what="model B")
        assert screen.comparing and screen.pane(1).display
        assert screen.pane(0).border_title == f"A · {gguf_model.name}"
        assert screen.pane(1).border_title == "B · tuned-f16.gguf"
        assert questions(screen, 1) == [QUESTION], "B shows the conversation so far"

        await send(pilot, screen, "Now one for a page about tea.")
        await answered(pilot, screen)
        completed = sent(messages, ChatScreen.AnswerCompleted)
        assert [m.side for m in completed] == [0, 0, 1], "A answered twice, then B once"
        for side in (0, 1):
            conversation = screen.conversations[side]
            assert [t["role"] for t in conversation.turns] == ["user", "assistant"] * 2
            assert answers(screen, side)[-1].text == conversation.last_answer
            assert answers(screen, side)[-1].status.endswith("max tokens reached")
            assert answers(screen, side)[-1].label.startswith(f"{'AB'[side]} · ")
        # B's history is A's first answer; after that each goes on from its own answers.
        assert screen.conversations[1].turns[1] == screen.conversations[0].turns[1]

        await pilot.press("ctrl+b")  # compare off: B is unloaded
        await pilot.pause()
        assert not screen.comparing and not screen.pane(1).display
        assert screen.slots.get(1) is None and screen.paths[1] is None
        assert "Compare mode off: model B is unloaded." in notifications(app)


async def test_send_to_data_saves_the_conversation_with_the_corrected_answer(
    ws: Workspace, gguf_model: Path
) -> None:
    app = make_app(ws, probe=Accelerator)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_chat(pilot)
        await pilot.press("ctrl+s")
        assert "Nothing to send yet" in notifications(app)[-1]

        await load_model(pilot, screen, gguf_model)
        screen.settings_panel.set_system_prompt(SYSTEM)
        await send(pilot, screen, QUESTION)
        await answered(pilot, screen)
        model_answer = screen.conversations[0].last_answer
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, ChatAnswerEditor))
        editor = app.screen.query_one(TextArea)
        assert editor.text == model_answer, "the editor starts with the model's answer"
        await pilot.press("f7")  # select all, then type the correction over it
        await paste(pilot, "Cafés Near You: 9 Cozy Spots to Try")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: stored_from_chat(ws), what="the example")
        await pilot.pause()
        assert any("tagged from-chat" in note for note in notifications(app))
        assert screen.conversations[0].last_answer == model_answer, "the chat is unchanged"

    (example,) = stored_from_chat(ws)
    assert example["messages"] == [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": "Cafés Near You: 9 Cozy Spots to Try"},
    ]
    assert example["source"] == f"chat:{gguf_model.name}"
    with ExampleStore(ws.db_path) as store:
        assert store.undo() == f"add an example from chat with {gguf_model.name}"
        assert store.count(Query()) == 0, "one step, undone by the Data screen's u"


async def test_in_compare_mode_you_pick_which_answer_goes_to_the_data(
    ws: Workspace, gguf_model: Path, tmp_path: Path
) -> None:
    tuned = copy_model(gguf_model, tmp_path / "models" / "tuned-f16.gguf")
    app = make_app(ws, probe=Accelerator)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_chat(pilot)
        await load_model(pilot, screen, gguf_model)
        await load_model(pilot, screen, tuned, side=1, key="ctrl+b")
        await send(pilot, screen, QUESTION)
        await answered(pilot, screen)
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, ChoiceScreen))
        await pilot.press("j", "enter")  # B's answer
        await wait_until(pilot, lambda: isinstance(app.screen, ChatAnswerEditor))
        await pilot.press("ctrl+s")  # as the model wrote it
        await wait_until(pilot, lambda: stored_from_chat(ws), what="the example")
        b_answer = screen.conversations[1].last_answer

    (example,) = stored_from_chat(ws)
    assert example["messages"][-1] == {"role": "assistant", "content": b_answer}
    assert example["source"] == "chat:tuned-f16.gguf"


async def test_an_example_opened_from_the_data_screen_is_answered_once_a_model_is_open(
    ws: Workspace, gguf_model: Path
) -> None:
    export_gguf(ws, gguf_model)
    with ExampleStore(ws.db_path) as store:
        store.add_examples([EXAMPLE])
    messages: list[Message] = []
    app = make_app(ws, probe=Accelerator)
    async with app.run_test(size=SIZE, message_hook=messages.append) as pilot:
        await wait_until(pilot, lambda: app.screen.current is not None, what="the example")
        await pilot.press("o")  # Data screen: open the highlighted example in chat
        await wait_until(pilot, lambda: isinstance(app.screen, ModelPickerScreen), what="picker")
        screen = next(s for s in app.screen_stack if isinstance(s, ChatScreen))
        assert questions(screen) == [EXAMPLE["messages"][1]["content"]]
        assert screen.settings_panel.system_prompt == SYSTEM
        assert any("No model loaded: pick one" in note for note in notifications(app))

        await wait_until(pilot, lambda: app.screen.exports, what="the exports")
        await pilot.press("enter")  # the export, highlighted first
        await wait_until(pilot, lambda: sent(messages, ChatScreen.AnswerCompleted), what="answer")
        await answered(pilot, screen)
        assert screen.conversations[0].messages()[:2] == EXAMPLE["messages"][:2]
        (answer,) = answers(screen)
        assert answer.text and answer.text != EXAMPLE["messages"][2]["content"]
