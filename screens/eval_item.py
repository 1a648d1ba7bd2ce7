"""One eval item side by side: the input, both answers, both verdicts with their reasons.

From here a loss becomes a training example: **s** sends the input with the old pipeline's
answer, **e** with an answer written first (it starts as the old pipeline's).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.screen import ModalScreen
from textual.widgets import Static

from screens.data_dialogs import ConfirmScreen
from screens.eval_dialogs import AnswerEditorScreen
from screens.eval_text import model_name, outcome_text, seconds, verdict_line
from workbench.workspace import Workspace

if TYPE_CHECKING:
    from workbench.evaluate.generate import Generation
    from workbench.evaluate.report import ReportItem
    from workbench.evaluate.spec import EvalSpec


def title_line(entry: ReportItem, position: int, count: int, what: str, sent: int | None) -> Text:
    """`Item 3 · example #104 · loss · orders agree · 2 of 4 losses · sent as #130`."""
    line = Text.assemble(
        (f"Item {entry.item.index}", "bold"),
        f" · example #{entry.item.example_id} · ",
        outcome_text(entry),
    )
    if entry.disagreed:
        line.append(" · the orders disagree (counted as a tie)", "yellow")
    line.append(f" · {position + 1} of {count} {what}", "dim")
    if sent is not None:
        line.append(f" · sent to the data as example #{sent}", "green")
    return line


def generation_stats(generation: Generation | None) -> str:
    """`24 tokens · 0.05 s` (`~` marks counts estimated from the text)."""
    if generation is None:
        return ""
    parts = []
    if generation.output_tokens:
        estimated = "~" if generation.estimated else ""
        parts.append(f"{estimated}{generation.output_tokens:,} tokens")
    if generation.latency_s is not None:
        parts.append(seconds(generation.latency_s))
    if generation.cached:
        parts.append("cached")
    return " · ".join(parts)


def answer_text(text: str, generation: Generation | None) -> Text:
    if generation is not None and generation.error:
        return Text(f"No answer: {generation.error}", "red")
    if not text.strip():
        return Text("(no answer yet)" if generation is None else "(empty answer)", "dim italic")
    return Text(text)


def verdicts_text(entry: ReportItem) -> Text:
    """Both verdicts, or the error that stopped the item."""
    result = entry.result
    if result is None:
        return Text("Not judged yet.", "dim italic")
    text = Text()
    if entry.error:
        text.append(f"Error: {entry.error}\n", "bold red")
    if result.identical:
        text.append("Both answers are identical: a tie without a judge call.", "dim")
        return text
    text.append_text(verdict_line(result.cb, candidate_first=True))
    text.append("\n")
    text.append_text(verdict_line(result.bc, candidate_first=False))
    return text


class AnswerPane(VerticalScroll, can_focus=True):
    """One side's text; focus it (Tab) to scroll a long answer."""

    HELP = """\
The input, or one side's answer in full. **Tab** moves between the input and the two
answers; **↑/↓**, **PgUp/PgDn** scroll the focused one. **n**/**p** go to the next or
previous item, **s** sends the input with the old pipeline's answer to the training data,
**e** lets you write the answer first, **Esc** goes back to the list.
"""

    def compose(self) -> ComposeResult:
        yield Static("", classes="eval-pane-text")

    def show(self, title: str, text: Text, stats: str = "") -> None:
        self.border_title = title
        self.border_subtitle = stats
        self.query_one(Static).update(text)
        self.scroll_home(animate=False)


