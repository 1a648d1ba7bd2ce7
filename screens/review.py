"""The review queue: captured and synthetic examples waiting for a person to look at them.

Pushed over the Data screen (r). The list is an `ExamplesTable` over one store query
(`review.review_query`), so 100,000 candidates page in from the store like the Data table.
Accepting, editing and rejecting are ordinary store changes, run one after another in a
thread; the screen remembers the actions they record, so `u` undoes those and never a newer
one of a capture proxy or synth job writing to the same database. `g` starts a detached synth
job (`launch.start_synth`); a worker tails its `events.jsonl`, the bar follows the examples it
adds, and the list reloads as they arrive. Leaving the screen stops nothing: the job is its
own process.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import ClassVar

from rich.markup import escape
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, Label, ProgressBar, Static
from textual.worker import Worker, WorkerState

from screens.base import PaletteCommand
from screens.data_dialogs import ConfirmScreen
from screens.message_editor import MessageEditorScreen
from screens.synth_dialog import SynthDialog, SynthRequest
from screens.widgets.conversation import ConversationView
from screens.widgets.examples_table import ExamplesTable
from screens.widgets.header import WorkbenchHeader
from workbench.collect import launch, review
from workbench.collect.review import Origin
from workbench.data.store import Example, ExampleStore, StoreError
from workbench.jobs import EventTail, observed_status
from workbench.workspace import Workspace


@dataclass(frozen=True)
class Outcome:
    """What a change did: what to tell the user, and the store action it recorded or undid
    (so the screen knows which actions are its own)."""

    note: str
    recorded: int | None = None
    undone: int | None = None
    refused: bool = False
    """Nothing was changed on purpose (a warning, not an error)."""


Change = Callable[[ExampleStore, frozenset[int]], Outcome]
"""A change to the store, run in a thread. It gets the screen's own actions as they stand
when it starts (an undo takes only one of those)."""

FILTERS: tuple[Origin | None, ...] = (None, "captured", "synthetic")
FILTER_NAMES: dict[Origin | None, str] = {
    None: "all waiting",
    "captured": "captured only",
    "synthetic": "synthetic only",
}
POLL_S = 0.25
"""How often the follower looks at the synth job's event log."""
WATCH_EVERY_S = 2.0
"""How often the screen counts the waiting examples, to show what a capture proxy adds."""
SEEDS = 8
"""At most this many seed examples (as `workbench synth --seeds`)."""

EMPTY_TEXT = """\
[b]Nothing waits for review.[/b]

Fill the queue:

  [b]g[/b]  Claude writes new examples from a few of yours (needs ANTHROPIC_API_KEY)

  or capture the old pipeline's traffic, from a shell:

      workbench capture

  then point the old pipeline's base URL at http://127.0.0.1:8765: every request and
  answer lands here. [b]Esc[/b] goes back to the Data screen.
"""
EMPTY_FILTERED = "[b]No {what} candidates wait.[/b] [b]f[/b] shows every candidate."


def meta_text(example: Example) -> Text:
    """Where a candidate came from: origin, model, time, tag or topic, latency, tokens, cost."""
    origin = review.origin_of(example)
    if origin is None:
        return Text("flagged for review by hand (a accepts it)", "italic")
    candidate = review.to_candidate(example)
    text = Text.assemble((origin, "bold cyan" if origin == "captured" else "bold magenta"))
    for label, value in _meta_fields(candidate):
        text.append(f"\n{label}: ", "dim")
        text.append(value)
    return text


def _meta_fields(candidate: review.Candidate) -> list[tuple[str, str]]:
    fields = [
        ("model", candidate.model or "unknown"),
        ("time", candidate.time or "unknown"),
    ]
    if candidate.tag:
        fields.append(("topic" if candidate.origin == "synthetic" else "tag", candidate.tag))
    if candidate.latency_ms is not None:
        fields.append(("latency", f"{candidate.latency_ms:,.0f} ms"))
    if candidate.usage:
        used = candidate.usage
        tokens = f"{used.get('input_tokens', 0):,} in, {used.get('output_tokens', 0):,} out"
        fields.append(("tokens", tokens))
    if candidate.cost_usd is not None:
        fields.append(("cost", f"${candidate.cost_usd:.4f}"))
    return fields


