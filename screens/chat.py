"""The Chat screen: talk to a GGUF model, compare two side by side, send answers to the data.

Models load in a thread worker (`ChatModel.load`: header check, memory check, a test prompt in
a child process on the first load of a file) and are owned by `ModelSlots`, which closes them
when they are replaced or the app exits, never under a running answer. An answer streams in a
thread worker through `compare_stream`; its tokens are batched (`TextBatcher`) into a message
every 30 ms or so carrying the text so far, and the handlers only assign the answer widget's
reactives. Esc sets the cancel event; the engine then ends the answer at the next token.

Each side (A, and B in compare mode) keeps its own `Conversation`: one prompt goes to both, each
model continues from its own answers. A question that has no answer yet (no model loaded, a
model still loading, an answer that failed) waits at the end of its conversation: it is
answered once a model is loaded, Ctrl+R tries again, and a new message leaves it out.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import TextArea
from textual.worker import Worker, WorkerState

from screens.base import PaletteCommand, WorkbenchScreen
from screens.chat_dialogs import (
    ChatAnswerEditor,
    ModelPickerScreen,
    PickerStart,
    answer_choice_label,
)
from screens.chat_session import (
    SIDES,
    ModelChoice,
    ModelSlots,
    TextBatcher,
    answer_settings,
    done_line,
    model_line,
    skipped_answer,
    streaming_line,
)
from screens.data import DataScreen
from screens.data_dialogs import ChoiceScreen
from screens.widgets.chat_prompt import ChatPromptInput
from screens.widgets.chat_settings import ChatSettingsPanel
from screens.widgets.chat_transcript import AnswerTurn, ChatPane, ChatTranscript
from workbench.chat.conversation import Conversation
from workbench.chat.errors import ChatError
from workbench.workspace import Workspace

if TYPE_CHECKING:
    from workbench.chat.engine import AnswerDone, ChatModel, ChatSettings

AnswerJob = tuple[int, "ChatModel", list[dict[str, str]]]
"""(side, model, messages): one model's turn in an answer worker."""
LEFT_OUT = "Ctrl+R tries again; a new message leaves this question out"


