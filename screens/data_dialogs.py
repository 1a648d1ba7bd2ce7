"""Small dialogs of the Data screen: pick one of a few, type a word, confirm, set filters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Generic, TypeVar

from rich.markup import escape
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.validation import Integer
from textual.widgets import Button, Checkbox, Input, Label, OptionList, Select, Static
from textual.widgets.option_list import Option

from workbench.data.store import FLAGS, SPLITS, Query

T = TypeVar("T")

CANCEL = Binding("escape", "dismiss", "Cancel", id="dialog.cancel", tooltip="Close, change nothing")


class ChoiceScreen(ModalScreen[T | None], Generic[T]):
    """A short menu: Enter picks the highlighted choice, Esc picks nothing."""

    HELP = "Pick one: ↑/↓ (or j/k) then Enter. Esc closes without changing anything."
    BINDINGS = [
        CANCEL,
        Binding("j", "move(1)", "Down", id="choice.down", show=False, tooltip="Next choice"),
        Binding("k", "move(-1)", "Up", id="choice.up", show=False, tooltip="Previous choice"),
    ]

    def __init__(self, title: str, choices: Sequence[tuple[str, T]], current: T | None = None):
        super().__init__(classes="data-dialog")
        self.title_text = title
        self.choices = list(choices)
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="data-dialog-panel") as panel:
            panel.border_title = self.title_text
            panel.border_subtitle = "Enter picks · Esc cancels"
            yield OptionList(
                *[Option(label, id=str(i)) for i, (label, _) in enumerate(self.choices)],
                id="choice-list",
            )

    def on_mount(self) -> None:
        values = [value for _, value in self.choices]
        options = self.query_one(OptionList)
        options.highlighted = values.index(self.current) if self.current in values else 0

    def action_move(self, delta: int) -> None:
        options = self.query_one(OptionList)
        if delta > 0:
            options.action_cursor_down()
        else:
            options.action_cursor_up()

    @on(OptionList.OptionSelected)
    def picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.choices[event.option_index][1])

    def action_dismiss(self, result: object = None) -> None:  # type: ignore[override]
        self.dismiss(None)


class PromptScreen(ModalScreen[str | None]):
    """One line of text: Enter accepts it, Esc cancels."""

    HELP = "Type, then Enter; → takes the suggestion shown. Esc closes without changing anything."
    BINDINGS = [CANCEL]

    def __init__(
        self,
        title: str,
        placeholder: str = "",
        value: str = "",
        suggestions: Sequence[str] = (),
        hint: str = "",
    ) -> None:
        super().__init__(classes="data-dialog")
        self.title_text = title
        self.placeholder = placeholder
        self.value = value
        self.suggestions = list(suggestions)
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical(classes="data-dialog-panel") as panel:
            panel.border_title = self.title_text
            panel.border_subtitle = "Enter accepts · Esc cancels"
            suggester = SuggestFromList(self.suggestions) if self.suggestions else None
            yield Input(
                self.value, placeholder=self.placeholder, suggester=suggester, id="prompt-input"
            )
            if self.hint:
                yield Static(self.hint, classes="data-dialog-hint")

    @on(Input.Submitted)
    def accepted(self, event: Input.Submitted) -> None:
        if event.value.strip():
            self.dismiss(event.value.strip())

    def action_dismiss(self, result: object = None) -> None:  # type: ignore[override]
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question: y or Enter confirms, n or Esc declines."""

    HELP = "Confirm with y (or Enter on the button), decline with n or Esc."
    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes", tooltip="Go ahead"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no", tooltip="Change nothing"),
    ]

    def __init__(self, question: str, action: str = "Yes") -> None:
        super().__init__(classes="data-dialog")
        self.question = question
        self.action = action

    def compose(self) -> ComposeResult:
        with Vertical(classes="data-dialog-panel") as panel:
            panel.border_title = "Confirm"
            yield Static(escape(self.question), id="confirm-question")
            with Horizontal(classes="data-dialog-buttons"):
                yield Button(f"{self.action} (y)", variant="error", id="confirm-yes")
                yield Button("Cancel (n)", id="confirm-no")

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm-yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


ANY = ""
PROBLEM_CHOICES = [("any", ANY), ("with problems", "yes"), ("without problems", "no")]