def counts_title(counts: dict[Origin, int], waiting: int) -> str:
    """`Review · 3 captured · 2 synthetic` (+ those flagged by hand, when there are some)."""
    parts = [f"{counts.get(origin, 0):,} {origin}" for origin in review.ORIGINS]
    by_hand = waiting - sum(counts.values())
    if by_hand > 0:
        parts.append(f"{by_hand:,} flagged by hand")
    return "Review · " + " · ".join(parts)


def progress_label(added: int, count: int, calls: int, planned: int, cost: float) -> str:
    """`Generating: 10 of 50 added · call 2/10 · $0.0123 spent · s stops`."""
    return (
        f"Generating: {added:,} of {count:,} added · call {calls}/{planned}"
        f" · ${cost:.4f} spent · s stops"
    )


class ReviewScreen(Screen[None]):
    """Candidates waiting for review: read one, accept, edit or reject it; generate more."""

    AUTO_FOCUS = "#review-table"
    HELP = """\
## Review
Examples waiting for a person before they count as training data: pairs the capture proxy
stored from the old pipeline's traffic (**captured**), and examples Claude wrote from a few of
yours (**synthetic**). The pane on the right shows the highlighted one in full, with its
model, time, tag or topic, latency, tokens and cost.

- **a** accepts it (it becomes a normal example), **e** edits its messages (it stays in the
  queue until accepted), **d** rejects it (deleted; a rejected synthetic example is not
  generated again), **u** undoes the last of these (never a newer change that a capture or
  a synth job made meanwhile: undo that on the Data screen)
- **A** accepts every candidate shown, **f** shows all / captured only / synthetic only
- **g** generates more with Claude (a background job: **s** stops it, leaving this screen
  does not)
- **Esc** goes back to the Data screen

From a shell: `workbench review list`, `workbench synth`, `workbench capture`.
"""
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "accept", "Accept", id="review.accept", tooltip="Accept the candidate"),
        Binding(
            "e,enter",
            "edit",
            "Edit",
            id="review.edit",
            tooltip="Edit the candidate's messages (it stays in the queue until accepted)",
        ),
        Binding(
            "d",
            "reject",
            "Reject",
            id="review.reject",
            tooltip="Reject the candidate: delete it (u undoes)",
        ),
        Binding(
            "u",
            "undo",
            "Undo",
            id="review.undo",
            tooltip="Undo this screen's last change (not a newer one of another job)",
        ),
        Binding(
            "A",
            "accept_all",
            "Accept all",
            id="review.accept_all",
            show=False,
            tooltip="Accept every candidate shown (asks first)",
        ),
        Binding(
            "f",
            "filter",
            "Filter",
            id="review.filter",
            tooltip="Show all candidates, captured only or synthetic only",
        ),
        Binding(
            "g",
            "generate",
            "Generate",
            id="review.generate",
            priority=True,  # before the table's own g (first row)
            tooltip="Have Claude write more examples from a few of yours",
        ),
        Binding(
            "s",
            "stop",
            "Stop",
            id="review.stop",
            tooltip="Stop the running generation (what it added stays)",
        ),
        Binding("escape", "close", "Back", id="review.close", tooltip="Back to the Data screen"),
    ]

    origin: reactive[Origin | None] = reactive(None, init=False)
    """Which candidates the list shows (None: every one waiting)."""
    shown: reactive[int | None] = reactive(None)
    """How many the list shows (None until counted)."""
    counts: reactive[dict[Origin, int]] = reactive(dict)
    waiting: reactive[int] = reactive(0)
    """Every example waiting for review (candidates and those flagged by hand)."""
    current: reactive[Example | None] = reactive(None)
    job_id: reactive[str] = reactive("")
    """The synth job being followed ('' when none)."""
    job_label: reactive[str] = reactive("")
    job_done: reactive[float] = reactive(0.0)
    job_total: reactive[float | None] = reactive(None)

    @dataclass
    class Counted(Message):
        counts: dict[Origin, int]
        waiting: int
        added: int
        """Every example ever added (deleted ones included): it only grows, so a rise means
        arrivals, even when a reject in the same moment kept `waiting` level."""

    @dataclass
    class CandidateLoaded(Message):
        example: Example

    @dataclass
    class CandidatesChanged(Message):
        outcome: Outcome

    @dataclass
    class ShownListed(Message):
        """The ids the list shows, read before "accept all" asks: exactly those are accepted."""

        origin: Origin | None
        ids: tuple[int, ...]

    @dataclass
    class ChangeFailed(Message):
        reason: str

    @dataclass
    class GenerationRefused(Message):
        """The job could not start; `reason` says what to do."""

        reason: str

    @dataclass
    class GenerationStarted(Message):
        job_id: str

    @dataclass
    class GenerationProgressed(Message):
        job_id: str
        added: int
        count: int
        calls: int
        planned: int
        cost_usd: float

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, ReviewScreen.GenerationProgressed)

    @dataclass
    class CandidatesArrived(Message):
        """The job queued new candidates: the list and counts are stale."""

        job_id: str

    @dataclass
    class GenerationEnded(Message):
        job_id: str
        state: str
        reason: str
        error: str = ""

    def __init__(self, store: ExampleStore, workspace: Workspace) -> None:
        super().__init__(id="review-screen")
        self.store = store
        self.workspace = workspace
        self._changes: deque[tuple[Change, str]] = deque()
        self._busy = False
        self._actions: list[int] = []
        """The store actions this screen's changes recorded and did not undo, oldest first."""
        self._close_pending = False
        """Esc was pressed while changes were queued: close once they are saved."""
        self._follow_cancel = threading.Event()
        self._last_request = SynthRequest()
        self._reload_pending = False
        self._added: int | None = None
        """The last `Counted.added` (None before the first count)."""
        self._plan = (0, 0)
        """The followed job's count and planned calls (from its `started` event)."""

    # --- layout ---------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield WorkbenchHeader(self.workspace.name, "data")
        with Horizontal(id="review-body"):
            with Vertical(id="review-main"):
                yield ExamplesTable(id="review-table")
                yield Static(EMPTY_TEXT, id="review-empty")
                with Horizontal(id="review-job"):
                    yield Label("", id="review-job-label")
                    yield ProgressBar(id="review-job-progress", show_eta=False)
            with Vertical(id="review-side"):
                yield Static("", id="review-meta")
                yield ConversationView(id="review-detail")
        yield Footer()

    def on_mount(self) -> None:
        progress = self.query_one("#review-job-progress", ProgressBar)
        progress.data_bind(progress=ReviewScreen.job_done, total=ReviewScreen.job_total)
        self.query_one("#review-job").display = False
        self.table.show(self.store, review.review_query(self.origin))
        self._describe()
        self.count()
        self.find_running_job()
        self.set_interval(WATCH_EVERY_S, self.count)

    def on_unmount(self) -> None:
        self._follow_cancel.set()

    @property
    def table(self) -> ExamplesTable:
        return self.query_one("#review-table", ExamplesTable)

    def _describe(self) -> None:
        main = self.query_one("#review-main")
        main.border_title = counts_title(self.counts, self.waiting)
        main.border_subtitle = f"{FILTER_NAMES[self.origin]} (f)"

    # --- the list and the counts -------------------------------------------------------------

    def watch_origin(self, origin: Origin | None) -> None:
        self.shown = None
        self.table.show(self.store, review.review_query(origin))
        self._describe()

    @on(ExamplesTable.Counted)
    def listed(self, message: ExamplesTable.Counted) -> None:
        self.shown = message.total
        if message.total == 0:
            self.current = None

    def watch_shown(self, shown: int | None) -> None:
        empty = shown == 0
        self.table.display = not empty
        self.query_one("#review-side").display = not empty
        self.refresh_bindings()
        notice = self.query_one("#review-empty", Static)
        notice.display = empty
        if self.origin is None:
            notice.update(EMPTY_TEXT)
        else:
            notice.update(EMPTY_FILTERED.format(what=self.origin))

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="review-count",
        description="count the candidates",
    )
    def count(self) -> None:
        counts = review.count_candidates(self.store)
        waiting = self.store.count(review.review_query(None))
        self.post_message(self.Counted(counts, waiting, self.store.count_all()))

    @on(Counted)
    def counted(self, message: Counted) -> None:
        arrived = self._added is not None and message.added > self._added
        self._added = message.added
        self.counts = message.counts
        self.waiting = message.waiting
        self._describe()
        if arrived:  # a capture proxy or another job added candidates while we look
            self.table.reload()

    @on(ExamplesTable.RowHighlighted)
    def row_highlighted(self, message: ExamplesTable.RowHighlighted) -> None:
        self.load_candidate(message.row.id)

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="review-candidate",
        description="load the candidate",
    )
    def load_candidate(self, example_id: int) -> None:
        self.post_message(self.CandidateLoaded(self.store.get(example_id)))

    @on(CandidateLoaded)
    def candidate_loaded(self, message: CandidateLoaded) -> None:
        row = self.table.current_row
        if row is not None and row.id == message.example.id:
            self.current = message.example

    def watch_current(self, example: Example | None) -> None:
        self.query_one(ConversationView).show(example)
        meta = self.query_one("#review-meta", Static)
        meta.update(meta_text(example) if example is not None else "")

    def reload(self) -> None:
        """Show the store as it is now: the rows, the highlighted candidate, the counts."""
        self.table.reload()
        self.count()

    def action_filter(self) -> None:
        self.origin = FILTERS[(FILTERS.index(self.origin) + 1) % len(FILTERS)]

    # --- accept, edit, reject, undo: one change at a time, in order --------------------------

    def apply(self, change: Change, failure: str) -> None:
        """Queue a change; it runs after the ones asked for before it."""
        self._changes.append((change, failure))
        self._next_change()

    def _next_change(self) -> None:
        if self._busy or not self._changes:
            return
        change, failure = self._changes.popleft()
        self._busy = True
        self.run_change(change, failure, frozenset(self._actions))

    @work(
        thread=True,
        exclusive=False,  # never drop a change the user asked for; they run one at a time
        exit_on_error=False,
        group="review-change",
        description="change the candidates",
    )
    def run_change(self, change: Change, failure: str, ours: frozenset[int]) -> None:
        try:
            outcome = change(self.store, ours)
        except (StoreError, sqlite3.Error) as exc:
            self.post_message(self.ChangeFailed(f"{failure}: {exc}"))
            return
        self.post_message(self.CandidatesChanged(outcome))

    @on(CandidatesChanged)
    def candidates_changed(self, message: CandidatesChanged) -> None:
        outcome = message.outcome
        if outcome.recorded is not None:
            self._actions.append(outcome.recorded)
        if outcome.undone in self._actions:
            self._actions.remove(outcome.undone)
        if outcome.note:
            severity = "warning" if outcome.refused else "information"
            self.notify(outcome.note, severity=severity, timeout=10 if outcome.refused else 5)
        self.reload()
        self._change_done()

    @on(ChangeFailed)
    def change_failed(self, message: ChangeFailed) -> None:
        self.notify(message.reason, severity="error", timeout=10)
        self._change_done()

    @on(Worker.StateChanged)
    def worker_failed(self, event: Worker.StateChanged) -> None:
        """A change that crashed (the app reports it) must not block the ones after it; a
        generation whose start or follower crashed is no longer followed (`g` works again)."""
        if event.state is not WorkerState.ERROR:
            return
        group = event.worker.group
        if group == "review-change":
            self._change_done()
        elif group in GENERATION_GROUPS:
            self._lost_generation(GENERATION_GROUPS[group], event.worker.error)

    def _lost_generation(self, what: str, error: BaseException | None) -> None:
        job_id, self.job_id = self.job_id, ""
        self._follow_cancel.set()
        self.job_label = ""
        self.query_one("#review-job").display = False
        running = f" Job {job_id} may still run: `workbench synth` shows it." if job_id else ""
        self.notify(
            f"Could not {what}: {error}.{running}",
            title="Generation",
            severity="error",
            timeout=15,
        )

    def _change_done(self) -> None:
        self._busy = False
        self._next_change()
        if self._close_pending and not self._busy:
            self._leave()

    def _row_id(self) -> int | None:
        row = self.table.current_row if self.shown else None
        if row is None:
            self.notify("No candidate highlighted.", severity="warning", timeout=3)
            return None
        return row.id

    def action_accept(self) -> None:
        if (example_id := self._row_id()) is not None:
            self.apply(partial(_accept, [example_id]), f"Could not accept #{example_id}")

    def action_reject(self) -> None:
        if (example_id := self._row_id()) is not None:
            self.apply(partial(_reject, [example_id]), f"Could not reject #{example_id}")

    def action_undo(self) -> None:
        self.apply(_undo_ours, "Could not undo")

    def action_edit(self) -> None:
        example_id = self._row_id()
        if example_id is None:
            return
        if self.current is None or self.current.id != example_id:
            self.notify("Still loading the candidate…", timeout=2)
            return
        self.app.push_screen(MessageEditorScreen(self.store, self.current), self._edited)

    def _edited(self, example: Example | None) -> None:
        if example is not None:
            self.notify(f"Saved #{example.id}; it still waits: a accepts it. u undoes.", timeout=5)
            failure = f"Could not look up the edit of #{example.id}"
            self.apply(partial(_remember_edit, example.id), failure)

    def action_accept_all(self) -> None:
        if not self.shown:
            self.notify("Nothing to accept: no candidate is shown.", timeout=3)
            return
        self.list_shown(self.origin)

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="review-accept-all",
        description="list the candidates shown",
    )
    def list_shown(self, origin: Origin | None) -> None:
        ids = tuple(self.store.ids(review.review_query(origin)))
        self.post_message(self.ShownListed(origin, ids))

    @on(ShownListed)
    def shown_listed(self, message: ShownListed) -> None:
        """Ask about exactly these ids: ones that arrive while the dialog is open stay."""
        ids = list(message.ids)
        if message.origin != self.origin or self._close_pending:
            return
        if not ids:
            self.notify("Nothing to accept: no candidate waits any more.", timeout=3)
            return
        noun = "candidate" if len(ids) == 1 else "candidates"
        question = (
            f"Accept all {len(ids):,} {noun} shown ({FILTER_NAMES[message.origin]})? They"
            " become normal examples. u undoes it as one step."
        )

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.apply(partial(_accept_listed, ids), "Could not accept them")

        self.app.push_screen(ConfirmScreen(question, "Accept all"), confirmed)

    def action_close(self) -> None:
        """Back to the Data screen, once every change asked for is saved (none is dropped)."""
        if self._busy or self._changes:
            pending = len(self._changes) + int(self._busy)
            self._close_pending = True
            self.notify(f"Saving {pending} change{'' if pending == 1 else 's'}…", timeout=3)
            return
        self._leave()

    def _leave(self) -> None:
        if self.job_id:
            self.notify("The generation goes on in the background; r comes back to it.")
        self.dismiss(None)

    # --- generating more ---------------------------------------------------------------------

    @property
    def key_env(self) -> str:
        return self.workspace.config.eval.api_key_env

    def action_generate(self) -> None:
        if self.job_id:
            self.notify("A generation is running already: s stops it.", timeout=4)
            return
        dialog = SynthDialog(self._last_request, self.key_env)
        self.app.push_screen(dialog, self._generate)

    def _generate(self, request: SynthRequest | None) -> None:
        if request is None:
            return
        self._last_request = request
        if not os.environ.get(self.key_env):
            self._refuse(
                f"{self.key_env} is not set. Quit (Ctrl+Q; running jobs go on), run"
                f" `export {self.key_env}=sk-ant-...` in this shell and start workbench again."
                " The key is read from the environment only, never written to disk."
            )
            return
        self.job_label = "Starting the generation…"
        self.job_done, self.job_total = 0, None
        self.query_one("#review-job").display = True
        self.start_generation(request)

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="review-synth-start",
        description="start the generation",
    )
    def start_generation(self, request: SynthRequest) -> None:
        from workbench.collect.synth import SynthSpec, select_seeds

        seeds = select_seeds(self.store, request.seed_tag, SEEDS)
        if not seeds:
            self.post_message(self.GenerationRefused(_no_seeds(request.seed_tag)))
            return
        spec = SynthSpec(
            seeds=[seed.messages for seed in seeds],
            count=request.count,
            topics=list(request.topics),
            guidance=request.guidance,
            model=request.model,
            near_duplicate_threshold=self.workspace.config.data.near_duplicate_threshold,
            api_key_env=self.key_env,
        )
        try:
            status = launch.start_synth(self.workspace, spec)
        except (OSError, launch.LaunchError) as exc:
            self.post_message(self.GenerationRefused(f"Could not start the generation: {exc}"))
            return
        self.post_message(self.GenerationStarted(status.id))

    @on(GenerationRefused)
    def generation_refused(self, message: GenerationRefused) -> None:
        self._refuse(message.reason)

    def _refuse(self, reason: str) -> None:
        self.job_label = ""
        self.query_one("#review-job").display = False
        self.notify(reason, title="Cannot generate", severity="error", timeout=15)

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="review-synth-find",
        description="look for a running generation",
    )
    def find_running_job(self) -> None:
        jobs = launch.running(self.workspace, "synth")
        if jobs:
            self.post_message(self.GenerationStarted(jobs[-1].id))

    @on(GenerationStarted)
    def generation_started(self, message: GenerationStarted) -> None:
        self._follow_cancel.set()
        self._follow_cancel = threading.Event()
        self.job_id = message.job_id
        self.job_label = f"Generating: job {message.job_id} starting… s stops"
        self.query_one("#review-job").display = True
        path = launch.job_dir(self.workspace, "synth", message.job_id)
        self.follow(path, self._follow_cancel)

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="review-follow",
        description="follow the generation",
    )
    def follow(self, path: Path, cancel: threading.Event) -> None:
        """The job's events (history, then live) as messages, until its process has ended."""
        tail, error = EventTail(path), ""
        while not cancel.is_set():
            events = tail.read_new()
            for raw in events:
                error = str(raw.get("message", "")) if raw.get("type") == "error" else error
                self._post_event(path.name, raw)
            status = observed_status(path)
            if not events and status is not None and not status.active:
                for raw in tail.read_new():
                    error = str(raw.get("message", "")) if raw.get("type") == "error" else error
                    self._post_event(path.name, raw)
                ended = self.GenerationEnded(path.name, status.state, status.message, error)
                self.post_message(ended)
                return
            time.sleep(POLL_S)

    def _post_event(self, job_id: str, raw: dict[str, object]) -> None:
        """One event of the job's log as the message the screen needs, if any."""
        kind = raw.get("type")
        if kind == "started":
            self._plan = (int(str(raw.get("count", 0))), int(str(raw.get("calls", 0))))
            count, planned = self._plan
            self.post_message(self.GenerationProgressed(job_id, 0, count, 0, planned, 0.0))
        elif kind == "call":
            count, planned = self._plan
            progressed = self.GenerationProgressed(
                job_id,
                int(str(raw.get("total_added", 0))),
                count,
                int(str(raw.get("index", 0))) + 1,
                planned or int(str(raw.get("calls", 0))),
                float(str(raw.get("total_cost_usd", 0.0))),
            )
            self.post_message(progressed)
            if int(str(raw.get("added", 0))):
                self.post_message(self.CandidatesArrived(job_id))

    @on(GenerationProgressed)
    def generation_progressed(self, message: GenerationProgressed) -> None:
        if message.job_id != self.job_id:
            return
        self.job_total = message.count or None
        self.job_done = min(message.added, message.count)
        self.job_label = progress_label(
            message.added, message.count, message.calls, message.planned, message.cost_usd
        )

    @on(CandidatesArrived)
    def candidates_arrived(self, message: CandidatesArrived) -> None:
        if message.job_id == self.job_id and not self._reload_pending:
            self._reload_pending = True
            self.set_timer(0.3, self._reload_arrived)

    def _reload_arrived(self) -> None:
        self._reload_pending = False
        self.reload()

    @on(GenerationEnded)
    def generation_ended(self, message: GenerationEnded) -> None:
        if message.job_id != self.job_id:
            return
        self.job_id = ""
        self.reload()
        if message.state == "failed":
            self.job_label = f"Generation failed: {message.error or message.reason}"
            self.notify(
                _failure_advice(message.error or message.reason, message.job_id),
                title="Generation failed",
                severity="error",
                timeout=20,
            )
            return
        self.query_one("#review-job").display = False
        self.job_label = ""
        self.notify(f"Generation {message.state}: {message.reason}.", timeout=8)

    def action_stop(self) -> None:
        if not self.job_id:
            self.notify("No generation is running.", timeout=3)
            return
        self.job_label = "Stopping: the calls in flight finish first…"
        self.stop_generation(self.job_id)

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="review-synth-stop",
        description="stop the generation",
    )
    def stop_generation(self, job_id: str) -> None:
        launch.stop(self.workspace, "synth", job_id)

    # --- palette -----------------------------------------------------------------------------

    def palette_commands(self) -> list[PaletteCommand]:
        """The review queue's commands, for the palette (Ctrl+P) while it is open."""
        return [
            PaletteCommand(f"review: {title}", help, callback)
            for title, help, callback in (
                ("accept candidate", "Accept the highlighted candidate (a)", self.action_accept),
                ("edit candidate", "Edit its messages (e)", self.action_edit),
                ("reject candidate", "Delete it; u undoes (d)", self.action_reject),
                ("accept all shown", "Accept every candidate shown (A)", self.action_accept_all),
                ("undo", "Undo this screen's last change (u)", self.action_undo),
                ("filter", "All / captured / synthetic (f)", self.action_filter),
                ("generate synthetic examples", "Claude writes more (g)", self.action_generate),
                ("stop generating", "Stop the running generation (s)", self.action_stop),
                ("back to data", "Close the review queue (Esc)", self.action_close),
            )
        ]

    # --- keys that make sense now ------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Hide what needs a candidate while none is shown, and Stop while nothing runs."""
        if action == "stop":
            return bool(self.job_id)
        if action in {"accept", "edit", "reject", "accept_all"}:
            return bool(self.shown)
        return True

    def watch_job_id(self) -> None:
        self.refresh_bindings()

    def watch_job_label(self, label: str) -> None:
        self.query_one("#review-job-label", Label).update(escape(label))


