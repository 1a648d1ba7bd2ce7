"""The export dialog of the Train screen: which adapter of a run, which GGUF quantizations."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, SelectionList, Static
from textual.widgets.option_list import Option

from workbench.export.checkpoints import BEST_DIR, checkpoint_steps, has_adapter
from workbench.train.events import RunHistory

QUANTS: tuple[tuple[str, str], ...] = (
    ("f16: full quality, largest", "f16"),
    ("q8_0: near-lossless, half the size of f16", "q8_0"),
    ("q4_k_m: smallest and fastest, a little worse", "q4_k_m"),
)
DEFAULT_QUANTS = ("q8_0",)


@dataclass(frozen=True)
class CheckpointChoice:
    """One adapter a run has saved: `best` or a step number, as `plan_export` takes it."""

    value: str
    label: str


@dataclass(frozen=True)
class ExportChoice:
    """What the user picked: the adapter and the quantizations to write."""

    checkpoint: str
    quants: tuple[str, ...]


def _eval_at(history: RunHistory | None, step: int) -> str:
    evals = {point.step: point.eval_loss for point in history.evals} if history else {}
    return f", eval loss {evals[step]:.4f}" if step in evals else ""


def checkpoint_choices(run_dir: Path, history: RunHistory | None) -> list[CheckpointChoice]:
    """The adapters on disk, best first, then the saved checkpoints newest first.

    The directory is the truth (the trainer deletes old checkpoints after logging them); the
    history only adds each one's eval loss. Reads a few directory entries: call from a worker.
    """
    choices = []
    if has_adapter(run_dir / BEST_DIR):
        best = history.best if history else None
        detail = f" (step {best.step}, eval loss {best.eval_loss:.4f})" if best else ""
        choices.append(CheckpointChoice("best", f"best: lowest eval loss{detail}"))
    for step in reversed(checkpoint_steps(run_dir)):
        label = f"checkpoint-{step} (step {step}{_eval_at(history, step)})"
        choices.append(CheckpointChoice(str(step), label))
    return choices


class QuantList(SelectionList[str]):
    """The quantizations, ticked with space at the key press.

    Textual's SelectionList ticks the highlighted row only when its own `OptionSelected` message
    is handled, after any keys already queued: typed quickly (or pasted, or sent by tmux),
    `space ↓ space` moved the highlight first and ticked the wrong rows.
    """

    def action_select(self) -> None:
        if self.highlighted is not None:
            self.toggle(self.get_option_at_index(self.highlighted))


class ExportScreen(ModalScreen[ExportChoice | None]):
    """Pick the adapter (↑/↓) and the quantizations (space), then Ctrl+S or Enter exports."""

    HELP = """\
Export a run to GGUF for the Chat and Eval screens. Pick the adapter in the upper list
(**best** is the one with the lowest eval loss; checkpoints are the last few the trainer kept),
tick one or more quantizations in the lower list with **space**, then **Ctrl+S** (or **Enter** on
an adapter) starts the export in the background. **Esc** closes without exporting.
"""
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="export.cancel", tooltip="Close, export nothing"),
        Binding("ctrl+s", "confirm", "Export", id="export.confirm", tooltip="Start the export"),
    ]

    def __init__(self, run_id: str, choices: Sequence[CheckpointChoice]) -> None:
        super().__init__(classes="data-dialog")
        self.run_id = run_id
        self.choices = list(choices)

    def compose(self) -> ComposeResult:
        with Vertical(classes="data-dialog-panel") as panel:
            panel.border_title = f"Export run {self.run_id} to GGUF"
            panel.border_subtitle = "space ticks · Ctrl+S exports · Esc cancels"
            yield Static("Adapter:")
            yield OptionList(
                *[Option(choice.label, id=choice.value) for choice in self.choices],
                id="export-checkpoints",
            )
            yield Static("Quantizations:")
            yield QuantList(
                *[(label, value, value in DEFAULT_QUANTS) for label, value in QUANTS],
                id="export-quants",
            )
            yield Static("", id="export-writes")
            yield Static("", id="export-error")

    def on_mount(self) -> None:
        self.query_one(OptionList).highlighted = 0 if self.choices else None
        self.show_writes()

    @on(SelectionList.SelectedChanged, "#export-quants")
    def show_writes(self) -> None:
        """Say in words what is ticked: the toggles differ only by colour, which a terminal with
        few colours (or a capture of it) loses."""
        ticked = set(self.query_one(QuantList).selected)
        quants = [value for _, value in QUANTS if value in ticked]
        text = f"Writes: {', '.join(quants)}" if quants else "Writes: nothing yet (space ticks)"
        self.query_one("#export-writes", Static).update(text)

    def chosen(self, index: int | None = None) -> ExportChoice | None:
        """The picks (the adapter at `index`, else the highlighted one); None (and a line
        saying why) when something is missing."""
        if index is None:
            index = self.query_one(OptionList).highlighted
        quants = tuple(self.query_one(SelectionList).selected)
        problem = ""
        if index is None or not self.choices:
            problem = "This run has no adapter to export yet (best/ is written at the first eval)."
        elif not quants:
            problem = "Tick at least one quantization with space."
        self.query_one("#export-error", Static).update(f"[red]{problem}[/]" if problem else "")
        if problem or index is None:
            return None
        ordered = tuple(value for _, value in QUANTS if value in quants)
        return ExportChoice(self.choices[index].value, ordered)

    @on(OptionList.OptionSelected, "#export-checkpoints")
    def checkpoint_selected(self, event: OptionList.OptionSelected) -> None:
        """Enter exports the adapter it was pressed on, even if ↓ was queued behind it."""
        self.action_confirm(event.option_index)

    def action_confirm(self, index: int | None = None) -> None:
        if (choice := self.chosen(index)) is not None:
            self.dismiss(choice)

    def action_cancel(self) -> None:
        self.dismiss(None)
