"""A chat's turns, regenerate and clear, and "send to data": a good or corrected answer becomes
a training example tagged from-chat in the workspace's real examples database."""

from __future__ import annotations

import pytest

from workbench.chat.conversation import FROM_CHAT_TAG, Conversation, send_to_data
from workbench.chat.errors import ChatError
from workbench.data.store import ExampleStore, Query
from workbench.workspace import Workspace


def test_turns_regenerate_and_clear() -> None:
    chat = Conversation("Be brief.")
    assert chat.ask("Title for tea?") == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Title for tea?"},
    ]
    chat.answered("Tea Time")
    assert chat.last_answer == "Tea Time"
    again = chat.regenerate()
    assert again[-1] == {"role": "user", "content": "Title for tea?"} and chat.last_answer is None
    chat.clear()
    assert chat.messages() == [{"role": "system", "content": "Be brief."}]
    with pytest.raises(ChatError, match="ask something first"):
        chat.regenerate()


def test_an_example_opened_in_chat_keeps_its_input_only() -> None:
    example = [
        {"role": "system", "content": "Write titles."},
        {"role": "user", "content": "Keyword: tea"},
        {"role": "assistant", "content": "All About Tea"},
    ]
    chat = Conversation.from_example_input(example)
    assert chat.system_prompt == "Write titles."
    assert chat.messages() == example[:2]


def test_send_to_data_saves_a_corrected_answer_as_a_tagged_example(workspace: Workspace) -> None:
    chat = Conversation("Write titles.")
    chat.ask("Keyword: green tea")
    chat.answered("Green Tea Green Tea Green Tea")
    with ExampleStore(workspace.db_path) as store:
        example_id = send_to_data(store, chat, answer="Green Tea, Brewed Right", model="m.gguf")
        (tagged,) = store.ids(Query(tag=FROM_CHAT_TAG))
        example = store.get(tagged)
        assert store.undo_label() == "add an example from chat with m.gguf"
    assert tagged == example_id
    assert example.messages == [
        {"role": "system", "content": "Write titles."},
        {"role": "user", "content": "Keyword: green tea"},
        {"role": "assistant", "content": "Green Tea, Brewed Right"},
    ]
    assert example.tags == (FROM_CHAT_TAG,) and example.source == "chat:m.gguf"
    assert chat.last_answer == "Green Tea Green Tea Green Tea", "the chat itself is unchanged"


def test_nothing_to_save_before_an_answer(workspace: Workspace) -> None:
    chat = Conversation()
    chat.ask("Keyword: tea")
    with (
        ExampleStore(workspace.db_path) as store,
        pytest.raises(ChatError, match="nothing to save"),
    ):
        send_to_data(store, chat)


def test_settings_come_from_the_workspace_chat_table(workspace: Workspace) -> None:
    from workbench.chat.engine import ChatSettings

    workspace = workspace.set_values({"chat.temperature": 0.2, "chat.seed": 7, "chat.threads": 3})
    settings = ChatSettings.from_config(workspace.config.chat, max_tokens=64)
    assert (settings.temperature, settings.seed, settings.threads) == (0.2, 7, 3)
    assert settings.max_tokens == 64 and settings.n_ctx == workspace.config.chat.n_ctx
