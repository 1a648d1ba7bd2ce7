"""The quarantine: input lines an import could not take, with why; fix one and import it again.

A fixed line is checked as the importer checks it (`importer.fix_quarantined`): parsed as JSON,
converted to OpenAI chat from whatever shape it has (ShareGPT, Alpaca, prompt/completion), then
validated. When it passes, it becomes an example and leaves the quarantine; when it does not, the
line keeps the edited text and the new reasons, and the dialog shows them.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, OptionList, Static, TextArea
from textual.widgets.option_list import Option

from screens.data_dialogs import ConfirmScreen
from workbench.data.store import ExampleStore, StoreError


def readable(raw: str) -> str:
    """A line that parses as JSON, indented for editing (any JSON text is accepted back)."""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return raw
    return json.dumps(value, ensure_ascii=False, indent=2)


def describe(entry: dict[str, Any]) -> str:
    """`seo.jsonl:12 · not valid JSON: ...` for the list."""
    where = f"{entry['source']}:{entry['line']}" if entry.get("line") else entry["source"]
    reasons = entry.get("reasons") or ["(no reason recorded)"]
    return f"{where} · {reasons[0]}"


class QuarantineScreen(ModalScreen[int]):
    """Every quarantined line; dismissed with how many were imported after a fix."""

    HELP = """\
Lines an import could not take, with the reasons. Pick one (↑/↓, Enter), fix its text, then
**Ctrl+S** checks it again: a line that passes becomes an example and leaves the quarantine.
**Discard** drops a line for good. **Esc** closes.
"""
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "ctrl+s",
            "recheck",
            "Check and import",
            id="quarantine.recheck",
            tooltip="Check the edited line again and import it if it passes",
        ),
        Binding("escape", "close", "Close", id="quarantine.close", tooltip="Back to the table"),
    ]

    @dataclass
    class Listed(Message):
        entries: list[dict[str, Any]]

    @dataclass
    class Imported(Message):
        quarantine_id: int
        example_id: int
        warnings: int

    @dataclass
    class Refused(Message):
        reasons: list[str]

    def __init__(self, store: ExampleStore) -> None:
        super().__init__(classes="data-dialog", id="quarantine-screen")
        self.store = store
        self.entries: list[dict[str, Any]] = []
        self.imported = 0
        self._highlight = 0

    def compose(self) -> ComposeResult:
        with Vertical(classes="data-dialog-panel", id="quarantine-panel") as panel:
            panel.border_title = "Quarantine"
            panel.border_subtitle = "Ctrl+S checks and imports · Esc closes"
            yield OptionList(id="quarantine-list")
            yield Static("", id="quarantine-reasons")
            yield TextArea("", soft_wrap=True, id="quarantine-raw", tab_behavior="focus")
            with Horizontal(classes="data-dialog-buttons"):
                yield Button(
                    "Check and import (Ctrl+S)", variant="primary", id="quarantine-recheck"
                )
                yield Button("Discard line", variant="error", id="quarantine-discard")
                yield Button("Close (Esc)", id="quarantine-close")

    def on_mount(self) -> None:
        self.list_lines()

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="quarantine",
        description="list the quarantine",
    )
    def list_lines(self) -> None:
        self.post_message(self.Listed(self.store.quarantined()))

    @on(Listed)
    def listed(self, message: Listed) -> None:
        self.entries = message.entries
        options = self.query_one(OptionList)
        self._highlight = options.highlighted or 0
        options.clear_options()
        options.add_options([Option(escape(describe(e)), id=str(e["id"])) for e in self.entries])
        count = len(self.entries)
        self.query_one(
            "#quarantine-panel"
        ).border_title = f"Quarantine · {count} line{'' if count == 1 else 's'}"
        self.query_one("#quarantine-recheck", Button).disabled = not count
        self.query_one("#quarantine-discard", Button).disabled = not count
        if count:
            options.highlighted = min(self._highlight, count - 1)
            options.focus()
        else:
            self.show_entry(None)

    @property
    def entry(self) -> dict[str, Any] | None:
        """The highlighted line."""
        index = self.query_one(OptionList).highlighted
        return self.entries[index] if index is not None and index < len(self.entries) else None

    @on(OptionList.OptionHighlighted)
    def highlighted(self) -> None:
        self.show_entry(self.entry)

    @on(OptionList.OptionSelected)
    def selected(self) -> None:
        self.query_one(TextArea).focus()

    def show_entry(self, entry: dict[str, Any] | None) -> None:
        reasons = self.query_one("#quarantine-reasons", Static)
        raw = self.query_one(TextArea)
        if entry is None:
            reasons.update("Nothing in quarantine: every line of every import was read.")
            raw.load_text("")
            return
        reasons.update(self._reasons(entry.get("reasons") or []))
        raw.load_text(readable(entry["raw"]))

    @staticmethod
    def _reasons(reasons: list[str]) -> str:
        return "\n".join(f"[red]⚠[/red] {escape(reason)}" for reason in reasons)

    # --- check again ------------------------------------------------------------------------

    def action_recheck(self) -> None:
        entry = self.entry
        if entry is not None:
            self.recheck(entry, self.query_one(TextArea).text)

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="quarantine",
        description="check the line again",
    )
    def recheck(self, entry: dict[str, Any], raw: str) -> None:
        from workbench.data.importer import fix_quarantined

        try:
            result = fix_quarantined(self.store, entry["id"], raw)
        except (StoreError, sqlite3.Error) as exc:
            self.post_message(self.Refused([f"not saved: {exc}"]))
            return
        if result.example_id is None:
            self.post_message(self.Refused([p.message for p in result.problems]))
        else:
            warnings = len(result.problems)
            self.post_message(self.Imported(entry["id"], result.example_id, warnings))

    @on(Refused)
    def refused(self, message: Refused) -> None:
        self.query_one("#quarantine-reasons", Static).update(self._reasons(message.reasons))
        self.notify("Still not importable: " + "; ".join(message.reasons), severity="error")
        self.list_lines()  # the line now holds the edited text and the new reasons

    @on(Imported)
    def imported_line(self, message: Imported) -> None:
        self.imported += 1
        warnings = f" with {message.warnings} warning(s)" if message.warnings else ""
        self.notify(f"Imported as example #{message.example_id}{warnings}.")
        self.list_lines()

    # --- discard and close -----------------------------------------------------------------

    @on(Button.Pressed, "#quarantine-discard")
    def discard_pressed(self) -> None:
        entry = self.entry
        if entry is None:
            return
        question = f"Drop {describe(entry)} for good? It cannot be undone."

        def confirmed(yes: bool | None) -> None:
            if yes and entry is not None:
                self.discard(entry["id"])

        self.app.push_screen(ConfirmScreen(question, "Discard"), confirmed)

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="quarantine",
        description="discard the line",
    )
    def discard(self, quarantine_id: int) -> None:
        self.store.release_quarantined(quarantine_id)
        self.post_message(self.Listed(self.store.quarantined()))

    @on(Button.Pressed, "#quarantine-recheck")
    def recheck_pressed(self) -> None:
        self.action_recheck()

    @on(Button.Pressed, "#quarantine-close")
    def close_pressed(self) -> None:
        self.action_close()

    def action_close(self) -> None:
        self.dismiss(self.imported)
