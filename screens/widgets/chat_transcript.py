"""One side of the Chat screen: the model's status line above the conversation with it.

Answers are plain text, exactly as the model wrote them (what "send to data" would save), with
their timings underneath. An answer grows while it streams: the screen assigns its `text` and
`status` reactives from batched messages, and the transcript follows the growing text unless
the user has scrolled up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rich.console import Group, RenderableType
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Static

EMPTY_CHAT = """\
[b]Chat with a GGUF model to judge it by hand.[/b]

Press [b]Ctrl+O[/b] to open one: this workspace's exports are listed first, or type the path \
of any .gguf file. Then type below and press [b]Enter[/b].

[b]Ctrl+B[/b] compares two models side by side (base vs fine-tuned, q4_k_m vs f16, two runs).
[b]Ctrl+S[/b] sends a good answer, corrected if need be, to the training data.
[b]Ctrl+T[/b] shows or hides the settings: system prompt, temperature, top-p, max tokens, repeat \
penalty.
On the Data screen, [b]o[/b] opens an example's input here.

No GGUF yet? Train a run, then export it ([b]workbench export RUN_ID[/b]).
"""


CONTROL_PICTURES = {code: 0x2400 + code for code in range(32) if chr(code) not in "\n\t"} | {
    0x7F: 0x2421
}


def shown(text: str) -> Text:
    """Text as the terminal can show it: control characters (a tiny or broken model writes
    them) become their visible symbols (␔), so they cannot garble the screen."""
    return Text(text.translate(CONTROL_PICTURES))


class UserTurn(Widget):
    """A message you sent."""

    DEFAULT_CSS = "UserTurn { height: auto; }"

    def __init__(self, text: str, note: str = "") -> None:
        super().__init__(classes="chat-turn chat-user")
        self.text = text
        self.note = note

    def render(self) -> RenderableType:
        label = Text("you", "bold cyan")
        if self.note:
            label.append(f" · {self.note}", "dim")
        return Group(label, shown(self.text))


class AnswerTurn(Widget):
    """The model's answer: its text (growing while it streams), then its timings."""

    DEFAULT_CSS = "AnswerTurn { height: auto; }"

    text: reactive[str] = reactive("", layout=True)
    status: reactive[str] = reactive("", layout=True)
    """`42 tokens · first token 0.21 s · 37.5 tokens/s`, or what is happening now."""
    error: reactive[str] = reactive("", layout=True)
    """Why the model could not answer ('' when it did)."""

    def __init__(self, label: str, text: str = "", status: str = "") -> None:
        super().__init__(classes="chat-turn chat-answer")
        self.label = label
        self.set_reactive(AnswerTurn.text, text)
        self.set_reactive(AnswerTurn.status, status)

    def render(self) -> RenderableType:
        parts: list[RenderableType] = [Text(self.label, "bold green")]
        if self.error:
            parts.append(Text(f"Could not answer: {self.error}", "bold red"))
        elif self.text:
            parts.append(shown(self.text))
        else:
            parts.append(Text("…", "dim"))
        if self.status:
            parts.append(Text(self.status, "dim italic"))
        return Group(*parts)

    def watch_error(self, error: str) -> None:
        self.set_class(bool(error), "-failed")


class NoteTurn(Static):
    """A line about the conversation itself (a model switch, an example opened)."""

    def __init__(self, text: str) -> None:
        super().__init__(Text(text, "dim italic"), classes="chat-turn chat-note")


SCREEN_KEYS = frozenset("1234?")
"""Keys the app keeps (switch screens, help); every other character starts a message."""


class ChatTranscript(VerticalScroll, can_focus=True):
    """The conversation, oldest first; follows an answer as it grows."""

    HELP = """\
The conversation with this model: your messages, its answers as it wrote them, and under each
answer the number of tokens, the time to the first token and the speed in tokens per second.
↑/↓ and Page Up/Down scroll, the number keys switch screens. Start typing (or press **Enter**)
to write a message.
**Ctrl+R** answers your last message again, **Ctrl+S** sends the last answer (corrected if need
be) to the training data, **Ctrl+L** clears the conversation.
"""

    @dataclass
    class TypingStarted(Message):
        """A key that begins a message was pressed here ('' for Enter)."""

        character: str

    def on_key(self, event: events.Key) -> None:
        if event.key == "enter" or (
            event.is_printable and event.character and event.character not in SCREEN_KEYS
        ):
            event.stop()
            event.prevent_default()
            typed = event.character if event.key != "enter" else ""
            self.post_message(self.TypingStarted(typed or ""))

    def follow(self) -> None:
        """Keep the bottom in view as the answer grows, unless the user scrolled up."""
        if self.scroll_y >= self.max_scroll_y - 1:
            self.scroll_end(animate=False)  # after the next layout, when the text has grown


class ChatPane(Vertical):
    """One model's side: its status line, then the conversation with it."""

    model_status: reactive[str] = reactive("")
    """The status line (console markup): the model loaded, loading, or why it failed."""

    def __init__(self, side: int, *, id: str) -> None:
        super().__init__(id=id, classes="chat-pane")
        self.side = side

    def compose(self) -> ComposeResult:
        yield Static("", classes="chat-model-line")
        with ChatTranscript(classes="chat-transcript"):
            if self.side == 0:
                yield Static(EMPTY_CHAT, classes="chat-empty")

    def watch_model_status(self, status: str) -> None:
        self.query_one(".chat-model-line", Static).update(status)

    @property
    def transcript(self) -> ChatTranscript:
        return self.query_one(ChatTranscript)

    @property
    def turns(self) -> list[Widget]:
        return [child for child in self.transcript.children if child.has_class("chat-turn")]

    def show_empty(self, shown: bool) -> None:
        for empty in self.query(".chat-empty"):
            empty.display = shown

    def add(self, turn: Widget) -> Widget:
        self.show_empty(False)
        self.transcript.mount(turn)
        self.transcript.scroll_end(animate=False)
        return turn

    def add_user(self, text: str, note: str = "") -> UserTurn:
        turn = UserTurn(text, note)
        self.add(turn)
        return turn

    def add_answer(self, label: str, text: str = "", status: str = "") -> AnswerTurn:
        turn = AnswerTurn(label, text, status)
        self.add(turn)
        return turn

    def add_note(self, text: str) -> None:
        self.add(NoteTurn(text))

    def add_history(self, turns: Sequence[Mapping[str, str]], label: str, note: str) -> None:
        """Earlier turns (of an example, or of the other side), shown as they are."""
        for turn in turns:
            if turn["role"] == "user":
                self.add_user(turn["content"], note)
            else:
                self.add_answer(label, turn["content"], note)

    def follow(self) -> None:
        self.transcript.follow()

    def last_answer(self) -> AnswerTurn | None:
        """The answer at the bottom of the conversation, if the bottom is an answer."""
        turns = self.turns
        if turns and isinstance(turns[-1], AnswerTurn):
            return turns[-1]
        return None

    def drop_last_answer(self) -> None:
        """Remove the answer at the bottom (to answer again)."""
        answer = self.last_answer()
        if answer is not None:
            answer.remove()

    def leave_out_unanswered(self) -> None:
        """The last question got no answer and is left out: dim it (and its error)."""
        turns = self.turns
        for turn in reversed(turns):
            turn.add_class("-left-out")
            if isinstance(turn, UserTurn):
                break

    def clear(self) -> None:
        for turn in self.turns:
            turn.remove()
        self.show_empty(True)
