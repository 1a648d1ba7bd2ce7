"""The Data screen: browse, search, filter, edit, tag, flag, split and clean the examples.

The table asks the store for the visible pages only (`ExamplesTable`), so 100,000 examples open
as fast as 100. Every store call runs in a thread worker and comes back as a message. Changes
run one after another in the order the user asked for them, and each is one undoable step.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Input, Label, ProgressBar, Static
from textual.worker import Worker, WorkerState

from screens.base import PaletteCommand, WorkbenchScreen
from screens.clean_preview import CleanPreviewScreen
from screens.data_dialogs import ChoiceScreen, ConfirmScreen, FilterScreen, PromptScreen
from screens.data_jobs import (
    Job,
    dedupe_job,
    import_job,
    job_errors,
    load_engine,
    plan_split,
    split_job,
    strip_job,
    validate_job,
    whitespace_job,
)
from screens.message_editor import MessageEditorScreen
from screens.quarantine import QuarantineScreen
from screens.review import ReviewScreen
from screens.widgets.conversation import ConversationView
from screens.widgets.examples_table import ExamplesTable
from screens.widgets.stats_panel import DataStats, StatsPanel, stats_from_store, with_full_stats
from workbench.collect import review
from workbench.data.store import SPLITS, Example, ExampleStore, Flag, Query, Split
from workbench.workspace import Workspace

if TYPE_CHECKING:
    from workbench.data import clean
    from workbench.data.split import SplitPlan

Change = Callable[[ExampleStore], str]
"""A change to the examples, run in a thread; returns what to tell the user."""

SORTS: list[tuple[str, tuple[str, bool]]] = [
    ("id (import order)", ("id", False)),
    ("output length, longest first", ("output_tokens", True)),
    ("output length, shortest first", ("output_tokens", False)),
    ("recently changed first", ("updated", True)),
    ("split", ("split", False)),
    ("flag", ("flag", False)),
]
FLAG_CHOICES: list[tuple[str, Flag]] = [
    ("ok", "ok"),
    ("needs review", "needs-review"),
    ("bad (left out of training)", "bad"),
]
SPLIT_CHOICES: list[tuple[str, Split]] = [(split, split) for split in SPLITS]
WAITING_EVERY_S = 3.0
"""How often the shown screen counts the candidates waiting (a capture proxy adds them)."""

EMPTY_TEXT = """\
[b]No examples yet.[/b]

Press [b]i[/b] to import a file: OpenAI-chat JSONL, ShareGPT, Alpaca, prompt/completion JSONL,
CSV or Parquet. Or from a shell:

    workbench data import FILE

The sample pairs are in [b]sample_data/imports/seo_pairs.jsonl[/b].
"""


def describe_query(query: Query, matching: int | None, live: int | None) -> str:
    """`12 of 121 examples · search “seo” · split train · sorted by output length ▼`."""
    parts = [_counts(query, matching, live)]
    if query.text.strip():
        parts.append(f"search “{escape(query.text.strip())}”")
    for name, value in (("split", query.split), ("flag", query.flag), ("tag", query.tag)):
        if value is not None:
            parts.append(f"{name} [b]{escape(value)}[/b]")
    if query.has_problems is not None:
        parts.append("with problems" if query.has_problems else "without problems")
    if query.min_tokens is not None or query.max_tokens is not None:
        parts.append(_length_range(query.min_tokens, query.max_tokens))
    if query.sort != "id" or query.descending:
        label = next((name for name, key in SORTS if key == (query.sort, query.descending)), "")
        parts.append(f"sorted by {label or query.sort}")
    return " · ".join(parts)


def _length_range(low: int | None, high: int | None) -> str:
    if high is None:
        return f"output ≥ {low} tok"
    if low is None:
        return f"output ≤ {high} tok"
    return f"output {low}-{high} tok"


def _counts(query: Query, matching: int | None, live: int | None) -> str:
    what = "deleted examples" if query.deleted else "examples"
    if matching is None:
        return f"counting {what}…"
    if live is None or query.deleted or matching == live:
        return f"[b]{matching:,}[/b] {what}"
    return f"[b]{matching:,}[/b] of {live:,} {what}"


def importable_files(root: Path) -> list[str]:
    """Files an import can read in the workspace's `imports/` folder and the current one."""
    from workbench.data.importer import IMPORTABLE

    found: list[str] = []
    for folder in (root / "imports", Path.cwd()):
        if folder.is_dir():
            found += sorted(
                str(path)
                for path in folder.iterdir()
                if path.is_file() and path.suffix.lower() in IMPORTABLE
            )
    return found


def resolve_path(text: str, root: Path) -> Path:
    """A typed path: `~` expanded; relative to the current directory, else to the workspace."""
    path = Path(text).expanduser()
    if path.is_absolute() or path.exists():
        return path.resolve()
    return (root / path).resolve()


def searchable(text: str) -> str:
    """The search to run for what is typed. A last word of one letter waits for the next one:
    as a prefix it matches nearly every example, and costs the store a second on 100k."""
    words = text.split()
    if words and len(words[-1]) < 2 and not text.endswith(" "):
        words = words[:-1]
    return " ".join(words)


def is_filtered(query: Query) -> bool:
    """Whether the query selects fewer than every live example."""
    return replace(query, sort="id", descending=False) != Query()