GENERATION_GROUPS = {
    "review-synth-start": "start the generation",
    "review-follow": "follow the generation",
}
"""The generation's workers, and what the user is told could not be done when one crashes."""


# --- changes: run in a thread by `ReviewScreen.run_change` ---------------------------------


def _action_of(store: ExampleStore, example_id: int) -> int | None:
    """The action a change just recorded on this example (found by the example, not as the
    newest action: another process may have written one since)."""
    found = store.last_action(example_id)
    return found[0] if found else None


def _accept(ids: list[int], store: ExampleStore, ours: frozenset[int]) -> Outcome:
    if not review.accept(store, ids):
        return Outcome("Nothing to accept: it was accepted already.")
    note = f"Accepted #{ids[0]}: a normal example now. u undoes."
    return Outcome(note, recorded=_action_of(store, ids[0]))


def _accept_listed(ids: list[int], store: ExampleStore, ours: frozenset[int]) -> Outcome:
    """Accept the ids the user was asked about that still wait (one rejected meanwhile stays
    rejected)."""
    waiting = set(store.ids(review.review_query(None)))
    still = [example_id for example_id in ids if example_id in waiting]
    changed = review.accept(store, still)
    note = f"Accepted {changed:,} example{'' if changed == 1 else 's'}. u undoes."
    return Outcome(note, recorded=_action_of(store, still[0]) if changed else None)


