"""Dialogs of the Chat screen: open a model (exports first, or any path), and edit an answer
before it goes to the training data."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from screens.chat_session import (
    ModelChoice,
    SettingsError,
    gpu_hint,
    model_choice,
    peek_gguf,
    resolve_path,
)
from screens.data_dialogs import CANCEL
from screens.eval_dialogs import AnswerEditorScreen
from screens.widgets.chat_transcript import CONTROL_PICTURES
from workbench.config import ChatSection

if TYPE_CHECKING:
    from workbench.export.manifest import ExportedGGUF


@dataclass(frozen=True)
class PickerStart:
    """What the model picker starts from."""

    title: str
    exports_dir: Path
    root: Path
    """The workspace: relative paths are looked up here too."""
    section: ChatSection
    """`[chat]`: the default context size and GPU layers, and their allowed ranges."""
    gpu_name: str | None = None
    current: Path | None = None


def export_option(gguf: ExportedGGUF) -> Option:
    """`20261127-2335-3fa9 best q4_k_m (1.0 GB) · export 20261128-0012-77aa`."""
    return Option(f"{escape(gguf.label)} [dim]· export {escape(gguf.export_id)}[/]")


class ModelPickerScreen(ModalScreen[ModelChoice | None]):
    """Pick a GGUF (the workspace's exports, newest first, or a typed path) and how to load it."""

    HELP = """\
Open a GGUF model to chat with.

- **Exported models**: this workspace's exports, newest first (↑/↓, Enter opens one)
- **or a path**: any `.gguf` file (relative paths: the current folder, then the workspace)
- **Context size**: tokens the conversation and the answer share
- **GPU layers**: `-1` puts every layer on the GPU when CUDA is present, `0` keeps it on the CPU

The line under the choices says what the file is (read from its header, nothing is loaded):
a file that is not a GGUF or is truncated is named as such before you open it.
The first load of a file runs a test prompt in a separate process, so a file that would crash
llama.cpp cannot take the app down. **Ctrl+O** or Enter opens, **Esc** cancels.
"""
    BINDINGS: ClassVar[list[BindingType]] = [
        CANCEL,
        Binding("ctrl+o", "open", "Open", id="picker.open", tooltip="Load the chosen model"),
    ]

    @dataclass
    class ExportsListed(Message):
        exports: list[ExportedGGUF]

    @dataclass
    class FilePeeked(Message):
        path: Path
        summary: str

    def __init__(self, start: PickerStart) -> None:
        super().__init__(classes="data-dialog", id="chat-picker-screen")
        self.start = start
        self.exports: list[ExportedGGUF] = []

    def compose(self) -> ComposeResult:
        section = self.start.section
        with Vertical(classes="data-dialog-panel", id="chat-picker-panel") as panel:
            panel.border_title = self.start.title
            panel.border_subtitle = "Enter opens · Esc cancels"
            yield Label("Exported models, newest first", classes="chat-picker-heading")
            yield OptionList(Option("looking for exports…", disabled=True), id="chat-picker-list")
            with Horizontal(classes="filter-row"):
                yield Label("or a path", classes="filter-label")
                yield Input(
                    placeholder="path of any .gguf file", id="chat-picker-path", compact=True
                )
            yield Static("", id="chat-picker-info")
            with Horizontal(classes="filter-row"):
                yield Label("Context size", classes="filter-label")
                yield Input(
                    str(section.n_ctx), id="chat-picker-n-ctx", type="integer", compact=True
                )
            with Horizontal(classes="filter-row"):
                yield Label("GPU layers", classes="filter-label")
                yield Input(
                    str(section.n_gpu_layers), id="chat-picker-gpu", type="integer", compact=True
                )
            yield Static(escape(gpu_hint(self.start.gpu_name)), classes="data-dialog-hint")
            yield Static("", id="chat-picker-error")
            with Horizontal(classes="data-dialog-buttons"):
                yield Button("Open (Enter)", variant="primary", id="chat-picker-open")
                yield Button("Cancel (Esc)", id="chat-picker-cancel")

    def on_mount(self) -> None:
        self.list_exports(self.start.exports_dir)

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="chat-picker-list",
        description="list the exported models",
    )
    def list_exports(self, exports_dir: Path) -> None:
        from workbench.export.manifest import list_exported_ggufs

        self.post_message(self.ExportsListed(list_exported_ggufs(exports_dir)))

    @on(ExportsListed)
    def exports_listed(self, message: ExportsListed) -> None:
        self.exports = message.exports
        options = self.query_one("#chat-picker-list", OptionList)
        options.clear_options()
        if not self.exports:
            options.add_option(Option("no exported models in this workspace yet", disabled=True))
            options.display = False
            self.query_one(".chat-picker-heading", Label).update(
                "No exported models in this workspace yet: type the path of a .gguf file."
            )
            self.query_one("#chat-picker-path", Input).focus()
            return
        options.add_options([export_option(gguf) for gguf in self.exports])
        paths = [gguf.path for gguf in self.exports]
        current = self.start.current
        options.highlighted = paths.index(current) if current in paths else 0
        options.focus()

    @on(OptionList.OptionHighlighted, "#chat-picker-list")
    def highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if self.exports and event.option_index < len(self.exports):
            self.peek(self.exports[event.option_index].path)

    @on(Input.Changed, "#chat-picker-path")
    def path_typed(self, event: Input.Changed) -> None:
        text = event.value.strip()
        if text:
            self.peek(resolve_path(text, self.start.root))
        else:
            self._info("")

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="chat-picker-peek",
        description="read the GGUF header",
    )
    def peek(self, path: Path) -> None:
        summary = peek_gguf(path) if path.is_file() else ""
        self.post_message(self.FilePeeked(path, summary))

    @on(FilePeeked)
    def file_peeked(self, message: FilePeeked) -> None:
        if message.path == self.chosen_path():
            self._info(message.summary)

    def _info(self, summary: str) -> None:
        self.query_one("#chat-picker-info", Static).update(summary)

    def chosen_path(self) -> Path | None:
        """The typed path, else the highlighted export."""
        typed = self.query_one("#chat-picker-path", Input).value.strip()
        if typed:
            return resolve_path(typed, self.start.root)
        index = self.query_one("#chat-picker-list", OptionList).highlighted
        if self.exports and index is not None and index < len(self.exports):
            return self.exports[index].path
        return None

    def action_open(self) -> None:
        path = self.chosen_path()
        if path is None:
            self._error("Pick an exported model or type the path of a .gguf file.")
            return
        if not path.is_file():
            self._error(f"{path}: no such file.")
            return
        typed = {
            "n_ctx": self.query_one("#chat-picker-n-ctx", Input).value,
            "n_gpu_layers": self.query_one("#chat-picker-gpu", Input).value,
        }
        try:
            choice = model_choice(path, self.start.section, typed)
        except SettingsError as exc:
            self._error(str(exc))
            return
        self.dismiss(choice)

    def _error(self, text: str) -> None:
        error = self.query_one("#chat-picker-error", Static)
        error.update(escape(text))
        error.set_class(bool(text), "-shown")

    @on(OptionList.OptionSelected, "#chat-picker-list")
    @on(Input.Submitted)
    @on(Button.Pressed, "#chat-picker-open")
    def open_pressed(self) -> None:
        self.action_open()

    @on(Button.Pressed, "#chat-picker-cancel")
    def cancel_pressed(self) -> None:
        self.dismiss(None)

    def action_dismiss(self, result: object = None) -> None:  # type: ignore[override]
        self.dismiss(None)


class ChatAnswerEditor(AnswerEditorScreen):
    """The last answer, editable; Ctrl+S adds the conversation with it to the training data."""

    HELP = """\
Correct the answer if it needs it. With the conversation before it (system prompt and every
turn) it becomes a new training example tagged `from-chat`, in one step the Data screen's
**u** undoes. **Ctrl+S** sends it, **Esc** closes without sending anything.
"""


def answer_choice_label(side_name: str, model: str, answer: str) -> str:
    """`A · demo-f16.gguf: “Café Basics: 12 Naïve…”` for the which-answer menu."""
    first = " ".join(answer.split()).translate(CONTROL_PICTURES)
    if len(first) > 60:
        first = first[:59] + "…"
    return escape(f"{side_name} · {model}: “{first}”")