class ChatScreen(WorkbenchScreen):
    MODE = "chat"
    AUTO_FOCUS = "ChatTranscript"  # the number keys switch screens; typing starts a message
    HELP = """\
## Chat
Talk to a GGUF model to judge it by hand, and send good answers back into the data.

- **Ctrl+O** opens a model: this workspace's exports first, or any `.gguf` path, with its
  context size and GPU layers (every layer on the GPU when CUDA is present)
- **Enter** sends your message; the answer streams in, with its time to first token and
  tokens per second underneath. **Esc** stops it (what was written so far is kept)
- **Ctrl+R** answers the last message again, **Ctrl+L** clears the conversation
- **Ctrl+B** compares: a second model answers every message beside the first (base vs
  fine-tuned, q4_k_m vs f16, two runs); each continues from its own answers. Ctrl+B again ends it
- **Ctrl+S** sends the conversation, with its last answer corrected if need be, to the
  training data as a new example tagged `from-chat`
- **Ctrl+T** shows or hides the settings: system prompt, temperature, top-p, max tokens, repeat
  penalty (they apply from the next message on)
- **Esc** (when nothing is being answered) leaves the message box: the number keys then switch
  screens; typing anything else starts a message again

On the Data screen, **o** opens an example's input here; it is answered as soon as a model is
loaded.
"""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "ctrl+o",
            "open_model",
            "Open model",
            id="chat.open",
            tooltip="Open a GGUF model: the workspace's exports, or any path",
        ),
        Binding(
            "escape",
            "stop",
            "Stop",
            id="chat.stop",
            tooltip="Stop the answer being written (the text so far is kept)",
        ),
        Binding(
            "escape",
            "leave_prompt",
            "Leave",
            id="chat.leave",
            show=False,
            tooltip="Leave the message box (then the number keys switch screens)",
        ),
        Binding(
            "ctrl+r",
            "regenerate",
            "Regenerate",
            id="chat.regenerate",
            tooltip="Answer the last message again",
        ),
        Binding(
            "ctrl+s",
            "send_to_data",
            "Send to data",
            id="chat.send",
            tooltip="Save the conversation (answer corrected if need be) as a training example",
        ),
        Binding(
            "ctrl+b",
            "compare",
            "Compare",
            id="chat.compare",
            tooltip="Compare with a second model side by side (again: stop comparing)",
        ),
        Binding(
            "ctrl+l",
            "clear",
            "Clear",
            id="chat.clear",
            show=False,
            tooltip="Forget the conversation (the system prompt stays)",
        ),
        Binding(
            "ctrl+t",
            "toggle_settings",
            "Settings",
            id="chat.settings",
            tooltip="Show or hide the system prompt and sampling settings",
        ),
    ]

    answering: reactive[bool] = reactive(False)
    """An answer is being generated (one at a time; in compare mode, side by side)."""
    comparing: reactive[bool] = reactive(False)
    settings_shown: reactive[bool] = reactive(True)

    # --- messages from the workers ------------------------------------------------------------

    @dataclass
    class ModelLoaded(Message):
        side: int
        path: Path
        line: str
        load_s: float
        ticket: int

    @dataclass
    class ModelLoadFailed(Message):
        side: int
        path: Path
        reason: str
        ticket: int

    @dataclass
    class AnswerStarted(Message):
        side: int
        prompt_tokens: int
        context_size: int

    @dataclass
    class AnswerStreamed(Message):
        """The answer so far (sent every 30 ms or so while tokens come in)."""

        side: int
        text: str
        tokens: int
        first_token_s: float
        elapsed_s: float

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, ChatScreen.AnswerStreamed) and message.side == self.side

    @dataclass
    class AnswerCompleted(Message):
        side: int
        done: AnswerDone

    @dataclass
    class AnswerFailed(Message):
        side: int
        reason: str

    class AnsweringEnded(Message):
        """Every model of the turn has answered (or failed, or was stopped)."""

    @dataclass
    class SentToData(Message):
        example_id: int

    @dataclass
    class SendFailed(Message):
        reason: str

    def __init__(self) -> None:
        super().__init__()
        self.slots = ModelSlots()
        self.paths: list[Path | None] = [None, None]
        self.lines = ["", ""]
        """Each side's model line (kept to show again after a failed load)."""
        self.conversations = [Conversation(), Conversation()]
        self.loading_sides = [False, False]
        self._answers: dict[int, AnswerTurn] = {}
        """The answer widget being written, per side."""
        self._queued: set[int] = set()
        """Sides whose last question waits for their model (loading, or busy answering)."""
        self._cancel = threading.Event()

    # --- layout ---------------------------------------------------------------------------------

    @property
    def workspace(self) -> Workspace:
        return self.workbench.workspace

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="chat-body"):
            with Vertical(id="chat-main"):
                with Horizontal(id="chat-panes"):
                    yield ChatPane(0, id="chat-pane-a")
                    yield ChatPane(1, id="chat-pane-b")
                yield ChatPromptInput(
                    id="chat-prompt",
                    placeholder="Message the model · Enter sends · Ctrl+J new line · Esc leaves",
                )
            yield ChatSettingsPanel(self.workspace.config.chat, id="chat-settings")

    def on_mount(self) -> None:
        system = self.workspace.config.chat.system_prompt
        self.conversations = [Conversation(system), Conversation(system)]
        self.pane(1).display = False
        for side in (0, 1):
            self._show_model(side)

    def on_unmount(self) -> None:
        self._cancel.set()
        self.slots.close_all()

    def pane(self, side: int) -> ChatPane:
        return self.query_one(f"#chat-pane-{SIDES[side].lower()}", ChatPane)

    @property
    def settings_panel(self) -> ChatSettingsPanel:
        return self.query_one(ChatSettingsPanel)

    @property
    def sides(self) -> tuple[int, ...]:
        """The sides in play: A, and B while comparing."""
        return (0, 1) if self.comparing else (0,)

    def side_label(self, side: int) -> str:
        """`demo-f16.gguf`, or `A · demo-f16.gguf` while comparing."""
        path = self.paths[side]
        name = path.name if path is not None else "no model"
        return f"{SIDES[side]} · {name}" if self.comparing else name

    def _show_model(self, side: int) -> None:
        pane = self.pane(side)
        pane.border_title = escape(self.side_label(side))
        if self.paths[side] is None:
            pane.model_status = "[dim]No model loaded · Ctrl+O opens one[/]"
        else:
            pane.model_status = escape(self.lines[side])

    def watch_comparing(self, comparing: bool) -> None:
        self.pane(1).display = comparing
        for side in (0, 1):
            self._show_model(side)
        self.refresh_bindings()

    def watch_answering(self) -> None:
        self.refresh_bindings()

    def watch_settings_shown(self, shown: bool) -> None:
        self.settings_panel.display = shown

    def action_toggle_settings(self) -> None:
        self.settings_shown = not self.settings_shown

    def action_focus_prompt(self) -> None:
        self.query_one(ChatPromptInput).focus()

    def action_leave_prompt(self) -> None:
        self.pane(0).transcript.focus()

    @on(ChatTranscript.TypingStarted)
    def typing_started(self, message: ChatTranscript.TypingStarted) -> None:
        prompt = self.query_one(ChatPromptInput)
        prompt.focus()
        if message.character:
            prompt.insert(message.character)

    # --- opening models -------------------------------------------------------------------------

    def action_open_model(self, side: int = 0) -> None:
        """Pick a model for a side, then load it."""
        accelerator = self.workbench.accelerator
        gpu = accelerator.gpus[0].name if accelerator is not None and accelerator.gpus else None
        title = "Open a model" if side == 0 else "Compare with a second model (B)"
        start = PickerStart(
            title,
            self.workspace.exports_dir,
            self.workspace.root,
            self.workspace.config.chat,
            gpu,
            self.paths[side],
        )
        self.app.push_screen(ModelPickerScreen(start), partial(self._picked, side))

    def _picked(self, side: int, choice: ModelChoice | None) -> None:
        if choice is None:
            return
        if side == 1 and not self.comparing:
            self._start_comparing()
        self.open_model(side, choice)

    def open_model(self, side: int, choice: ModelChoice) -> None:
        """Load `choice` on a side (the conversation goes on with it)."""
        from workbench.chat.engine import ChatSettings

        settings = ChatSettings.from_config(
            self.workspace.config.chat, n_ctx=choice.n_ctx, n_gpu_layers=choice.n_gpu_layers
        )
        self.loading_sides[side] = True
        self.pane(side).model_status = (
            f"[b]Loading {escape(choice.path.name)}…[/] [dim](the first load of a file runs a "
            "test prompt in a separate process)[/]"
        )
        self.load_model(side, choice.path, settings, self.slots.ticket(side))

    @work(
        thread=True,
        exclusive=False,  # each side loads on its own; the newest load of a side wins (tickets)
        exit_on_error=False,
        group="chat-load",
        description="load the model",
    )
    def load_model(self, side: int, path: Path, settings: ChatSettings, ticket: int) -> None:
        from workbench.chat.engine import ChatModel

        try:
            model = ChatModel.load(path, settings)
        except ChatError as exc:
            self.post_message(self.ModelLoadFailed(side, path, str(exc), ticket))
            return
        if self.slots.put(side, model, ticket):
            line, load_s = model_line(model), model.loaded.load_s
            self.post_message(self.ModelLoaded(side, path, line, load_s, ticket))

    @on(ModelLoaded)
    def model_loaded(self, message: ModelLoaded) -> None:
        side, pane = message.side, self.pane(message.side)
        switched = self.paths[side] is not None and bool(pane.turns)
        self.loading_sides[side] = message.ticket != self.slots.ticket_now(side)
        self.paths[side], self.lines[side] = message.path, message.line
        self._show_model(side)
        if switched:
            pane.add_note(f"now answering: {message.path.name}")
        self.notify(f"Loaded {message.path.name} in {message.load_s:.1f} s.", timeout=3)
        if self._waiting(side):
            self._answer([side])

    @on(ModelLoadFailed)
    def model_load_failed(self, message: ModelLoadFailed) -> None:
        side = message.side
        if message.ticket != self.slots.ticket_now(side):
            return  # a newer load of this side replaced it
        self.loading_sides[side] = False
        self._queued.discard(side)
        self.notify(message.reason, title="Could not open the model", severity="error", timeout=12)
        if self.paths[side] is None:
            failed = f"[b red]✗ {escape(message.reason)}[/] [dim]· Ctrl+O to pick another[/]"
            self.pane(side).model_status = failed
        else:
            self._show_model(side)  # the model loaded before stays

    # --- compare mode ---------------------------------------------------------------------------

    def action_compare(self) -> None:
        if self.comparing:
            self.stop_comparing()
        else:
            self.action_open_model(1)

    def _start_comparing(self) -> None:
        """B continues from A's conversation so far."""
        source = self.conversations[0]
        self.conversations[1] = Conversation(source.system_prompt, [dict(t) for t in source.turns])
        pane = self.pane(1)
        pane.clear()
        if source.turns:
            label = f"A · {self.paths[0].name}" if self.paths[0] else "A"
            pane.add_history(source.turns, label, "from A")
        self.settings_shown = False  # room for two answers side by side; Ctrl+T shows them
        self.comparing = True

    def stop_comparing(self) -> None:
        self.slots.remove(1)
        self.paths[1], self.lines[1], self.loading_sides[1] = None, "", False
        self._queued.discard(1)
        self.pane(1).clear()
        self.comparing = False
        self.notify("Compare mode off: model B is unloaded.", timeout=3)

    # --- asking and answering -------------------------------------------------------------------

    @on(ChatPromptInput.Submitted)
    def prompt_submitted(self, event: ChatPromptInput.Submitted) -> None:
        if self.answering:
            self.notify("Still answering: wait for it, or press Esc to stop it.", timeout=3)
            return
        problem = self.settings_panel.problem()
        if problem:
            self.settings_shown = True
            self.notify(f"Fix the settings first: {problem}", severity="error", timeout=6)
            return
        event.prompt.clear()
        self.ask(event.text)

    def ask(self, text: str) -> None:
        """Send `text` to every side in play; a question still unanswered is left out."""
        for side in self.sides:
            conversation, pane = self.conversations[side], self.pane(side)
            if self._unanswered(side):
                conversation.turns.pop()
                pane.leave_out_unanswered()
            conversation.ask(text)
            pane.add_user(text)
        self._answer(list(self.sides))

    def _unanswered(self, side: int) -> bool:
        turns = self.conversations[side].turns
        return bool(turns) and turns[-1]["role"] == "user"

    def _waiting(self, side: int) -> bool:
        """The side's last question has no answer, and none is being written."""
        return self._unanswered(side) and side not in self._answers

    def _answer(self, sides: Sequence[int]) -> None:
        """Answer the last question of `sides` (now, or once their model is there)."""
        self._queued |= {side for side in sides if self._waiting(side)}
        missing = [side for side in self._queued if self.slots.get(side) is None]
        if missing and not any(self.loading_sides[side] for side in missing):
            self.notify(
                "No model loaded: pick one (your message is answered once it is loaded).",
                timeout=5,
            )
            self.action_open_model(missing[0])
        self._answer_queued()

    def _answer_queued(self) -> None:
        if self.answering or not self._queued:
            return
        ready = sorted(side for side in self._queued if self.slots.get(side) is not None)
        if not ready:
            return
        try:
            settings = self._answer_settings()
        except ValueError as exc:
            self.notify(f"Fix the settings first: {exc}", severity="error", timeout=6)
            return
        jobs: list[AnswerJob] = []
        for side in ready:
            self._queued.discard(side)
            model = self.slots.get(side)
            if model is None or not self._waiting(side):
                continue
            self._answers[side] = self.pane(side).add_answer(
                self.side_label(side), status="reading the prompt…"
            )
            jobs.append((side, model, self.conversations[side].messages()))
        if jobs:
            self._cancel = threading.Event()
            self.answering = True
            self.slots.start_answering()
            self.run_answers(jobs, settings, self._cancel)

    def _answer_settings(self) -> ChatSettings:
        from workbench.chat.engine import ChatSettings

        section = self.workspace.config.chat
        base = ChatSettings.from_config(section)
        return answer_settings(base, section, self.settings_panel.typed())

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="chat-answer",
        description="answer",
    )
    def run_answers(
        self, jobs: list[AnswerJob], settings: ChatSettings, cancel: threading.Event
    ) -> None:
        """Each model answers in turn (on a CPU, at once would skew both timings)."""
        try:
            for side, model, messages in jobs:
                if cancel.is_set():
                    self.post_message(self.AnswerCompleted(side, skipped_answer()))
                else:
                    self._stream(side, model, messages, settings, cancel)
        finally:
            self.slots.stop_answering()
            self.post_message(self.AnsweringEnded())

    def _stream(
        self,
        side: int,
        model: ChatModel,
        messages: list[dict[str, str]],
        settings: ChatSettings,
        cancel: threading.Event,
    ) -> None:
        """One model's answer as messages: started, the text so far (batched), done."""
        from workbench.chat.compare import SideFailed, compare_stream
        from workbench.chat.engine import AnswerDone, PromptReady, TokenStreamed

        batch = TextBatcher()
        for item in compare_stream([model], messages, settings, cancel):
            if isinstance(item, SideFailed):
                self.post_message(self.AnswerFailed(side, item.message))
                return
            event = item.event
            if isinstance(event, TokenStreamed):
                if batch.add(event):
                    self.post_message(
                        self.AnswerStreamed(
                            side, batch.text, batch.tokens, batch.first_token_s, batch.elapsed_s
                        )
                    )
            elif isinstance(event, PromptReady):
                self.post_message(self.AnswerStarted(side, event.prompt_tokens, event.context_size))
            elif isinstance(event, AnswerDone):
                self.post_message(self.AnswerCompleted(side, event))

    @on(AnswerStarted)
    def answer_started(self, message: AnswerStarted) -> None:
        answer = self._answers.get(message.side)
        if answer is not None:
            answer.status = (
                f"reading the prompt: {message.prompt_tokens:,} tokens "
                f"(context {message.context_size:,})…"
            )

    @on(AnswerStreamed)
    def answer_streamed(self, message: AnswerStreamed) -> None:
        answer = self._answers.get(message.side)
        if answer is not None:
            answer.text = message.text
            answer.status = streaming_line(message.tokens, message.first_token_s, message.elapsed_s)
            self.pane(message.side).follow()

    @on(AnswerCompleted)
    def answer_completed(self, message: AnswerCompleted) -> None:
        answer = self._answers.pop(message.side, None)
        if answer is None:
            return
        answer.text = message.done.text
        answer.status = done_line(message.done)
        self.pane(message.side).follow()
        self.conversations[message.side].answered(message.done.text)

    @on(AnswerFailed)
    def answer_failed(self, message: AnswerFailed) -> None:
        answer = self._answers.pop(message.side, None)
        if answer is not None:
            answer.error = message.reason
            answer.status = LEFT_OUT
        self.notify(message.reason, title="Could not answer", severity="error", timeout=12)

    @on(AnsweringEnded)
    def answering_ended(self) -> None:
        for answer in self._answers.values():  # only after an unexpected error
            answer.error = "the answer stopped on an unexpected error"
            answer.status = LEFT_OUT
        self._answers.clear()
        self.answering = False
        self._answer_queued()

    @on(Worker.StateChanged)
    def worker_failed(self, event: Worker.StateChanged) -> None:
        """Unexpected failures (the app notifies them): nothing may stay 'loading'."""
        if event.state is WorkerState.ERROR and event.worker.group == "chat-load":
            self.loading_sides = [False, False]
            for side in (0, 1):
                self._show_model(side)

    def action_stop(self) -> None:
        """Esc: stop the answer; what was written so far is kept."""
        self._cancel.set()
        self._queued.clear()
        for answer in self._answers.values():
            answer.status = "stopping…"

    def action_regenerate(self) -> None:
        answered = [side for side in self.sides if self.conversations[side].turns]
        if not answered:
            self.notify("Nothing to answer again: send a message first.", timeout=4)
            return
        for side in answered:
            try:
                self.conversations[side].regenerate()
            except ChatError:
                continue
            self.pane(side).drop_last_answer()
        self._answer(answered)

    def action_clear(self) -> None:
        for side in self.sides:
            self.conversations[side].clear()
            self.pane(side).clear()
        self._queued.clear()
        self.notify("Conversation cleared (the system prompt stays).", timeout=3)

    @on(TextArea.Changed, "#chat-system")
    def system_prompt_changed(self, event: TextArea.Changed) -> None:
        for conversation in self.conversations:
            conversation.system_prompt = event.text_area.text

    # --- an example from the Data screen --------------------------------------------------------

    @on(DataScreen.ExampleSentToChat)
    def example_sent(self, message: DataScreen.ExampleSentToChat) -> None:
        self.open_example(message.example.messages, f"example #{message.example.id}")

    def open_example(self, messages: Sequence[dict[str, Any]], name: str = "an example") -> bool:
        """Start over from an example's input (its answer left out) and have it answered.

        Returns False (and says why) when it cannot: an answer is being written, or the
        example has no question to answer.
        """
        if self.answering:
            self.notify(f"Still answering: press Esc, then open {name} again.", severity="warning")
            return False
        conversation = Conversation.from_example_input(messages)
        if not conversation.turns:
            self.notify(f"{name.capitalize()} has no input to ask.", severity="warning")
            return False
        self.settings_panel.set_system_prompt(conversation.system_prompt)
        *history, question = conversation.turns
        for side in self.sides:
            self.conversations[side] = Conversation(
                conversation.system_prompt, [dict(turn) for turn in conversation.turns]
            )
            pane = self.pane(side)
            pane.clear()
            pane.add_note(f"{name}: its input, without its answer")
            pane.add_history(history, "example", "from the example")
            pane.add_user(question["content"])
        self._queued.clear()
        self._answer(list(self.sides))
        return True

    # --- send to data ---------------------------------------------------------------------------

    def action_send_to_data(self) -> None:
        sides = [side for side in self.sides if self.conversations[side].last_answer]
        if not sides:
            self.notify(
                "Nothing to send yet: an example needs a question and an answer.",
                severity="warning",
                timeout=4,
            )
            return
        if len(sides) == 1:
            self._edit_answer(sides[0])
            return
        choices = [(self._choice_label(side), side) for side in sides]
        self.app.push_screen(ChoiceScreen("Send which answer to the data?", choices), self._chosen)

    def _choice_label(self, side: int) -> str:
        path = self.paths[side]
        answer = self.conversations[side].last_answer or ""
        return answer_choice_label(SIDES[side], path.name if path else "no model", answer)

    def _chosen(self, side: int | None) -> None:
        if side is not None:
            self._edit_answer(side)

    def _edit_answer(self, side: int) -> None:
        conversation = self.conversations[side]
        copy = Conversation(conversation.system_prompt, [dict(t) for t in conversation.turns])
        model = self.paths[side].name if self.paths[side] is not None else ""
        editor = ChatAnswerEditor(
            f"Send to data: the answer of {model or 'the model'} (edit it if needed)",
            conversation.last_answer or "",
        )
        self.app.push_screen(editor, partial(self._send, copy, model))

    def _send(self, conversation: Conversation, model: str, answer: str | None) -> None:
        if answer is not None:
            self.send_to_data(self.workspace, conversation, answer, model)

    @work(
        thread=True,
        exclusive=False,  # every send the user asked for is kept
        exit_on_error=False,
        group="chat-send",
        description="send the conversation to the data",
    )
    def send_to_data(
        self, workspace: Workspace, conversation: Conversation, answer: str, model: str
    ) -> None:
        from workbench.chat.conversation import send_to_data
        from workbench.data.store import ExampleStore, StoreError
        from workbench.data.validate import make_validator

        try:
            with ExampleStore(workspace.db_path, make_validator(workspace.config)) as store:
                example_id = send_to_data(store, conversation, answer, model)
        except (ChatError, StoreError, OSError, sqlite3.Error) as exc:
            self.post_message(self.SendFailed(f"Could not add the conversation to the data: {exc}"))
            return
        self.post_message(self.SentToData(example_id))

    @on(SentToData)
    def sent_to_data(self, message: SentToData) -> None:
        self.notify(
            f"Saved as example #{message.example_id}, tagged from-chat. The Data screen's u "
            "undoes it.",
            timeout=6,
        )

    @on(SendFailed)
    def send_failed(self, message: SendFailed) -> None:
        self.notify(message.reason, severity="error", timeout=10)

    # --- keys that make sense now ---------------------------------------------------------------

    BUSY_ACTIONS: ClassVar[frozenset[str]] = frozenset(
        {"open_model", "regenerate", "send_to_data", "compare", "clear"}
    )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Esc only while an answer is written; what would disturb it is greyed out meanwhile."""
        if action == "stop":
            return self.answering
        if action == "leave_prompt":
            return isinstance(self.focused, ChatPromptInput)
        if action in self.BUSY_ACTIONS and self.answering:
            return None
        return True

    # --- palette --------------------------------------------------------------------------------

    def palette_commands(self) -> list[PaletteCommand]:
        def command(title: str, help: str, callback: Callable[[], object]) -> PaletteCommand:
            return PaletteCommand(f"chat: {title}", help, callback)

        commands = [
            command(
                "open model",
                "Open a GGUF: exports first, or a path (Ctrl+O)",
                partial(self.action_open_model, 0),
            ),
            command(
                "stop comparing" if self.comparing else "compare with a second model",
                "Ask two models side by side (Ctrl+B)",
                self.action_compare,
            ),
            command("regenerate", "Answer the last message again (Ctrl+R)", self.action_regenerate),
            command("stop answer", "Stop the answer being written (Esc)", self.action_stop),
            command("clear conversation", "Forget every turn (Ctrl+L)", self.action_clear),
            command(
                "send to data",
                "Save the conversation as a training example tagged from-chat (Ctrl+S)",
                self.action_send_to_data,
            ),
            command(
                "settings", "Show or hide the settings panel (Ctrl+T)", self.action_toggle_settings
            ),
            command(
                "unload models",
                "Free the memory the chat models take (before training on this GPU, say)",
                self.action_unload,
            ),
        ]
        if self.comparing:
            commands.insert(
                2,
                command(
                    "change model B",
                    "Open another model on side B",
                    partial(self.action_open_model, 1),
                ),
            )
        return commands

    def action_unload(self) -> None:
        if self.answering:
            self.notify("Stop the answer first (Esc).", timeout=3)
            return
        if self.comparing:
            self.stop_comparing()
        self.slots.remove(0)
        self.paths[0], self.lines[0] = None, ""
        self._show_model(0)
        self.notify("Models unloaded; their memory is free.", timeout=3)
