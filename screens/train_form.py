"""The new-run form: every [train] setting with its explanation, checked before anything starts."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from workbench.config import TrainSection
from workbench.train.config import TrainConfigError, run_config


def as_text(value: Any) -> str:
    """A setting as the user types it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def parse_value(text: str, current: Any) -> Any:
    """What the user typed, shaped like the current value (pydantic checks the rest)."""
    if isinstance(current, list):
        return [item.strip() for item in text.split(",") if item.strip()]
    return text.strip()


def changed_settings(base: TrainSection, typed: dict[str, str]) -> dict[str, Any]:
    """The settings the user changed, as overrides for `plan_run`."""
    current = base.model_dump()
    return {
        key: parse_value(text, current[key])
        for key, text in typed.items()
        if text.strip() != as_text(current[key])
    }


class TrainForm(ModalScreen[dict[str, Any] | None]):
    """Edit this run's settings; Ctrl+S checks them and starts the run, Esc cancels."""

    HELP = """\
The settings of the new run: the workspace's `[train]` table, each explained under its field.
Changes apply to this run only (`workbench config set train.KEY=VALUE` changes the default).
**Ctrl+S** checks every value and starts the run; a bad value is refused with the reason and
nothing starts. **Esc** cancels.
"""
    BINDINGS = [
        Binding("ctrl+s", "start", "Start run", id="train-form.start", tooltip="Check and start"),
        Binding("escape", "cancel", "Cancel", id="train-form.cancel", tooltip="Start nothing"),
    ]

    AUTO_FOCUS = "#train-form-base_model"

    def __init__(self, base: TrainSection, last: dict[str, Any] | None = None) -> None:
        """`last`: the overrides of the previous attempt, shown again (a refusal keeps them)."""
        super().__init__(classes="data-dialog")
        self.base = base
        try:
            self.shown = run_config(base, last)
        except TrainConfigError:
            self.shown = base

    def compose(self) -> ComposeResult:
        with Vertical(id="train-form-panel") as panel:
            panel.border_title = "New run"
            panel.border_subtitle = "Ctrl+S starts · Esc cancels"
            with VerticalScroll(id="train-form-fields"):
                for name, field in TrainSection.model_fields.items():
                    with Horizontal(classes="train-form-row"):
                        yield Label(name, classes="train-form-label")
                        yield Input(
                            as_text(getattr(self.shown, name)),
                            id=f"train-form-{name}",
                            classes="train-form-input",
                        )
                    yield Static(escape(field.description or ""), classes="train-form-doc")
            yield Static("", id="train-form-error")
            with Horizontal(classes="data-dialog-buttons"):
                yield Button("Start (Ctrl+S)", variant="success", id="train-form-start")
                yield Button("Cancel (Esc)", id="train-form-cancel")

    def typed(self) -> dict[str, str]:
        return {
            name: self.query_one(f"#train-form-{name}", Input).value
            for name in TrainSection.model_fields
        }

    def action_start(self) -> None:
        overrides = changed_settings(self.base, self.typed())
        try:
            run_config(self.base, overrides)
        except TrainConfigError as exc:
            self.refuse(exc.problems)
            return
        self.dismiss(overrides)

    def refuse(self, problems: list[str]) -> None:
        error = self.query_one("#train-form-error", Static)
        error.update("[b]Not started:[/b]\n" + "\n".join(escape(line) for line in problems))
        error.add_class("-shown")

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "train-form-start":
            self.action_start()
        else:
            self.action_cancel()

    @on(Input.Submitted)
    def submitted(self) -> None:
        self.focus_next()