class EmptyState(Static, can_focus=True):
    """What to do when the workspace has no examples yet."""

    HELP = """\
No examples in this workspace yet. Press **i** to import a file of input/output pairs
(OpenAI-chat JSONL, ShareGPT, Alpaca, prompt/completion JSONL, CSV or Parquet), or run
`workbench data import FILE` in a shell. Lines that cannot be read go to the quarantine (**q**).
"""


class SearchInput(Input):
    """Incremental full-text search over inputs and outputs."""

    HELP = """\
Search as you type: every word must appear in the example (inputs and outputs, not the system
prompt), matched as the start of a word (`mark` finds *marketing*).
**Enter** or **↓** goes to the results, **Esc** clears the search.
"""
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "escape",
            "clear",
            "Clear",
            id="search.clear",
            show=False,
            tooltip="Clear the search (Esc again: back to the table)",
        ),
        Binding(
            "down",
            "leave",
            "Results",
            id="search.results",
            show=False,
            tooltip="Go to the results",
        ),
    ]

    def action_clear(self) -> None:
        if self.value:
            self.value = ""
        else:
            self.action_leave()

    def action_leave(self) -> None:
        self.screen.query_one(ExamplesTable).focus()


class DataScreen(WorkbenchScreen):
    MODE = "data"
    AUTO_FOCUS = "#data-table"
    HELP = """\
## Data
Your training examples: the input/output pairs the old pipeline produced.
Import them, find and fix bad ones, strip the old pipeline's instructions, and split off a
validation set. Every change is one step that **u** undoes (and **Ctrl+R** redoes), even after
a restart.

- **/** searches, **f** filters (split, tag, flag, problems, length), **s** sorts
- **e** edits the highlighted example's messages, **d** deletes (or restores) it
- **t** tags, **F** flags it ok / needs review / bad, **m** moves it to another split
- **S** splits all into train / val / test (a run needs train and val), with a preview
- **b** applies an action to every example the search and filters select
- **v** validates, **c** strips the old pipeline's instructions, **x** shows the stats,
  **q** lists the lines an import could not read, **i** imports a file (**Esc** stops it)
- **o** opens the highlighted example's input in the Chat screen
- **r** reviews the captured and synthetic examples waiting (accept, edit, reject) and
  generates more with Claude; the line above the table says how many wait
- Ctrl+P lists more: tag or delete duplicates, tidy whitespace
"""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "slash",
            "search",
            "Search",
            id="data.search",
            tooltip="Search inputs and outputs as you type",
        ),
        Binding(
            "f",
            "filter",
            "Filter",
            id="data.filter",
            tooltip="Filter by split, flag, tag, problems and output length",
        ),
        Binding(
            "s",
            "sort",
            "Sort",
            id="data.sort",
            show=False,
            tooltip="Sort by id, output length, last change, split or flag",
        ),
        Binding(
            "e,enter",
            "edit",
            "Edit",
            id="data.edit",
            tooltip="Edit the highlighted example's messages",
        ),
        Binding(
            "d",
            "delete",
            "Delete",
            id="data.delete",
            show=False,
            tooltip="Delete the highlighted example (or restore a deleted one)",
        ),
        Binding("u", "undo", "Undo", id="data.undo", tooltip="Undo the last change"),
        Binding(
            "ctrl+r,U",
            "redo",
            "Redo",
            id="data.redo",
            show=False,
            tooltip="Redo the change undone last",
        ),
        Binding(
            "t",
            "tag",
            "Tag",
            id="data.tag",
            show=False,
            tooltip="Add a tag to the highlighted example (-tag removes it)",
        ),
        Binding(
            "F",
            "flag",
            "Flag",
            id="data.flag",
            show=False,
            tooltip="Flag the highlighted example ok, needs review or bad",
        ),
        Binding(
            "m",
            "move",
            "Split",
            id="data.move",
            show=False,
            tooltip="Move the highlighted example to another split",
        ),
        Binding(
            "S",
            "split",
            "Split all",
            id="data.split",
            show=False,
            tooltip="Assign train/val/test to every example (data.val_fraction, test_fraction)",
        ),
        Binding(
            "b",
            "bulk",
            "Bulk",
            id="data.bulk",
            tooltip="Tag, flag, move or delete every example the filters select",
        ),
        Binding(
            "x",
            "toggle_stats",
            "Stats",
            id="data.stats",
            show=False,
            tooltip="Show or hide the stats panel",
        ),
        Binding(
            "q",
            "quarantine",
            "Quarantine",
            id="data.quarantine",
            show=False,
            tooltip="Lines an import could not read: fix them and import them again",
        ),
        Binding(
            "i",
            "import",
            "Import",
            id="data.import",
            tooltip="Import a file of examples (JSONL, JSON, CSV, Parquet, a dataset folder)",
        ),
        Binding(
            "v",
            "validate",
            "Validate",
            id="data.validate",
            show=False,
            tooltip="Check every example again and mark duplicates",
        ),
        Binding(
            "c",
            "clean",
            "Clean",
            id="data.clean",
            show=False,
            tooltip="Strip the old pipeline's instructions (preview first)",
        ),
        Binding(
            "escape",
            "cancel_job",
            "Cancel",
            id="data.cancel",
            tooltip="Stop the running import or validation",
        ),
        Binding(
            "r",
            "review",
            "Review",
            id="data.review",
            show=False,  # the count line says "N waiting for review (r)" when some wait
            tooltip="Review captured and synthetic examples waiting; generate more (g there)",
        ),
        Binding(
            "o",
            "open_in_chat",
            "Chat",
            id="data.chat",
            show=False,
            tooltip="Open the highlighted example's input in the Chat screen",
        ),
    ]

    view: reactive[Query] = reactive(Query, init=False)
    """What the table shows."""
    matching: reactive[int | None] = reactive(None)
    """How many examples the query selects (None until counted)."""
    live: reactive[int | None] = reactive(None)
    """Live examples in the workspace (None until the store is open)."""
    current: reactive[Example | None] = reactive(None)
    """The highlighted example, loaded in full."""
    stats_shown: reactive[bool] = reactive(False)
    tags: reactive[tuple[str, ...]] = reactive(())
    """Every tag in use (for suggestions and the tag filter)."""
    waiting: reactive[int] = reactive(0)
    """Captured and synthetic candidates waiting for review (shown beside the counts)."""
    job_running: reactive[bool] = reactive(False)
    """A change or a job (import, validation...) is running; others wait in line."""
    job_label: reactive[str] = reactive("")
    job_done: reactive[float] = reactive(0.0)
    job_total: reactive[float | None] = reactive(None)
    """None: how long the job takes is not known (the bar pulses)."""

    @dataclass
    class StoreOpened(Message):
        store: ExampleStore
        live: int
        tags: tuple[str, ...]

    @dataclass
    class EngineReady(Message):
        """The store checks every change with the workspace's validator from now on."""

        pending: tuple[Path, ...] = ()
        """Files in the workspace's `imports/` folder that a new database has not seen yet."""

    @dataclass
    class ExampleLoaded(Message):
        example: Example

    @dataclass
    class ExamplesChanged(Message):
        """A change was saved; `note` says what it did."""

        note: str
        live: int
        tags: tuple[str, ...]

    @dataclass
    class ExamplesCounted(Message):
        """The workspace's live examples were counted (after an import, say)."""

        live: int
        tags: tuple[str, ...]

    @dataclass
    class ChangeFailed(Message):
        reason: str

    @dataclass
    class CandidatesCounted(Message):
        """Candidates waiting for review were counted (captures and synth jobs add them)."""

        waiting: int
        added: int
        """Every example ever added (deleted ones included): a rise means new rows."""

    @dataclass
    class JobProgressed(Message):
        what: str
        done: int
        total: int

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, DataScreen.JobProgressed)

    @dataclass
    class CleanPreviewed(Message):
        preview: clean.CleanPreview

    @dataclass
    class DedupePlanned(Message):
        plan: clean.DedupePlan
        delete: bool

    @dataclass
    class WhitespacePreviewed(Message):
        preview: clean.WhitespacePreview

    @dataclass
    class SplitPlanned(Message):
        plan: SplitPlan

    @dataclass
    class StatsCompleted(Message):
        """The full stats (duplicates, conversation lengths) arrived."""

        stats: DataStats

    @dataclass
    class StatsCounted(Message):
        stats: DataStats

    @dataclass
    class ExampleSentToChat(Message):
        """The user asked to try this example's input in the Chat screen."""

        example: Example

    def __init__(self) -> None:
        super().__init__()
        self.store: ExampleStore | None = None
        self.ready = False
        """True once the store validates changes; changes wait until then."""
        self._jobs: deque[tuple[Job, str]] = deque()
        self._added: int | None = None
        """The last `CandidatesCounted.added` (None before the first count)."""
        self._cancel = threading.Event()
        self._stats_cancel = threading.Event()

    # --- layout ----------------------------------------------------------------------------

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="data-body"):
            with Vertical(id="data-main"):
                yield SearchInput(placeholder="/ search inputs and outputs", id="data-search")
                yield Static("", id="data-query")
                yield ExamplesTable(id="data-table")
                yield EmptyState(EMPTY_TEXT, id="data-empty")
                with Horizontal(id="data-job"):
                    yield Label("", id="data-job-label")
                    yield ProgressBar(id="data-job-progress", show_eta=False)
            with Vertical(id="data-side"):
                yield ConversationView(id="data-detail")
                yield StatsPanel(id="data-stats")

    def on_mount(self) -> None:
        progress = self.query_one("#data-job-progress", ProgressBar)
        progress.data_bind(progress=DataScreen.job_done, total=DataScreen.job_total)
        self.open_store(self.workbench.workspace)
        self._watch = self.set_interval(WAITING_EVERY_S, self._recount_waiting)

    def on_screen_resume(self) -> None:
        """Coming back from another screen (the review queue, Chat, Eval): show what they
        changed or added meanwhile (a running job reloads the table when it ends)."""
        self._watch.resume()
        if self.store is None:
            return
        if not self.job_running:
            self._reload()
        self.refresh_counts(self.store)
        self.count_waiting(self.store)

    def on_screen_suspend(self) -> None:
        """Hidden: nobody reads the waiting count; it is recounted on the way back."""
        self._watch.pause()

    def on_unmount(self) -> None:
        if self.store is not None:
            self.store.close()

    @property
    def table(self) -> ExamplesTable:
        return self.query_one(ExamplesTable)

    # --- loading ---------------------------------------------------------------------------

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="data-open",
        description="open the examples",
    )
    def open_store(self, workspace: Workspace) -> None:
        store = ExampleStore(workspace.db_path)
        self.post_message(self.StoreOpened(store, store.count(Query()), _tag_names(store)))
        load_engine()  # numpy and the engine, while the user looks at the first rows
        from workbench.data.importer import pending_imports
        from workbench.data.validate import make_validator

        store.validator = make_validator(workspace.config)
        self.post_message(self.EngineReady(tuple(pending_imports(workspace))))

    @on(StoreOpened)
    def store_opened(self, message: StoreOpened) -> None:
        self.store = message.store
        self.live = message.live
        self.tags = message.tags
        self.table.show(message.store, self.view)
        self.count_waiting(message.store)

    @on(EngineReady)
    def engine_ready(self, message: EngineReady) -> None:
        self.ready = True
        if message.pending:
            names = ", ".join(path.name for path in message.pending)
            self.notify(f"A new workspace: importing imports/ ({names})", timeout=6)
        threshold = self.workspace.config.data.near_duplicate_threshold
        for path in message.pending:
            job = import_job(path, self.workspace.root, threshold)
            self.run_queued(job, f"Could not import {path.name}")
        self._next_job()

    def watch_view(self, query: Query) -> None:
        self.matching = None
        if self.store is not None:
            self.table.show(self.store, query)
        self._describe()

    def watch_matching(self) -> None:
        self._describe()

    def watch_live(self, live: int | None) -> None:
        empty = live == 0 and not is_filtered(self.view)
        for part in ("#data-search", "#data-query", "#data-table", "#data-side"):
            self.query_one(part).display = not empty
        self.query_one(EmptyState).display = empty
        if empty:
            self.query_one(EmptyState).focus()
        elif self.focused is None or isinstance(self.focused, EmptyState):
            self.table.focus()
        self._describe()

    def _describe(self) -> None:
        line = describe_query(self.view, self.matching, self.live)
        if self.waiting:
            line += f" · [b]{self.waiting:,}[/b] waiting for review (r)"
        self.query_one("#data-query", Static).update(line, layout=False)  # one line, always

    @on(ExamplesTable.Counted)
    def counted(self, message: ExamplesTable.Counted) -> None:
        self.matching = message.total
        if message.total == 0:
            self.current = None

    @on(ExamplesTable.RowHighlighted)
    def row_highlighted(self, message: ExamplesTable.RowHighlighted) -> None:
        if self.store is not None:
            self.load_example(self.store, message.row.id)

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="data-example",
        description="load the example",
    )
    def load_example(self, store: ExampleStore, example_id: int) -> None:
        self.post_message(self.ExampleLoaded(store.get(example_id)))

    @on(ExampleLoaded)
    def example_loaded(self, message: ExampleLoaded) -> None:
        row = self.table.current_row
        if row is not None and row.id == message.example.id:
            self.current = message.example

    def watch_current(self, example: Example | None) -> None:
        self.query_one(ConversationView).show(example)

    # --- search, filters, sort -------------------------------------------------------------

    def action_search(self) -> None:
        self.query_one(SearchInput).focus()

    @on(Input.Changed, "#data-search")
    def search_changed(self, event: Input.Changed) -> None:
        self.view = replace(self.view, text=searchable(event.value))

    @on(Input.Submitted, "#data-search")
    def search_submitted(self) -> None:
        self.table.focus()

    def action_filter(self) -> None:
        self.app.push_screen(FilterScreen(self.view, self.tags), self._set_query)

    def _set_query(self, query: Query | None) -> None:
        if query is not None:
            self.view = query

    def action_clear_filters(self) -> None:
        self.query_one(SearchInput).value = ""
        self.view = Query(sort=self.view.sort, descending=self.view.descending)

    def action_sort(self) -> None:
        current = (self.view.sort, self.view.descending)
        self.app.push_screen(ChoiceScreen("Sort by", SORTS, current), self._set_sort)

    def _set_sort(self, sort: tuple[str, bool] | None) -> None:
        if sort is not None:
            self.view = replace(self.view, sort=sort[0], descending=sort[1])  # type: ignore[arg-type]

    # --- changes and jobs, in order, one at a time ------------------------------------------

    def apply(self, change: Change, failure: str) -> None:
        """Queue a change; it runs after the ones asked for before it."""
        self.run_queued(partial(_as_job, change), failure)

    def run_queued(self, job: Job, failure: str) -> None:
        """Queue a job (an import, a validation, a change); `failure` starts its error line."""
        self._jobs.append((job, failure))
        self._next_job()

    def _next_job(self) -> None:
        if self.job_running or not self._jobs or self.store is None or not self.ready:
            return
        job, failure = self._jobs.popleft()
        self._cancel = threading.Event()
        self.job_label, self.job_done, self.job_total = "", 0, None
        self.job_running = True
        self.run_job(self.store, job, failure, self._cancel)

    @work(
        thread=True,
        exclusive=False,  # never drop a change the user asked for; they run one at a time
        exit_on_error=False,
        group="data-job",
        description="change the examples",
    )
    def run_job(self, store: ExampleStore, job: Job, failure: str, cancel: threading.Event) -> None:
        def report(what: str, done: int, total: int) -> None:
            self.post_message(self.JobProgressed(what, done, total))

        try:
            note = job(store, cancel, report)
        except job_errors() as exc:
            self.post_message(self.ChangeFailed(f"{failure}: {exc}"))
            return
        self.post_message(self.ExamplesChanged(note, store.count(Query()), _tag_names(store)))

    @on(JobProgressed)
    def job_progressed(self, message: JobProgressed) -> None:
        self.job_label = message.what
        self.job_done = message.done
        self.job_total = message.total or None

    def watch_job_label(self, label: str) -> None:
        self.query_one("#data-job-label", Label).update(label)
        self.query_one("#data-job").display = bool(label) and self.job_running

    def watch_job_running(self, running: bool) -> None:
        self.query_one("#data-job").display = running and bool(self.job_label)
        self.refresh_bindings()

    def action_cancel_job(self) -> None:
        self._cancel.set()
        self.job_label = "cancelling…"

    @on(ExamplesChanged)
    def examples_changed(self, message: ExamplesChanged) -> None:
        self.notify(message.note, timeout=6)
        self.live = message.live
        self.tags = message.tags
        self._reload()
        self._job_done()
        if self.store is not None:
            self.count_waiting(self.store)

    @on(ChangeFailed)
    def change_failed(self, message: ChangeFailed) -> None:
        self.notify(message.reason, severity="error", timeout=10)
        self._job_done()

    @on(Worker.StateChanged)
    def job_crashed(self, event: Worker.StateChanged) -> None:
        """A job that failed unexpectedly (the app reports it) must not block the queue."""
        if event.worker.group == "data-job" and event.state is WorkerState.ERROR:
            self._job_done()

    def _job_done(self) -> None:
        self.job_running = False
        self.job_label = ""
        self._next_job()

    def _reload(self) -> None:
        """Show the store as it is now: rows, the highlighted example, the stats."""
        self.table.reload()
        if self.stats_shown:
            self.action_refresh_stats()

    # --- one example -------------------------------------------------------------------------

    def highlighted(self) -> Example | None:
        """The highlighted example, or None (and the user is told why)."""
        row = self.table.current_row
        if self.current is None or row is None or row.id != self.current.id:
            self.notify("No example highlighted.", severity="warning", timeout=3)
            return None
        return self.current

    def action_edit(self) -> None:
        if not self.ready:
            self.notify("Still opening the workspace…", timeout=2)
            return
        example = self.highlighted()
        if example is not None and self.store is not None:
            self.app.push_screen(MessageEditorScreen(self.store, example), self._edited)

    def _edited(self, example: Example | None) -> None:
        if example is None:
            return
        self.notify(f"Saved example #{example.id}. u undoes.", timeout=4)
        self.current = example
        self._reload()

    def action_delete(self) -> None:
        example = self.highlighted()
        if example is None:
            return
        if example.deleted:
            self.apply(partial(_restore, [example.id]), f"Could not restore #{example.id}")
        else:
            self.apply(partial(_delete, [example.id]), f"Could not delete #{example.id}")

    def action_undo(self) -> None:
        self.apply(_undo, "Could not undo")

    def action_redo(self) -> None:
        self.apply(_redo, "Could not redo")

    def action_tag(self) -> None:
        example = self.highlighted()
        if example is None:
            return
        dialog = PromptScreen(
            f"Tag example #{example.id}",
            placeholder="a tag, or -tag to remove one",
            suggestions=self.tags,
            hint=f"Tags now: {', '.join(example.tags) or 'none'}",
        )
        self.app.push_screen(dialog, partial(self._tag, [example.id]))

    def _tag(self, ids: list[int], text: str | None) -> None:
        if text:
            remove, tag = text.startswith("-"), text.lstrip("-").strip()
            self.apply(partial(_change_tag, ids, tag, remove), f"Could not tag {tag!r}")

    def action_flag(self) -> None:
        example = self.highlighted()
        if example is not None:
            dialog = ChoiceScreen(f"Flag example #{example.id}", FLAG_CHOICES, example.flag)
            self.app.push_screen(dialog, partial(self._flag, [example.id]))

    def _flag(self, ids: list[int], flag: Flag | None) -> None:
        if flag is not None:
            self.apply(partial(_set_flag, ids, flag), "Could not flag")

    def action_move(self) -> None:
        example = self.highlighted()
        if example is not None:
            dialog = ChoiceScreen(f"Move example #{example.id} to", SPLIT_CHOICES, example.split)
            self.app.push_screen(dialog, partial(self._move, [example.id]))

    def _move(self, ids: list[int], split: Split | None) -> None:
        if split is not None:
            self.apply(partial(_set_split, ids, split), "Could not move")

    def action_open_in_chat(self) -> None:
        example = self.highlighted()
        if example is None:
            return
        self.app.switch_mode("chat")
        self.app.get_screen_stack("chat")[0].post_message(self.ExampleSentToChat(example))

    def action_quarantine(self) -> None:
        if self.store is not None:
            self.app.push_screen(QuarantineScreen(self.store), self._quarantine_closed)

    def _quarantine_closed(self, imported: int | None) -> None:
        if imported and self.store is not None:
            self.refresh_counts(self.store)
            self._reload()

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="data-counts",
        description="count the examples",
    )
    def refresh_counts(self, store: ExampleStore) -> None:
        self.post_message(self.ExamplesCounted(store.count(Query()), _tag_names(store)))

    @on(ExamplesCounted)
    def examples_counted(self, message: ExamplesCounted) -> None:
        self.live = message.live
        self.tags = message.tags

    # --- the review queue: captured and synthetic candidates ---------------------------------

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="data-waiting",
        description="count the candidates waiting",
    )
    def count_waiting(self, store: ExampleStore) -> None:
        waiting = sum(review.count_candidates(store).values())
        self.post_message(self.CandidatesCounted(waiting, store.count_all()))

    def _recount_waiting(self) -> None:
        """Every few seconds while shown: a capture proxy may have stored candidates."""
        if self.store is not None:
            self.count_waiting(self.store)

    @on(CandidatesCounted)
    def candidates_counted(self, message: CandidatesCounted) -> None:
        arrived = self._added is not None and message.added > self._added
        self._added = message.added
        self.waiting = message.waiting
        if arrived and self.store is not None and not self.job_running:
            self.refresh_counts(self.store)  # the new rows are in the store: show them
            self._reload()

    def watch_waiting(self) -> None:
        self._describe()

    def action_review(self, generate: bool = False) -> None:
        """Open the review queue (and its generate dialog, when `generate`)."""
        if self.store is None:
            self.notify("Still opening the workspace…", timeout=2)
            return
        screen = ReviewScreen(self.store, self.workspace)
        self.app.push_screen(screen)  # back from it, on_screen_resume shows what it changed
        if generate:
            screen.call_after_refresh(screen.action_generate)

    # --- bulk: every example the query selects --------------------------------------------

    def action_bulk(self) -> None:
        count = self.matching or 0
        if not count:
            self.notify("No examples selected: the search and filters match none.", timeout=4)
            return
        choices = [
            ("add a tag…", "tag"),
            ("remove a tag…", "untag"),
            ("flag…", "flag"),
            ("move to a split…", "split"),
            ("restore" if self.view.deleted else "delete", "delete"),
        ]
        title = f"All {count:,} examples {'shown' if is_filtered(self.view) else ''}".strip()
        self.app.push_screen(ChoiceScreen(title, choices), self._bulk_chosen)

    def _bulk_chosen(self, what: str | None) -> None:
        if what in ("tag", "untag"):
            verb = "Add" if what == "tag" else "Remove"
            prompt = PromptScreen(f"{verb} a tag: every example shown", suggestions=self.tags)
            self.app.push_screen(prompt, partial(self._bulk_tag, what == "untag"))
        elif what == "flag":
            flags = ChoiceScreen("Flag every example shown", FLAG_CHOICES)
            self.app.push_screen(flags, self._bulk_flag)
        elif what == "split":
            splits = ChoiceScreen("Move every example shown to", SPLIT_CHOICES)
            self.app.push_screen(splits, self._bulk_split)
        elif what == "delete":
            self._bulk_delete()

    def _confirm_bulk(self, what: str, change: Callable[[list[int]], Change]) -> None:
        """Ask (with the count), then apply `change` to every id the current query selects."""
        count, query = self.matching or 0, self.view
        question = f"{what} all {count:,} examples shown? (u undoes it as one step)"

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.apply(partial(_on_ids, query, change), f"Could not {what.lower()}")

        self.app.push_screen(ConfirmScreen(question, what), confirmed)

    def _bulk_tag(self, remove: bool, tag: str | None) -> None:
        if tag:
            tag = tag.lstrip("-").strip()
            verb = f"Untag {tag!r} from" if remove else f"Tag {tag!r} on"
            self._confirm_bulk(verb, lambda ids: partial(_change_tag, ids, tag, remove))

    def _bulk_flag(self, flag: Flag | None) -> None:
        if flag is not None:
            self._confirm_bulk(f"Flag {flag}", lambda ids: partial(_set_flag, ids, flag))

    def _bulk_split(self, split: Split | None) -> None:
        if split is not None:
            self._confirm_bulk(f"Move to {split}", lambda ids: partial(_set_split, ids, split))

    def _bulk_delete(self) -> None:
        if self.view.deleted:
            self._confirm_bulk("Restore", lambda ids: partial(_restore, ids))
        else:
            self._confirm_bulk("Delete", lambda ids: partial(_delete, ids))

    # --- the data engine: import, validate, clean, split ------------------------------------

    @property
    def workspace(self) -> Workspace:
        return self.workbench.workspace

    def action_import(self) -> None:
        dialog = PromptScreen(
            "Import a file",
            placeholder="path of a .jsonl, .json, .csv, .parquet file or a dataset folder",
            suggestions=importable_files(self.workspace.root),
            hint="OpenAI chat, ShareGPT, Alpaca or prompt/completion records; the format is "
            "detected. Lines that cannot be read go to the quarantine (q). u undoes the import.",
        )
        self.app.push_screen(dialog, self._import)

    def _import(self, text: str | None) -> None:
        if not text:
            return
        path = resolve_path(text, self.workspace.root)
        if not path.exists():
            self.notify(f"No such file or folder: {path}", severity="error", timeout=8)
            return
        threshold = self.workspace.config.data.near_duplicate_threshold
        job = import_job(path, self.workspace.root, threshold)
        self.run_queued(job, f"Could not import {path.name}")

    def action_validate(self) -> None:
        self.run_queued(validate_job(self.workspace.config), "Could not validate")

    def action_clean(self) -> None:
        if self.store is not None:
            self.notify("Looking for the old pipeline's instructions…", timeout=3)
            self.preview_clean(self.store)

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="data-preview",
        description="look for shared instructions",
    )
    def preview_clean(self, store: ExampleStore) -> None:
        from workbench.data import clean

        self.post_message(self.CleanPreviewed(clean.find_instructions(store)))

    @on(CleanPreviewed)
    def clean_previewed(self, message: CleanPreviewed) -> None:
        def chosen(include_variants: bool | None) -> None:
            if include_variants is not None:
                job = strip_job(message.preview, include_variants)
                self.run_queued(job, "Could not strip the instructions")

        self.app.push_screen(CleanPreviewScreen(message.preview), chosen)

    def action_dedupe(self, delete: bool = False) -> None:
        if self.store is not None:
            threshold = self.workspace.config.data.near_duplicate_threshold
            self.plan_dedupe(self.store, threshold, delete)

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="data-preview",
        description="look for duplicates",
    )
    def plan_dedupe(self, store: ExampleStore, threshold: float, delete: bool) -> None:
        from workbench.data import clean

        self.post_message(self.DedupePlanned(clean.plan_dedupe(store, threshold), delete))

    @on(DedupePlanned)
    def dedupe_planned(self, message: DedupePlanned) -> None:
        plan = message.plan
        if not plan.copies:
            self.notify("No duplicates: every example is different enough.", timeout=5)
            return
        verb = "Delete" if message.delete else "Tag"
        question = (
            f"{verb} {plan.copies:,} copies ({sum(len(g.copies) for g in plan.exact):,} exact,"
            f" {sum(len(g.copies) for g in plan.near):,} near), keeping the first of each"
            " group? (u undoes it)"
        )
        job = dedupe_job(plan, message.delete)
        self._confirm(question, verb, job, "Could not mark the duplicates")

    def action_whitespace(self) -> None:
        if self.store is not None:
            self.preview_whitespace(self.store)

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="data-preview",
        description="look at the whitespace",
    )
    def preview_whitespace(self, store: ExampleStore) -> None:
        from workbench.data import clean

        self.post_message(self.WhitespacePreviewed(clean.preview_whitespace(store)))

    @on(WhitespacePreviewed)
    def whitespace_previewed(self, message: WhitespacePreviewed) -> None:
        count = message.preview.examples_changed
        if not count:
            self.notify("The whitespace is tidy already.", timeout=4)
            return
        question = f"Tidy the whitespace of {count:,} examples? (u undoes it)"
        self._confirm(question, "Tidy", whitespace_job(), "Could not tidy the whitespace")

    def action_split(self) -> None:
        if self.store is not None:
            self.plan_split(self.store, self.workspace)

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="data-preview",
        description="plan the split",
    )
    def plan_split(self, store: ExampleStore, workspace: Workspace) -> None:
        from workbench.data.split import SplitError

        try:
            self.post_message(self.SplitPlanned(plan_split(store, workspace.config)))
        except SplitError as exc:
            self.post_message(self.ChangeFailed(f"Cannot split: {exc}"))

    @on(SplitPlanned)
    def split_planned(self, message: SplitPlanned) -> None:
        plan = message.plan
        counts = plan.counts
        question = (
            f"Split the examples: train {counts['train']:,}, val {counts['val']:,},"
            f" test {counts['test']:,} (seed {plan.seed})? Copies stay together; examples"
            " already split may move. u undoes it."
        )
        if plan.note:
            question += f"\n{plan.note}."
        self._confirm(question, "Split", split_job(plan), "Could not split")

    def _confirm(self, question: str, verb: str, job: Job, failure: str) -> None:
        def confirmed(yes: bool | None) -> None:
            if yes:
                self.run_queued(job, failure)

        self.app.push_screen(ConfirmScreen(question, verb), confirmed)

    # --- stats ------------------------------------------------------------------------------

    def action_toggle_stats(self) -> None:
        self.stats_shown = not self.stats_shown

    def watch_stats_shown(self, shown: bool) -> None:
        self.query_one(StatsPanel).display = shown
        if shown:
            self.action_refresh_stats()
        else:
            self._stats_cancel.set()

    def action_refresh_stats(self) -> None:
        if self.store is not None:
            self._stats_cancel.set()
            self._stats_cancel = threading.Event()
            self.count_stats(self.store, self.workspace, self._stats_cancel)

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="data-stats",
        description="count the stats",
    )
    def count_stats(
        self, store: ExampleStore, workspace: Workspace, cancel: threading.Event
    ) -> None:
        """Indexed counts first (instant), then a full pass for duplicates and lengths."""
        from workbench.data.stats import compute_stats

        quick = stats_from_store(store)
        self.post_message(self.StatsCounted(quick))
        full = compute_stats(store, workspace.config, cancel=cancel)
        if not cancel.is_set():
            self.post_message(self.StatsCompleted(with_full_stats(quick, full)))

    @on(StatsCounted)
    def stats_counted(self, message: StatsCounted) -> None:
        self.query_one(StatsPanel).stats = message.stats

    @on(StatsCompleted)
    def stats_completed(self, message: StatsCompleted) -> None:
        self.query_one(StatsPanel).stats = message.stats

    # --- keys that make sense now -----------------------------------------------------------

    EXAMPLE_ACTIONS: ClassVar[frozenset[str]] = frozenset(
        {"search", "filter", "sort", "edit", "delete", "tag", "flag", "move", "bulk"}
        | {"toggle_stats", "open_in_chat", "validate", "clean"}
    )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Hide what needs examples while there are none, and Cancel while nothing runs."""
        if action == "cancel_job":
            return self.job_running and bool(self.job_label)
        return not (action in self.EXAMPLE_ACTIONS and self.live == 0)

    # --- palette ----------------------------------------------------------------------------

    def palette_commands(self) -> list[PaletteCommand]:
        def command(title: str, help: str, callback: Callable[[], object]) -> PaletteCommand:
            return PaletteCommand(f"data: {title}", help, callback)

        return [
            command("search", "Search inputs and outputs (/)", self.action_search),
            command(
                "filter", "Filter by split, flag, tag, problems, length (f)", self.action_filter
            ),
            command("clear filters", "Show every example again", self.action_clear_filters),
            command("sort", "Sort the table (s)", self.action_sort),
            command(
                "edit example", "Edit the highlighted example's messages (e)", self.action_edit
            ),
            command(
                "delete example",
                "Delete or restore the highlighted example (d)",
                self.action_delete,
            ),
            command("undo", "Undo the last change (u)", self.action_undo),
            command("redo", "Redo the change undone last (Ctrl+R)", self.action_redo),
            command("tag example", "Tag the highlighted example (t)", self.action_tag),
            command("flag example", "Flag it ok, needs review or bad (F)", self.action_flag),
            command("move example to split", "Move it to train, val or test (m)", self.action_move),
            command("tag filtered", "Tag every example shown", partial(self._bulk_chosen, "tag")),
            command(
                "untag filtered",
                "Remove a tag from every example shown",
                partial(self._bulk_chosen, "untag"),
            ),
            command(
                "flag filtered", "Flag every example shown", partial(self._bulk_chosen, "flag")
            ),
            command(
                "move filtered to split",
                "Move every example shown to a split",
                partial(self._bulk_chosen, "split"),
            ),
            command(
                "delete filtered",
                "Delete every example shown (undoable)",
                partial(self._bulk_chosen, "delete"),
            ),
            command("stats", "Show or hide the stats panel (x)", self.action_toggle_stats),
            command(
                "quarantine",
                "Lines an import could not read; fix and re-import (q)",
                self.action_quarantine,
            ),
            command("import file", "Import a file of examples (i)", self.action_import),
            command(
                "validate all",
                "Check every example again and mark duplicates (v)",
                self.action_validate,
            ),
            command(
                "strip instructions",
                "Preview, then strip the old pipeline's shared instruction (c)",
                self.action_clean,
            ),
            command(
                "tag duplicates",
                "Tag exact and near copies (the first of each is kept)",
                self.action_dedupe,
            ),
            command(
                "delete duplicates",
                "Delete exact and near copies (the first of each is kept)",
                partial(self.action_dedupe, True),
            ),
            command(
                "tidy whitespace",
                "Trailing spaces, runs of blank lines, CRLF (preview first)",
                self.action_whitespace,
            ),
            command(
                "split",
                "Assign train/val/test from data.val_fraction and test_fraction (S)",
                self.action_split,
            ),
            command(
                "review candidates",
                "Accept, edit or reject captured and synthetic examples (r)",
                self.action_review,
            ),
            command(
                "generate synthetic examples",
                "Claude writes new examples from a few of yours, for review",
                partial(self.action_review, True),
            ),
            command(
                "open in chat",
                "Try the highlighted input in the Chat screen (o)",
                self.action_open_in_chat,
            ),
        ]


# --- changes: run in a thread by `DataScreen.run_job` ------------------------------------


def _as_job(
    change: Change, store: ExampleStore, cancel: threading.Event, report: Callable[..., None]
) -> str:
    return change(store)


def _tag_names(store: ExampleStore) -> tuple[str, ...]:
    return tuple(tag for tag, _ in store.all_tags())


def _plural(count: int, what: str = "example") -> str:
    return f"{count:,} {what}{'' if count == 1 else 's'}"


def _delete(ids: list[int], store: ExampleStore) -> str:
    changed = store.delete(ids)
    return f"Deleted {_plural(changed)}. u undoes." if changed else "Nothing to delete."


def _restore(ids: list[int], store: ExampleStore) -> str:
    changed = store.restore(ids)
    return f"Restored {_plural(changed)}." if changed else "Nothing to restore."


def _undo(store: ExampleStore) -> str:
    label = store.undo()
    return f"Undone: {label}. Ctrl+R redoes." if label else "Nothing to undo."


def _redo(store: ExampleStore) -> str:
    label = store.redo()
    return f"Redone: {label}." if label else "Nothing to redo."


def _change_tag(ids: list[int], tag: str, remove: bool, store: ExampleStore) -> str:
    if remove:
        return f"Removed tag {tag!r} from {_plural(store.remove_tag(ids, tag))}."
    return f"Tagged {_plural(store.add_tag(ids, tag))} {tag!r}."


def _set_flag(ids: list[int], flag: Flag, store: ExampleStore) -> str:
    return f"Flagged {_plural(store.set_flag(ids, flag))} {flag}."


def _set_split(ids: list[int], split: Split, store: ExampleStore) -> str:
    return f"Moved {_plural(store.set_split(ids, split))} to {split}."


def _on_ids(query: Query, change: Callable[[list[int]], Change], store: ExampleStore) -> str:
    """Apply a change to every example the query selects (read now, in the thread)."""
    return change(store.ids(query))(store)
