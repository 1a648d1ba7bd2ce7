"""A chat's turns, and "send to data": a good (or corrected) answer becomes a training example.

The Chat screen and `workbench chat` keep one :class:`Conversation` per model pane; the engine
only ever sees `conversation.messages()`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workbench.chat.errors import ChatError

if TYPE_CHECKING:
    from workbench.data.store import ExampleStore

FROM_CHAT_TAG = "from-chat"
CHAT_SOURCE = "chat"


@dataclass
class Conversation:
    """The system prompt and the user/assistant turns, oldest first."""

    system_prompt: str = ""
    turns: list[dict[str, str]] = field(default_factory=list)

    def messages(self) -> list[dict[str, str]]:
        """What the model is sent: the system prompt (when set) and every turn."""
        system = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return [*system, *(dict(turn) for turn in self.turns)]

    def ask(self, text: str) -> list[dict[str, str]]:
        """Add a user turn; the messages to answer."""
        self.turns.append({"role": "user", "content": text})
        return self.messages()

    def answered(self, text: str) -> None:
        """Add the model's answer (also a stopped, partial one)."""
        self.turns.append({"role": "assistant", "content": text})

    @property
    def last_answer(self) -> str | None:
        if self.turns and self.turns[-1]["role"] == "assistant":
            return self.turns[-1]["content"]
        return None

    def regenerate(self) -> list[dict[str, str]]:
        """Drop the last answer; the messages to answer again.

        Raises:
            ChatError: nothing has been asked yet.
        """
        if self.last_answer is not None:
            self.turns.pop()
        if not self.turns or self.turns[-1]["role"] != "user":
            raise ChatError("nothing to regenerate: ask something first")
        return self.messages()

    def clear(self) -> None:
        """Forget every turn (the system prompt stays)."""
        self.turns.clear()

    def to_record(self, answer: str | None = None) -> dict[str, Any]:
        """The conversation as a training example (`{"messages": [...]}`).

        `answer` replaces the last answer (the user's correction); the example must end with
        an answer to a question.

        Raises:
            ChatError: no question has been answered yet.
        """
        turns = [dict(turn) for turn in self.turns]
        if answer is not None:
            if turns and turns[-1]["role"] == "assistant":
                turns[-1]["content"] = answer
            else:
                turns.append({"role": "assistant", "content": answer})
        if len(turns) < 2 or turns[-1]["role"] != "assistant" or not turns[-1]["content"].strip():
            raise ChatError("nothing to save yet: the example needs a question and an answer")
        system = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return {"messages": [*system, *turns]}

    @classmethod
    def from_messages(cls, messages: Sequence[Mapping[str, Any]]) -> Conversation:
        """A conversation from OpenAI-style messages (a leading system message is the prompt)."""
        items = [{"role": str(m["role"]), "content": str(m.get("content") or "")} for m in messages]
        system = ""
        if items and items[0]["role"] == "system":
            system = items.pop(0)["content"]
        return cls(system, items)

    @classmethod
    def from_example_input(cls, messages: Sequence[Mapping[str, Any]]) -> Conversation:
        """An example opened in chat: its input, without the answer(s) at the end."""
        conversation = cls.from_messages(messages)
        while conversation.turns and conversation.turns[-1]["role"] == "assistant":
            conversation.turns.pop()
        return conversation


def send_to_data(
    store: ExampleStore,
    conversation: Conversation,
    answer: str | None = None,
    model: str = "",
) -> int:
    """Save the conversation (its last answer replaced by `answer` if given) as a new example
    tagged `from-chat`; its id. One undoable action in the store.
    """
    record = conversation.to_record(answer)
    if model:
        record["chat_model"] = model
    label = f"add an example from chat{f' with {model}' if model else ''}"
    source = f"{CHAT_SOURCE}:{model}" if model else CHAT_SOURCE
    (example_id,) = store.add_examples([record], source=source, label=label, tags=[FROM_CHAT_TAG])
    return example_id
