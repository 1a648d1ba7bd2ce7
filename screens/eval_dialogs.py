"""Dialogs of the Eval screen: configure and start an eval; edit an answer before sending it
to the training data."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.validation import Integer
from textual.widgets import Button, Checkbox, Input, Label, Select, Static, TextArea
from textual.worker import Worker, WorkerState

from screens.data_dialogs import CANCEL
from workbench.workspace import Workspace

BASELINE_CHOICES: list[tuple[str, str]] = [
    ("stored: the answers already in the data (free)", "stored"),
    ("claude: fresh calls to eval.baseline_model", "claude"),
    ("http: an OpenAI-compatible endpoint (eval.baseline_url)", "http"),
    ("cmd: a shell command (eval.baseline_command)", "cmd"),
]
NO_MODEL = ""


@dataclass(frozen=True)
class Surroundings:
    """What the dialog shows besides the settings: the exported models and the eval set."""

    models: list[tuple[str, str]]
    """(label, path) of every exported GGUF, newest first."""
    eval_split: str
    eval_examples: int


def survey(workspace: Workspace) -> Surroundings:
    """The exported GGUFs and the size of the split an eval would take (runs in a thread)."""
    from workbench.data.store import ExampleStore, Query
    from workbench.export.manifest import list_exported_ggufs

    models = [(gguf.label, str(gguf.path)) for gguf in list_exported_ggufs(workspace.exports_dir)]
    split = workspace.config.eval.split
    with ExampleStore(workspace.db_path) as store:
        if split == "auto":
            split = "test" if store.count(Query(split="test")) else "val"
        count = store.count(Query(split=split))
    return Surroundings(models, split, count)


def resolve_model(text: str, root: Path) -> Path:
    """A typed path: `~` expanded; relative to the current directory, else to the workspace."""
    path = Path(text).expanduser()
    if path.is_absolute() or path.exists():
        return path.resolve()
    return (root / path).resolve()


def eval_set_hint(found: Surroundings, limit: int | None) -> str:
    """`The test split has 12 examples: this eval takes 12.`"""
    if not found.eval_examples:
        return (
            f"[b red]The {found.eval_split} split is empty:[/] split the data first (Data screen,"
            " or `workbench data split --test 0.1`)."
        )
    takes = found.eval_examples if limit is None else min(limit, found.eval_examples)
    return (
        f"The {found.eval_split} split has {found.eval_examples:,} examples: this eval takes "
        f"{takes:,} (those flagged bad are left out)."
    )


class NewEvalScreen(ModalScreen[str | None]):
    """Configure an eval, then start it as a detached job; dismissed with its id."""

    HELP = """\
Configure a head-to-head eval of a fine-tuned GGUF against the old pipeline.

- **Model**: an exported GGUF (or type the path of another one)
- **Old pipeline**: `stored` takes the answers already in the data; `claude`, `http` and `cmd`
  ask the old pipeline afresh (their settings are in `workbench.toml`, `[eval]`)
- **Judge model**: the Claude model that judges each pair, in both orders
- **Items**: at most this many inputs of the test split (else the validation split)
- **Concurrency**: judge calls in flight at once

