"""The dialog that asks what to generate: model, how many, topics, guidance and the seed tag.

It only collects the answers (`SynthRequest`); the review screen checks the key, picks the seeds
and starts the detached job, so nothing here touches the store or the network.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.markup import escape
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.validation import Integer
from textual.widgets import Button, Input, Label, Static, TextArea

from workbench.collect.synth import DEFAULT_MODEL, SEED_TAG, SynthSpec

DEFAULT_COUNT: int = SynthSpec.__dataclass_fields__["count"].default
"""SynthSpec's own default, so the dialog and `workbench synth` ask for the same."""


@dataclass(frozen=True)
class SynthRequest:
    """What the user asked for; the seeds are read from the store when the job starts."""

    model: str = DEFAULT_MODEL
    count: int = DEFAULT_COUNT
    topics: tuple[str, ...] = ()
    guidance: str = ""
    seed_tag: str = SEED_TAG


def topics_from(text: str) -> tuple[str, ...]:
    """One topic per non-empty line, trimmed."""
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def parse_count(text: str) -> int | None:
    """A positive whole number, or None."""
    try:
        value = int(text.strip())
    except ValueError:
        return None
    return value if value >= 1 else None


class SynthDialog(ModalScreen[SynthRequest | None]):
    """Ask what to generate; dismissed with a `SynthRequest`, or None when cancelled."""

    HELP = """\
Claude writes new examples from a few of your good ones (the *seeds*: examples tagged with the
seed tag, else the first reviewed train examples), one batch per topic in turn, following your
guidance. New examples are checked against every example you have (rejected ones too) and
wait in the review queue. The job runs in the background and records what each example cost.
Needs `ANTHROPIC_API_KEY` in the environment the app was started from.

**Ctrl+S** (or Enter in a one-line field) starts, **Esc** cancels.
"""
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "start", "Start", id="synth.start", tooltip="Start generating"),
        Binding("escape", "cancel", "Cancel", id="synth.cancel", tooltip="Close, start nothing"),
    ]

    def __init__(self, request: SynthRequest, key_env: str) -> None:
        super().__init__(classes="data-dialog", id="synth-dialog")
        self.request = request
        self.key_env = key_env

    def compose(self) -> ComposeResult:
        with Vertical(classes="data-dialog-panel", id="synth-panel") as panel:
            panel.border_title = "Generate synthetic examples"
            panel.border_subtitle = "Ctrl+S starts · Esc cancels"
            yield from self._row("Model", Input(self.request.model, id="synth-model"))
            count = Input(
                str(self.request.count),
                id="synth-count",
                type="integer",
                validators=[Integer(minimum=1)],
            )
            yield from self._row("How many", count)
            yield from self._row("Seed tag", Input(self.request.seed_tag, id="synth-seed-tag"))
            yield Label("Topics, one per line (optional: batches take them in turn)")
            yield TextArea("\n".join(self.request.topics), id="synth-topics")
            yield Label("Guidance (optional: what the new examples should be like)")
            yield TextArea(self.request.guidance, id="synth-guidance")
            yield Static(self._hint(), classes="data-dialog-hint")
            yield Static("", id="synth-error")
            with Horizontal(classes="data-dialog-buttons"):
                yield Button("Start (Ctrl+S)", variant="primary", id="synth-start")
                yield Button("Cancel (Esc)", id="synth-cancel")

    @staticmethod
    def _row(label: str, field: Input) -> ComposeResult:
        with Horizontal(classes="synth-row"):
            yield Label(label, classes="synth-label")
            yield field

    def _hint(self) -> str:
        return (
            f"Calls Claude with [b]{escape(self.key_env)}[/b] from the environment; each"
            " example's cost is recorded. Runs in the background: leaving this screen stops"
            " nothing, [b]s[/b] stops it."
        )

    def on_mount(self) -> None:
        self.query_one("#synth-count", Input).focus()

    def value(self) -> SynthRequest | str:
        """What the fields ask for, or what is wrong with them."""
        model = self.query_one("#synth-model", Input).value.strip()
        count = parse_count(self.query_one("#synth-count", Input).value)
        if not model:
            return "Name a model (e.g. claude-sonnet-5-5)."
        if count is None:
            return "How many: a whole number, at least 1."
        return SynthRequest(
            model=model,
            count=count,
            topics=topics_from(self.query_one("#synth-topics", TextArea).text),
            guidance=self.query_one("#synth-guidance", TextArea).text.strip(),
            seed_tag=self.query_one("#synth-seed-tag", Input).value.strip() or SEED_TAG,
        )

    def action_start(self) -> None:
        request = self.value()
        if isinstance(request, str):
            error = self.query_one("#synth-error", Static)
            error.update(request)
            error.add_class("-shown")
            return
        self.dismiss(request)

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Input.Submitted)
    def submitted(self) -> None:
        self.action_start()

    @on(Button.Pressed, "#synth-start")
    def start_pressed(self) -> None:
        self.action_start()

    @on(Button.Pressed, "#synth-cancel")
    def cancel_pressed(self) -> None:
        self.action_cancel()
