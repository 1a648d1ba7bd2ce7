"""Preview of instruction stripping: what the old pipeline's shared instruction is, how many
examples carry it, how many tokens stripping saves, and one example before and after."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from rich.console import Group, RenderableType
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Static

from workbench.data.store import estimate_tokens

if TYPE_CHECKING:
    from workbench.data.clean import CleanPreview

PREVIEW_CHARS = 160


def savings_line(preview: CleanPreview) -> Text:
    """`121 examples change · 129,749 → 45,759 tokens: 83,990 saved (65%)`."""
    after = preview.tokens_before - preview.tokens_saved
    share = preview.tokens_saved / preview.tokens_before if preview.tokens_before else 0.0
    return Text.assemble(
        (f"{preview.examples_changed:,}", "bold"),
        " examples change · ",
        f"{preview.tokens_before:,} → {after:,} tokens: ",
        (f"{preview.tokens_saved:,} saved ({share:.0%})", "bold green"),
    )


def _messages(messages: list[dict[str, Any]]) -> Text:
    text = Text()
    for message in messages:
        content = str(message.get("content") or "")
        short = " ".join(content.split())
        if len(short) > PREVIEW_CHARS:
            short = short[:PREVIEW_CHARS] + "…"
        text.append(f"{message.get('role')} · {estimate_tokens(content):,} tok: ", "bold")
        text.append(short + "\n")
    return text


def sample_block(sample: tuple[int, list[dict[str, Any]], list[dict[str, Any]]]) -> Group:
    example_id, before, after = sample
    return Group(
        Text(f"Example #{example_id} before:", "dim"),
        _messages(before),
        Text("after:", "dim"),
        _messages(after),
    )


def preview_text(preview: CleanPreview) -> RenderableType:
    if not preview.instructions:
        return Text(
            "No shared instruction found: no system message, prompt prefix or suffix repeats "
            "across the examples. Nothing to strip."
        )
    found = [Text(f"• {instruction.describe()}") for instruction in preview.instructions]
    samples = [sample_block(sample) for sample in preview.samples[:1]]
    return Group(*found, Text(), savings_line(preview), Text(), *samples)


class CleanPreviewScreen(ModalScreen[bool | None]):
    """Dismissed with True (strip, variants too), False (strip the exact text only) or None."""

    HELP = """\
Instruction stripping: the old pipeline sent the same long instruction with every input (a
system message, or text before or after each input). A fine-tuned model learns the task from
the examples, so the instruction only costs tokens. **y** strips it from every example that
carries it, as one step that **u** undoes; **n** or **Esc** changes nothing.
"""
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "strip", "Strip", id="clean.strip", tooltip="Strip the instructions"),
        Binding("n,escape", "cancel", "Cancel", id="clean.cancel", tooltip="Change nothing"),
    ]

    def __init__(self, preview: CleanPreview) -> None:
        super().__init__(classes="data-dialog")
        self.preview = preview

    def compose(self) -> ComposeResult:
        has_variants = any(i.variants for i in self.preview.instructions)
        with Vertical(classes="data-dialog-panel", id="clean-panel") as panel:
            panel.border_title = "Strip the old pipeline's instructions"
            panel.border_subtitle = "y strips · n cancels"
            with VerticalScroll(id="clean-body"):
                yield Static(preview_text(self.preview), id="clean-preview")
            if has_variants:
                yield Checkbox(
                    "also strip the variants (older versions of it)",
                    True,
                    id="clean-variants",
                    compact=True,
                )
            with Horizontal(classes="data-dialog-buttons"):
                if self.preview.instructions:
                    yield Button("Strip (y)", variant="primary", id="clean-strip")
                yield Button("Cancel (n)", id="clean-cancel")

    def action_strip(self) -> None:
        if not self.preview.instructions:
            return
        variants = self.query("#clean-variants")
        self.dismiss(bool(variants.first(Checkbox).value) if variants else True)

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#clean-strip")
    def strip_pressed(self) -> None:
        self.action_strip()

    @on(Button.Pressed, "#clean-cancel")
    def cancel_pressed(self) -> None:
        self.action_cancel()