The eval runs in the background: closing the app or losing SSH stops nothing.
**Ctrl+S** starts it, **Esc** closes without starting anything.
"""
    BINDINGS: ClassVar[list[BindingType]] = [
        CANCEL,
        Binding("ctrl+s", "start", "Start", id="new-eval.start", tooltip="Start the eval"),
    ]

    @dataclass
    class Surveyed(Message):
        found: Surroundings

    @dataclass
    class Launched(Message):
        eval_id: str

    @dataclass
    class LaunchFailed(Message):
        reason: str

    def __init__(self, workspace: Workspace) -> None:
        super().__init__(classes="data-dialog", id="new-eval-screen")
        self.workspace = workspace
        self.found: Surroundings | None = None

    def compose(self) -> ComposeResult:
        ev = self.workspace.config.eval
        with Vertical(classes="data-dialog-panel", id="new-eval-panel") as panel:
            panel.border_title = "New eval"
            panel.border_subtitle = "Ctrl+S starts · Esc cancels"
            yield from self._row(
                "Model",
                Select[str](
                    [], prompt="looking for exported models…", id="new-eval-model", compact=True
                ),
            )
            yield from self._row(
                "or a path",
                Input(placeholder="path of a .gguf file", id="new-eval-path", compact=True),
            )
            yield from self._row(
                "Old pipeline",
                Select(
                    BASELINE_CHOICES,
                    value=ev.baseline,
                    allow_blank=False,
                    id="new-eval-baseline",
                    compact=True,
                ),
            )
            judges = [name for name in ev.prices if name.startswith("claude")]
            yield from self._row(
                "Judge model",
                Input(
                    ev.judge_model,
                    suggester=SuggestFromList(judges) if judges else None,
                    id="new-eval-judge",
                    compact=True,
                ),
            )
            yield from self._row("Items (at most)", _number(ev.max_examples, "new-eval-limit", 1))
            yield from self._row(
                "Concurrency", _number(ev.concurrency, "new-eval-concurrency", 1, 256)
            )
            yield from self._row(
                "Batch",
                Checkbox(
                    "judge through Message Batches (half price, may take hours)",
                    ev.batch,
                    id="new-eval-batch",
                    compact=True,
                ),
            )
            yield Static("", id="new-eval-hint", classes="data-dialog-hint")
            yield Static("", id="new-eval-error")
            with Horizontal(classes="data-dialog-buttons"):
                yield Button("Start (Ctrl+S)", variant="primary", id="new-eval-start")
                yield Button("Cancel (Esc)", id="new-eval-cancel")

    def _row(self, label: str, field: Any) -> ComposeResult:
        with Horizontal(classes="filter-row"):
            yield Label(label, classes="filter-label")
            yield field

    def on_mount(self) -> None:
        self.look_around(self.workspace)

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="new-eval-survey",
        description="list the exported models",
    )
    def look_around(self, workspace: Workspace) -> None:
        self.post_message(self.Surveyed(survey(workspace)))

    @on(Surveyed)
    def surveyed(self, message: Surveyed) -> None:
        self.found = message.found
        select = self.query_one("#new-eval-model", Select)
        if message.found.models:
            select.set_options(message.found.models)
            select.value = message.found.models[0][1]
            select.focus()
        else:
            select.set_options([])
            select.prompt = "no exported model yet: type a path below"
            select.disabled = True
            self.query_one("#new-eval-path", Input).focus()
        self._hint()

    @on(Input.Changed, "#new-eval-limit")
    def _hint(self) -> None:
        if self.found is not None:
            hint = eval_set_hint(self.found, self._int("new-eval-limit"))
            self.query_one("#new-eval-hint", Static).update(hint)

    def _int(self, id: str) -> int | None:
        text = self.query_one(f"#{id}", Input).value.strip()
        return int(text) if text.isdigit() else None

    def chosen_model(self) -> Path | None:
        """The typed path, else the GGUF picked in the list."""
        typed = self.query_one("#new-eval-path", Input).value.strip()
        if typed:
            return resolve_model(typed, self.workspace.root)
        picked = self.query_one("#new-eval-model", Select).value
        return Path(str(picked)) if isinstance(picked, str) and picked else None

    def settings(self) -> tuple[Path, dict[str, Any]]:
        """The model and the eval's settings; ValueError saying what to fix."""
        model = self.chosen_model()
        if model is None:
            raise ValueError("Pick an exported model or type the path of a .gguf file.")
        if not model.is_file():
            raise ValueError(f"{model}: no such file. Export the model first (Train screen).")
        limit, concurrency = self._int("new-eval-limit"), self._int("new-eval-concurrency")
        if not limit:
            raise ValueError("Items: a whole number of 1 or more.")
        if not concurrency or concurrency > 256:
            raise ValueError("Concurrency: a whole number from 1 to 256.")
        judge = self.query_one("#new-eval-judge", Input).value.strip()
        if not judge:
            raise ValueError("Judge model: the name of a Claude model, e.g. claude-sonnet-5-5.")
        return model, {
            "baseline": self.query_one("#new-eval-baseline", Select).value,
            "judge_model": judge,
            "limit": limit,
            "concurrency": concurrency,
            "batch": self.query_one("#new-eval-batch", Checkbox).value,
        }

    def action_start(self) -> None:
        if self.query_one("#new-eval-start", Button).disabled:
            return
        try:
            model, overrides = self.settings()
        except ValueError as exc:
            self._error(str(exc))
            return
        self._error("")
        self._busy(True)
        self.launch(self.workspace, model, overrides)

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="new-eval-launch",
        description="start the eval",
    )
    def launch(self, workspace: Workspace, model: Path, overrides: dict[str, Any]) -> None:
        from workbench.evaluate.launch import create_eval, start_eval
        from workbench.evaluate.spec import EvalError

        try:
            eval_dir = create_eval(workspace, model, **overrides)
            start_eval(eval_dir)
        except (EvalError, OSError) as exc:
            self.post_message(self.LaunchFailed(str(exc)))
            return
        self.post_message(self.Launched(eval_dir.name))

    @on(Launched)
    def launched(self, message: Launched) -> None:
        self.dismiss(message.eval_id)

    @on(LaunchFailed)
    def launch_failed(self, message: LaunchFailed) -> None:
        self._busy(False)
        self._error(f"Could not start the eval: {message.reason}")

    @on(Worker.StateChanged)
    def worker_failed(self, event: Worker.StateChanged) -> None:
        """An unexpected failure (the app reports it) must not leave Start disabled."""
        if event.worker.group == "new-eval-launch" and event.state is WorkerState.ERROR:
            self._busy(False)

    def _busy(self, busy: bool) -> None:
        button = self.query_one("#new-eval-start", Button)
        button.disabled = busy
        button.label = "Starting…" if busy else "Start (Ctrl+S)"

    def _error(self, text: str) -> None:
        error = self.query_one("#new-eval-error", Static)
        error.update(escape(text))
        error.set_class(bool(text), "-shown")

    @on(Button.Pressed, "#new-eval-start")
    def start_pressed(self) -> None:
        self.action_start()

    @on(Button.Pressed, "#new-eval-cancel")
    def cancel_pressed(self) -> None:
        self.dismiss(None)

    @on(Input.Submitted)
    def submitted(self) -> None:
        self.action_start()

    def action_dismiss(self, result: object = None) -> None:  # type: ignore[override]
        self.dismiss(None)