class EvalItemScreen(ModalScreen[None]):
    """Input, fine-tuned answer and old-pipeline answer side by side, with both verdicts."""

    HELP = AnswerPane.HELP
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "dismiss", "Back", id="item.back", tooltip="Back to the items"),
        Binding("n", "step(1)", "Next", id="item.next", tooltip="The next item of the list"),
        Binding(
            "p", "step(-1)", "Previous", id="item.previous", tooltip="The previous item of the list"
        ),
        Binding(
            "s",
            "send",
            "Send to data",
            id="item.send",
            tooltip="Add the input with the old pipeline's answer to the training data",
        ),
        Binding(
            "e",
            "edit",
            "Edit & send",
            id="item.edit",
            tooltip="Write the answer this input should get, then add it to the training data",
        ),
    ]

    position: reactive[int] = reactive(0)

    @dataclass
    class SentToData(Message):
        """An item became a training example."""

        eval_id: str
        index: int
        example_id: int

    @dataclass
    class SendFailed(Message):
        reason: str

    def __init__(
        self,
        workspace: Workspace,
        eval_dir: Path,
        spec: EvalSpec,
        entries: Sequence[ReportItem],
        position: int,
        what: str,
        sent: dict[int, int],
    ) -> None:
        super().__init__(id="eval-item-screen")
        self.workspace = workspace
        self.eval_dir = eval_dir
        self.spec = spec
        self.entries = list(entries)
        self.what = what
        self.sent = sent
        """Items of this eval sent to the data in this session: index -> example id."""
        self.set_reactive(EvalItemScreen.position, position)

    def compose(self) -> ComposeResult:
        with Vertical(id="eval-item-panel"):
            yield Static("", id="eval-item-title")
            yield AnswerPane(id="eval-item-input")
            with Horizontal(id="eval-item-answers"):
                yield AnswerPane(id="eval-item-candidate")
                yield AnswerPane(id="eval-item-baseline")
            yield Static("", id="eval-item-verdicts")

    def on_mount(self) -> None:
        panel = self.query_one("#eval-item-panel")
        panel.border_subtitle = "n/p next/previous · s send to data · e edit & send · Esc back"
        self.query_one("#eval-item-verdicts").border_title = "Verdicts (each pair judged twice)"
        self._show()
        self.query_one("#eval-item-candidate").focus()

    @property
    def entry(self) -> ReportItem:
        return self.entries[self.position]

    def watch_position(self) -> None:
        if self.is_mounted:
            self._show()

    def _show(self) -> None:
        entry, result = self.entry, self.entry.result
        self.query_one("#eval-item-panel").border_title = f"Eval {self.eval_dir.name}"
        self.query_one("#eval-item-title", Static).update(
            title_line(
                entry, self.position, len(self.entries), self.what, self.sent.get(entry.item.index)
            )
        )
        candidate = result.candidate if result else None
        baseline = result.baseline if result else None
        self.query_one("#eval-item-input", AnswerPane).show(
            "Input", Text(entry.item.input_text or "(empty input)")
        )
        self.query_one("#eval-item-candidate", AnswerPane).show(
            f"Fine-tuned · {model_name(self.spec.model)}",
            answer_text(entry.candidate_text, candidate),
            generation_stats(candidate),
        )
        self.query_one("#eval-item-baseline", AnswerPane).show(
            f"Old pipeline · {self.spec.baseline}",
            answer_text(entry.baseline_text, baseline),
            generation_stats(baseline),
        )
        self.query_one("#eval-item-verdicts", Static).update(verdicts_text(entry))

    def action_step(self, delta: int) -> None:
        position = self.position + delta
        if 0 <= position < len(self.entries):
            self.position = position
        else:
            self.notify(f"No {'next' if delta > 0 else 'previous'} item in this list.", timeout=2)

    # --- sending to the data ------------------------------------------------------------------

    def action_send(self) -> None:
        entry = self.entry
        if not entry.baseline_text.strip():
            self.notify(
                "The old pipeline has no answer here: e lets you write one.",
                severity="warning",
                timeout=5,
            )
            return
        self._send_checked(entry.item.index, None)

    def action_edit(self) -> None:
        entry = self.entry
        title = f"Answer for item {entry.item.index} (example #{entry.item.example_id})"
        dialog = AnswerEditorScreen(title, entry.baseline_text)
        self.app.push_screen(dialog, partial(self._edited, entry.item.index))

    def _edited(self, index: int, answer: str | None) -> None:
        if answer is not None:
            self._send_checked(index, answer)

    def _send_checked(self, index: int, answer: str | None) -> None:
        """Send, asking first when this item went to the data already."""
        before = self.sent.get(index)
        if before is None:
            self.send(self.workspace, self.eval_dir, index, answer)
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.send(self.workspace, self.eval_dir, index, answer)

        question = f"Item {index} is in the data already (example #{before}). Add it again?"
        self.app.push_screen(ConfirmScreen(question, "Add again"), confirmed)

    @work(
        thread=True,
        exclusive=False,  # each send the user asked for is kept
        exit_on_error=False,
        group="eval-send",
        description="send the item to the data",
    )
    def send(self, workspace: Workspace, eval_dir: Path, index: int, answer: str | None) -> None:
        from workbench.data.store import StoreError
        from workbench.evaluate.launch import send_to_data
        from workbench.evaluate.spec import EvalError

        try:
            example_id = send_to_data(workspace, eval_dir, index, answer)
        except (EvalError, StoreError, OSError) as exc:
            self.post_message(self.SendFailed(f"Could not add item {index} to the data: {exc}"))
            return
        self.post_message(self.SentToData(eval_dir.name, index, example_id))

    @on(SentToData)
    def sent_to_data(self, message: SentToData) -> None:
        self.sent[message.index] = message.example_id
        self.notify(
            f"Item {message.index} is now training example #{message.example_id} (train split,"
            " tagged from-eval). The Data screen's u undoes it.",
            timeout=6,
        )
        self._show()

    @on(SendFailed)
    def send_failed(self, message: SendFailed) -> None:
        self.notify(message.reason, severity="error", timeout=10)

    def action_dismiss(self, result: object = None) -> None:  # type: ignore[override]
        self.dismiss(None)