def _reject(ids: list[int], store: ExampleStore, ours: frozenset[int]) -> Outcome:
    if not review.reject(store, ids):
        return Outcome("Nothing to reject.")
    note = f"Rejected #{ids[0]} (deleted). u undoes."
    return Outcome(note, recorded=_action_of(store, ids[0]))


def _remember_edit(example_id: int, store: ExampleStore, ours: frozenset[int]) -> Outcome:
    """The editor saved the example itself: note its action as ours, so u undoes the edit."""
    found = store.last_action(example_id)
    mine = found is not None and found[1] == f"edit example {example_id}"
    return Outcome("", recorded=found[0] if found and mine else None)


def _undo_ours(store: ExampleStore, ours: frozenset[int]) -> Outcome:
    """Undo the newest action only if this screen recorded it: a capture proxy or synth job
    may have written a newer one (its candidates must not vanish for an `a` then `u`)."""
    newest = store.last_action()
    if newest is None:
        return Outcome("Nothing to undo.")
    action, label = newest
    if action not in ours:
        return Outcome(_not_ours(label), refused=True)
    try:
        return Outcome(f"Undone: {store.undo(expected=action)}.", undone=action)
    except StoreError:  # another process wrote an action since `last_action`
        newer = store.last_action()
        return Outcome(_not_ours(newer[1] if newer else "?"), refused=True)


def _not_ours(label: str) -> str:
    return (
        f"Not undone: the newest change is '{label}', from another job or screen; undo it on"
        " the Data screen (u)."
    )


def _no_seeds(tag: str) -> str:
    return (
        f"No seed examples: tag a few good examples `{tag}` on the Data screen (t), or accept"
        " or import some first. Claude writes new ones in their image."
    )


def _failure_advice(error: str, job_id: str) -> str:
    """What went wrong and what to do next (answers already paid for are not paid again)."""
    return (
        f"{error}\nFix it, then `workbench synth --resume {job_id}` continues where it"
        " stopped, without paying twice."
    )