def _number(value: int, id: str, minimum: int, maximum: int | None = None) -> Input:
    return Input(
        str(value),
        type="integer",
        validators=[Integer(minimum=minimum, maximum=maximum)],
        compact=True,
        id=id,
    )


class AnswerEditorScreen(ModalScreen[str | None]):
    """Edit the answer a loss should have had, then send it to the training data."""

    HELP = """\
Write the answer this input should get; it becomes a training example (train split, tagged
`from-eval`) together with the input. It starts as the old pipeline's answer.
**Ctrl+S** sends it, **Esc** closes without sending anything.
"""
    BINDINGS: ClassVar[list[BindingType]] = [
        CANCEL,
        Binding(
            "ctrl+s",
            "send",
            "Send to data",
            id="answer.send",
            tooltip="Add the input with this answer to the training data",
        ),
    ]

    def __init__(self, title: str, answer: str) -> None:
        super().__init__(classes="data-dialog", id="answer-editor-screen")
        self.title_text = title
        self.answer = answer

    def compose(self) -> ComposeResult:
        with Vertical(classes="data-dialog-panel", id="answer-panel") as panel:
            panel.border_title = self.title_text
            panel.border_subtitle = "Ctrl+S sends to the data · Esc cancels"
            yield TextArea(self.answer, id="answer-text")
            yield Static("", id="answer-error")

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    def action_send(self) -> None:
        text = self.query_one(TextArea).text
        if not text.strip():
            error = self.query_one("#answer-error", Static)
            error.update("The answer is empty: write one first (Esc cancels).")
            error.add_class("-shown")
            return
        self.dismiss(text)

    def action_dismiss(self, result: object = None) -> None:  # type: ignore[override]
        self.dismiss(None)