def _choices(values: Sequence[str]) -> list[tuple[str, str]]:
    return [("any", ANY), *((value, value) for value in values)]


class FilterScreen(ModalScreen[Query | None]):
    """Filters on split, flag, tag, problems and output length; the search text is kept."""

    HELP = """\
Narrow the table down. Every filter is optional; they combine (all must hold).
Output length is the estimated number of tokens in the answer.
Ctrl+S or Enter in a field applies, Esc cancels, Ctrl+L clears every filter.
"""
    BINDINGS = [
        CANCEL,
        Binding("ctrl+s", "apply", "Apply", id="filter.apply", tooltip="Apply these filters"),
        Binding("ctrl+l", "clear", "Clear", id="filter.clear", tooltip="Remove every filter"),
    ]

    def __init__(self, query: Query, tags: Sequence[str]) -> None:
        super().__init__(classes="data-dialog")
        self.current = query
        self.tags = list(tags)

    def compose(self) -> ComposeResult:
        q = self.current
        with Vertical(classes="data-dialog-panel", id="filter-panel") as panel:
            panel.border_title = "Filters"
            panel.border_subtitle = "Ctrl+S applies · Ctrl+L clears · Esc cancels"
            yield from self._field("Split", _choices(SPLITS), q.split, "filter-split")
            yield from self._field("Flag", _choices(FLAGS), q.flag, "filter-flag")
            yield from self._field("Tag", _choices(self.tags), q.tag, "filter-tag")
            problems = ANY if q.has_problems is None else ("yes" if q.has_problems else "no")
            yield from self._field("Problems", PROBLEM_CHOICES, problems, "filter-problems")
            with Horizontal(classes="filter-row"):
                yield Label("Output tokens", classes="filter-label")
                yield self._number(q.min_tokens, "at least", "filter-min")
                yield self._number(q.max_tokens, "at most", "filter-max")
            with Horizontal(classes="filter-row"):
                yield Label("Deleted", classes="filter-label")
                yield Checkbox(
                    "show deleted examples instead", q.deleted, id="filter-deleted", compact=True
                )
            with Horizontal(classes="data-dialog-buttons"):
                yield Button("Apply", variant="primary", id="filter-apply")
                yield Button("Clear all", id="filter-clear")

    def _field(
        self, label: str, choices: list[tuple[str, str]], value: str | None, id: str
    ) -> ComposeResult:
        with Horizontal(classes="filter-row"):
            yield Label(label, classes="filter-label")
            yield Select(choices, value=value or ANY, allow_blank=False, id=id, compact=True)

    def _number(self, value: int | None, placeholder: str, id: str) -> Input:
        text = "" if value is None else str(value)
        return Input(
            text,
            placeholder=placeholder,
            type="integer",
            validators=[Integer(minimum=0)],
            compact=True,
            id=id,
        )

    def _select(self, id: str) -> str | None:
        value = self.query_one(f"#{id}", Select).value
        return str(value) if value not in (ANY, Select.NULL) else None

    def _int(self, id: str) -> int | None:
        text = self.query_one(f"#{id}", Input).value.strip()
        return int(text) if text.isdigit() else None

    def chosen(self) -> Query:
        """The query these fields describe (search text and sort as before)."""
        problems = self._select("filter-problems")
        return replace(
            self.current,
            split=self._select("filter-split"),  # type: ignore[arg-type]
            flag=self._select("filter-flag"),  # type: ignore[arg-type]
            tag=self._select("filter-tag"),
            has_problems=None if problems is None else problems == "yes",
            min_tokens=self._int("filter-min"),
            max_tokens=self._int("filter-max"),
            deleted=self.query_one("#filter-deleted", Checkbox).value,
        )

    def action_apply(self) -> None:
        self.dismiss(self.chosen())

    def action_clear(self) -> None:
        self.dismiss(Query(text=self.current.text, sort=self.current.sort))

    @on(Input.Submitted)
    def submitted(self) -> None:
        self.action_apply()

    @on(Button.Pressed, "#filter-apply")
    def apply_pressed(self) -> None:
        self.action_apply()

    @on(Button.Pressed, "#filter-clear")
    def clear_pressed(self) -> None:
        self.action_clear()

    def action_dismiss(self, result: object = None) -> None:  # type: ignore[override]
        self.dismiss(None)
