"""The Eval screen: the fine-tuned model against the old pipeline, judged by Claude.

An eval is a detached job (`workbench.evaluate.launch`): the screen creates and starts it, then
follows its event log in a thread worker (history first, then live) and reads its report from
the eval's files. Closing the app or losing SSH stops nothing; reopening shows it live again.
The judge's API key is read from the environment by the job and never passes through here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import DataTable, Input, ProgressBar, Static, TabbedContent, TabPane
from textual.worker import Worker, WorkerState

from screens.base import PaletteCommand, WorkbenchScreen
from screens.data_dialogs import ConfirmScreen
from screens.eval_dialogs import NewEvalScreen
from screens.eval_item import EvalItemScreen
from screens.eval_text import (
    ACTIVE_STATES,
    FILTER_TITLES,
    FILTERS,
    RESUMABLE_STATES,
    ItemFilter,
    filter_items,
)
from screens.widgets.eval_costs import EvalCostPanel
from screens.widgets.eval_history import EvalHistoryTable
from screens.widgets.eval_items import EvalItemsTable
from screens.widgets.eval_summary import EvalSummaryPanel
from workbench.config import ConfigError, EvalSection, load_config
from workbench.workspace import Workspace

if TYPE_CHECKING:
    from workbench.evaluate.events import EvalEvent, Finished, ItemJudged, Progress
    from workbench.evaluate.report import EvalReport, EvalSummary
    from workbench.jobs import JobStatus

RELOAD_S = 0.5
"""While an eval runs, its report is read again at most this often."""


@dataclass(frozen=True)
class Readiness:
    """What an eval needs, for the empty screen to say what is missing."""

    models: int
    eval_split: str
    eval_examples: int
    key_problem: str


def key_problem(workspace: Workspace) -> str:
    """What to set before an eval can run ('' when the judge's API key is in the environment)."""
    from workbench.evaluate.launch import key_problem as problem

    return problem(workspace.config) or ""


def check_readiness(workspace: Workspace) -> Readiness:
    """Exported models, held-out examples and the API key (runs in a thread)."""
    from screens.eval_dialogs import survey

    found = survey(workspace)
    return Readiness(
        len(found.models), found.eval_split, found.eval_examples, key_problem(workspace)
    )


def readiness_text(ready: Readiness | None, key_env: str) -> Text:
    """The empty screen: what an eval is, a checklist of what it needs, and the key to press."""
    text = Text.assemble(
        ("No evals yet.\n\n", "bold"),
        "An eval runs your fine-tuned model on held-out inputs, puts its answers beside the old\n"
        "pipeline's, and lets Claude judge each pair in both orders. It needs:\n\n",
    )
    if ready is None:
        text.append("  checking…\n", "dim")
        return text
    checks = [
        (
            ready.models > 0,
            f"an exported model: {ready.models} GGUF file(s) in exports/",
            "an exported model: export one (`workbench export RUN_ID`), or type a .gguf path",
        ),
        (
            ready.eval_examples > 0,
            f"held-out inputs: {ready.eval_examples:,} examples in the {ready.eval_split} split",
            "held-out inputs: split the data (Data screen, or `workbench data split --test 0.1`)",
        ),
        (
            not ready.key_problem,
            f"the judge's API key: {key_env} is set",
            f"the judge's API key: `export {key_env}=...` before starting workbench",
        ),
    ]
    for ok, good, bad in checks:
        text.append("  ✓ " if ok else "  ✗ ", "bold green" if ok else "bold red")
        text.append((good if ok else bad) + "\n")
    text.append("\nPress ")
    text.append("n", "bold")
    text.append(" to configure and start an eval.")
    return text


def current_pricing(workspace: Workspace) -> EvalSection:
    """`[eval]` as the config file says now (prices may have changed since the app started)."""
    try:
        return load_config(workspace.config_path).eval
    except ConfigError:
        return workspace.config.eval


def default_choice(evals: tuple[EvalSummary, ...]) -> str:
    """The eval to show first: a running one, else the newest."""
    running = [s.id for s in evals if s.state in ACTIVE_STATES]
    if running:
        return running[-1]
    return evals[-1].id if evals else ""


class EmptyEvals(Static, can_focus=True):
    """What an eval needs, when the workspace has none yet."""

    HELP = """\
No evals in this workspace yet. An eval needs an exported GGUF (Train screen, or
`workbench export RUN_ID`), a test or validation split (Data screen), and the judge's API key
in the environment. Press **n** to configure and start one.
"""


class EvalScreen(WorkbenchScreen):
    MODE = "eval"
    AUTO_FOCUS = "#eval-items"
    HELP = """\
## Eval
Run the fine-tuned model on held-out inputs, put its answers beside the old pipeline's, and
let Claude judge each pair in both orders. Reports wins, ties and losses with a confidence
interval, and cost and latency against the old pipeline.

- **n** configures and starts an eval (it runs in the background), **s** stops it, **r**
  resumes a stopped one (only unfinished and failed items are redone; cached verdicts are free)
- the **Evals** table lists past evals to compare; **↑/↓** there shows another one
- **f** cycles the items shown: all, losses, disagreements, errors; **Enter** shows one side by
  side, where **s** sends a loss to the training data (**e**: with an answer you write)
- **c** shows cost and latency per request and per month, **m** sets the monthly volume
- **x** exports the report as Markdown and JSONL into the eval's folder

The judge's API key is read from the environment only and never written anywhere.
"""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "new", "New eval", id="eval.new", tooltip="Configure and start an eval"),
        Binding(
            "s",
            "stop",
            "Stop",
            id="eval.stop",
            tooltip="Stop the running eval (it can be resumed)",
        ),
        Binding(
            "r",
            "resume",
            "Resume",
            id="eval.resume",
            tooltip="Finish a stopped eval, retrying failed items",
        ),
        Binding(
            "f",
            "cycle_filter",
            "Filter",
            id="eval.filter",
            tooltip="Show all items, losses only, disagreements or errors",
        ),
        Binding(
            "c",
            "show_tab('costs')",
            "Costs",
            id="eval.costs",
            tooltip="Cost and latency per request and per month",
        ),
        Binding(
            "i",
            "show_tab('items')",
            "Items",
            id="eval.items",
            show=False,
            tooltip="The items of the eval",
        ),
        Binding(
            "m",
            "monthly",
            "Volume",
            id="eval.monthly",
            show=False,
            tooltip="Type the monthly request volume for the cost projection",
        ),
        Binding(
            "x",
            "export",
            "Export",
            id="eval.export",
            tooltip="Write the report as Markdown and JSONL into the eval's folder",
        ),
        Binding(
            "h",
            "focus_history",
            "Evals",
            id="eval.history",
            show=False,
            tooltip="Go to the list of past evals",
        ),
    ]

    evals: reactive[tuple[EvalSummary, ...]] = reactive((), init=False, always_update=True)
    """Every eval of the workspace, oldest first."""
    selected: reactive[str] = reactive("", init=False)
    """The id of the eval shown."""
    report: reactive[EvalReport | None] = reactive(None, init=False)
    """The selected eval's report (None until read)."""
    live: reactive[Progress | None] = reactive(None)
    """The running eval's latest progress (None: not following one)."""
    phase: reactive[str] = reactive("")
    done: reactive[float] = reactive(0.0)
    total: reactive[float | None] = reactive(None)
    item_filter: reactive[ItemFilter] = reactive("all", init=False)
    monthly: reactive[int] = reactive(0)
    """Requests a month for the projected costs."""
    missing_key: reactive[str] = reactive("", init=False)
    """What to set before an eval can run ('' when the key is there)."""
    readiness: reactive[Readiness | None] = reactive(None, init=False)

    @dataclass
    class EvalsListed(Message):
        evals: tuple[EvalSummary, ...]
        select: str
        """The eval to show ('' keeps the current one)."""
        readiness: Readiness

    @dataclass
    class ReportLoaded(Message):
        report: EvalReport

    @dataclass
    class ReportUnreadable(Message):
        eval_id: str
        reason: str

    @dataclass
    class ProgressReported(Message):
        eval_id: str
        progress: Progress

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, EvalScreen.ProgressReported)

    @dataclass
    class PhaseChanged(Message):
        eval_id: str
        message: str

    @dataclass
    class ItemFinished(Message):
        eval_id: str
        event: ItemJudged

    @dataclass
    class EvalWarned(Message):
        eval_id: str
        message: str

    @dataclass
    class EvalEnded(Message):
        eval_id: str
        final: Finished

    @dataclass
    class EvalResumed(Message):
        eval_id: str

    @dataclass
    class StopRequested(Message):
        eval_id: str
        stopping: bool
        """False: the eval was not running any more."""

    @dataclass
    class ReportExported(Message):
        markdown: Path
        jsonl: Path
        monthly: int

    @dataclass
    class ActionFailed(Message):
        reason: str

    def __init__(self) -> None:
        super().__init__()
        self.following = ""
        """The id of the eval whose events are being followed ('' when none)."""
        self._follow_cancel = threading.Event()
        self._reload_pending = False
        self._running_evals: frozenset[str] = frozenset()
        self._wanted = ""
        """An eval to show as soon as a listing holds it (one just started here)."""
        self._announced: set[str] = set()
        """Evals whose end was announced (a notification) since they were started here."""
        self._sent: dict[str, dict[int, int]] = {}
        """Items sent to the data in this session, per eval: index -> example id."""

    @property
    def workspace(self) -> Workspace:
        return self.workbench.workspace

    # --- layout ----------------------------------------------------------------------------

    def compose_body(self) -> ComposeResult:
        with Vertical(id="eval-body"):
            yield Static("", id="eval-key-banner")
            yield EmptyEvals("", id="eval-empty")
            yield EvalHistoryTable(id="eval-history")
            yield EvalSummaryPanel(id="eval-summary")
            with TabbedContent(id="eval-tabs"):
                with TabPane("Items", id="eval-tab-items"):
                    yield Static("", id="eval-filter-line")
                    yield EvalItemsTable(id="eval-items")
                with TabPane("Cost & latency", id="eval-tab-costs"):
                    yield EvalCostPanel(id="eval-costs")

    def on_mount(self) -> None:
        config = self.workspace.config
        self.missing_key = key_problem(self.workspace)
        self.monthly = config.eval.monthly_requests
        self.query_one("#eval-monthly", Input).value = str(self.monthly)
        bar = self.query_one("#eval-progress", ProgressBar)
        bar.data_bind(progress=EvalScreen.done, total=EvalScreen.total)
        self.query_one(EvalCostPanel).data_bind(monthly=EvalScreen.monthly)
        self.query_one(EvalSummaryPanel).data_bind(live=EvalScreen.live, phase=EvalScreen.phase)
        self.watch(self.app, "running_jobs", self._jobs_changed, init=False)
        self._show_empty(False)
        self.refresh_evals(self.workspace, "")

    def on_unmount(self) -> None:
        self._follow_cancel.set()

    def watch_missing_key(self, problem: str) -> None:
        banner = self.query_one("#eval-key-banner", Static)
        banner.display = bool(problem)
        banner.update(
            Text.assemble(
                ("⚠ To run evals, ", "bold"),
                problem,
                ". Then start workbench again; past reports open without it.",
            )
        )

    # --- the list of evals -----------------------------------------------------------------

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="eval-list",
        description="list the evals",
    )
    def refresh_evals(self, workspace: Workspace, select: str) -> None:
        """List the evals again; `select` is shown once listed (a newer listing started
        meanwhile keeps that wish: `_wanted`)."""
        from workbench.evaluate.report import list_evals

        evals = tuple(list_evals(workspace.evals_dir))
        self.post_message(self.EvalsListed(evals, select, check_readiness(workspace)))

    @on(EvalsListed)
    def evals_listed(self, message: EvalsListed) -> None:
        self.readiness = message.readiness
        self.evals = message.evals
        ids = [summary.id for summary in message.evals]
        wanted = message.select or self._wanted
        if wanted in ids:
            chosen, self._wanted = wanted, ""
        elif self.selected in ids:
            chosen = self.selected
        else:
            chosen = default_choice(message.evals)
        if chosen == self.selected:
            self._open(chosen)  # the same eval, perhaps in another state: read it again
        self.selected = chosen

    def watch_evals(self, evals: tuple[EvalSummary, ...]) -> None:
        self.query_one(EvalHistoryTable).show(evals, self.selected)
        self._show_empty(not evals)

    def watch_readiness(self, ready: Readiness | None) -> None:
        key_env = self.workspace.config.eval.api_key_env
        self.query_one(EmptyEvals).update(readiness_text(ready, key_env))

    def _show_empty(self, empty: bool) -> None:
        self.query_one(EmptyEvals).display = empty
        for part in (EvalHistoryTable, EvalSummaryPanel, TabbedContent):
            self.query_one(part).display = not empty
        if empty:
            self.query_one(EmptyEvals).focus()
        elif self.focused is None or isinstance(self.focused, EmptyEvals):
            self.query_one(EvalItemsTable).focus()

    def _jobs_changed(self, jobs: tuple[JobStatus, ...]) -> None:
        """An eval started or ended outside this screen (the CLI, another app): list again."""
        running = frozenset(job.id for job in jobs if job.kind == "eval")
        if running != self._running_evals:
            self._running_evals = running
            self.refresh_evals(self.workspace, "")

    @on(DataTable.RowHighlighted, "#eval-history")
    def history_moved(self, event: DataTable.RowHighlighted) -> None:
        """Show the eval under the cursor (read when handled: the table may have been refilled
        since the event)."""
        eval_id = self.query_one(EvalHistoryTable).highlighted_id
        if eval_id:
            self.selected = eval_id

    @on(DataTable.RowSelected, "#eval-history")
    def history_chosen(self) -> None:
        self.query_one(EvalItemsTable).focus()

    def watch_selected(self, eval_id: str) -> None:
        table = self.query_one(EvalHistoryTable)
        if eval_id in table.ids and table.highlighted_id != eval_id:
            table.move_cursor(row=table.ids.index(eval_id), animate=False)
        if self.report is not None and self.report.eval_id != eval_id:
            self.report = None
        self._open(eval_id)

    def summary_of(self, eval_id: str) -> EvalSummary | None:
        """The freshest summary of an eval: its report's, else the list's."""
        if self.report is not None and self.report.eval_id == eval_id:
            return self.report.summary
        return next((s for s in self.evals if s.id == eval_id), None)

    def _open(self, eval_id: str) -> None:
        """Read the eval's report, and follow it live when it runs."""
        if not eval_id:
            return
        self.read_report(self.workspace, eval_id, self.workspace.evals_dir / eval_id)
        summary = next((s for s in self.evals if s.id == eval_id), None)
        if summary is not None and summary.state in ACTIVE_STATES:
            self._follow(eval_id)
        elif self.following and self.following != eval_id:
            self._stop_following()

    # --- the report --------------------------------------------------------------------------

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="eval-report",
        description="read the eval's report",
    )
    def read_report(self, workspace: Workspace, eval_id: str, eval_dir: Path) -> None:
        from workbench.evaluate.report import load_report
        from workbench.evaluate.spec import EvalError

        try:
            report = load_report(eval_dir, current_pricing(workspace))
        except (EvalError, OSError, ValueError, TypeError) as exc:
            self.post_message(self.ReportUnreadable(eval_id, str(exc)))
            return
        self.post_message(self.ReportLoaded(report))

    @on(ReportLoaded)
    def report_loaded(self, message: ReportLoaded) -> None:
        if message.report.eval_id == self.selected:
            self.report = message.report

    @on(ReportUnreadable)
    def report_unreadable(self, message: ReportUnreadable) -> None:
        if message.eval_id == self.selected:
            self.report = None
            self.notify(
                f"Cannot read eval {message.eval_id}: {message.reason}",
                severity="error",
                timeout=10,
            )

    def watch_report(self, report: EvalReport | None) -> None:
        self.query_one(EvalSummaryPanel).summary = report.summary if report else None
        self.query_one(EvalCostPanel).rows = tuple(report.costs) if report else ()
        self._show_items()
        self.refresh_bindings()

    def watch_item_filter(self) -> None:
        self._show_items()

    def _show_items(self) -> None:
        report = self.report
        items = report.items if report else []
        shown = filter_items(items, self.item_filter)
        self.query_one(EvalItemsTable).show(shown)
        line = self.query_one("#eval-filter-line", Static)
        if report is None:
            line.update(Text("Reading the report…" if self.selected else "", "dim"))
            return
        line.update(
            Text.assemble(
                ("Showing ", "dim"),
                (FILTER_TITLES[self.item_filter], "bold"),
                (f": {len(shown):,} of {len(items):,} items · f changes it · ", "dim"),
                ("Enter shows one side by side", "dim"),
            )
        )

    # --- following a running eval ------------------------------------------------------------

    def _follow(self, eval_id: str) -> None:
        if self.following == eval_id:
            return
        self._stop_following()
        self.following = eval_id
        self._follow_cancel = threading.Event()
        self.follow(self.workspace.evals_dir / eval_id, self._follow_cancel)

    def _stop_following(self) -> None:
        self._follow_cancel.set()
        self.following = ""
        self.live = None
        self.phase = ""
        self.done, self.total = 0, None

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="eval-follow",
        description="follow the eval",
    )
    def follow(self, eval_dir: Path, cancel: threading.Event) -> None:
        """The eval's events (history, then live) as messages, until it ends or `cancel`.

        The log of a resumed eval holds the `Finished` of each earlier attempt: only the one
        that ends the stream ends the eval."""
        from workbench.evaluate.events import Finished
        from workbench.evaluate.launch import follow_eval

        eval_id = eval_dir.name
        final: Finished | None = None
        for event in follow_eval(eval_dir, cancel):
            final = event if isinstance(event, Finished) else None
            message = self._message_for(eval_id, event)
            if message is not None and not cancel.is_set():
                self.post_message(message)
        if final is not None and not cancel.is_set():
            self.post_message(self.EvalEnded(eval_id, final))

    def _message_for(self, eval_id: str, event: EvalEvent) -> Message | None:
        from workbench.evaluate.events import EvalWarning, ItemJudged, Phase, Progress

        if isinstance(event, Progress):
            return self.ProgressReported(eval_id, event)
        if isinstance(event, Phase):
            return self.PhaseChanged(eval_id, event.message)
        if isinstance(event, ItemJudged):
            return self.ItemFinished(eval_id, event)
        if isinstance(event, EvalWarning):
            return self.EvalWarned(eval_id, event.message)
        return None

    @on(ProgressReported)
    def progress_reported(self, message: ProgressReported) -> None:
        if message.eval_id == self.following:
            self.live = message.progress
            self.done = message.progress.done
            self.total = message.progress.total or None

    @on(PhaseChanged)
    def phase_changed(self, message: PhaseChanged) -> None:
        if message.eval_id == self.following:
            self.phase = message.message

    @on(ItemFinished)
    def item_finished(self, message: ItemFinished) -> None:
        if message.eval_id == self.following and not self._reload_pending:
            self._reload_pending = True
            self.set_timer(RELOAD_S, self._reload_selected)

    def _reload_selected(self) -> None:
        self._reload_pending = False
        if self.selected:
            self.read_report(
                self.workspace, self.selected, self.workspace.evals_dir / self.selected
            )

    @on(EvalWarned)
    def eval_warned(self, message: EvalWarned) -> None:
        if message.eval_id == self.following:
            self.notify(message.message, title=f"Eval {message.eval_id}", severity="warning")

    @on(EvalEnded)
    def eval_ended(self, message: EvalEnded) -> None:
        if message.eval_id != self.following:
            return
        self._stop_following()
        self.refresh_evals(self.workspace, message.eval_id)
        if message.eval_id in self._announced:
            return  # followed again from a list read before it ended: said already
        self._announced.add(message.eval_id)
        final = message.final
        if final.state == "finished":
            self.notify(f"Eval {message.eval_id} finished: {final.reason}.", timeout=8)
        elif final.state == "stopped":
            self.notify(
                f"Eval {message.eval_id} stopped ({final.done}/{final.total} done): r resumes it.",
                severity="warning",
                timeout=8,
            )
        else:
            self.notify(
                f"Eval {message.eval_id} failed: {final.reason}", severity="error", timeout=15
            )

    # --- starting, stopping, resuming --------------------------------------------------------

    def action_new(self) -> None:
        self.missing_key = key_problem(self.workspace)
        if self.missing_key:
            self.notify(f"To run an eval, {self.missing_key}.", severity="error", timeout=10)
            return
        self.app.push_screen(NewEvalScreen(self.workspace), self._launched)

    def _launched(self, eval_id: str | None) -> None:
        if eval_id:
            self.notify(
                f"Eval {eval_id} started in the background: quitting the app stops nothing.",
                timeout=6,
            )
            self._announced.discard(eval_id)
            self._wanted = eval_id
            self.refresh_evals(self.workspace, eval_id)

    def action_stop(self) -> None:
        summary = self.summary_of(self.selected)
        if summary is None or summary.state not in ACTIVE_STATES:
            return
        question = (
            f"Stop eval {summary.id}? It finishes the answer in progress; r resumes it later"
            " without paying twice for any verdict."
        )
        eval_dir = self.workspace.evals_dir / summary.id
        self.app.push_screen(
            ConfirmScreen(question, "Stop"), partial(self._stop_confirmed, eval_dir)
        )

    def _stop_confirmed(self, eval_dir: Path, yes: bool | None) -> None:
        if yes:
            self.stop_eval(eval_dir)

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="eval-stop",
        description="stop the eval",
    )
    def stop_eval(self, eval_dir: Path) -> None:
        from workbench.evaluate.launch import stop_eval

        self.post_message(self.StopRequested(eval_dir.name, stop_eval(eval_dir)))

    @on(StopRequested)
    def stop_requested(self, message: StopRequested) -> None:
        if message.stopping:
            self.notify(f"Stopping eval {message.eval_id}…", timeout=4)
        else:
            self.notify(f"Eval {message.eval_id} is not running any more.", timeout=4)
            self.refresh_evals(self.workspace, message.eval_id)

    def action_resume(self) -> None:
        summary = self.summary_of(self.selected)
        if summary is None or not _resumable(summary):
            return
        self.missing_key = key_problem(self.workspace)
        if self.missing_key:
            self.notify(f"To resume the eval, {self.missing_key}.", severity="error", timeout=10)
            return
        self.resume_eval(self.workspace, summary.id)

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="eval-resume",
        description="resume the eval",
    )
    def resume_eval(self, workspace: Workspace, eval_id: str) -> None:
        from workbench.evaluate.launch import resume_eval
        from workbench.evaluate.spec import EvalError

        try:
            resume_eval(workspace, eval_id)
        except (EvalError, OSError) as exc:
            self.post_message(self.ActionFailed(f"Could not resume eval {eval_id}: {exc}"))
            return
        self.post_message(self.EvalResumed(eval_id))

    @on(EvalResumed)
    def eval_resumed(self, message: EvalResumed) -> None:
        self.notify(f"Eval {message.eval_id} resumed in the background.", timeout=5)
        self._announced.discard(message.eval_id)
        self._wanted = message.eval_id
        self.refresh_evals(self.workspace, message.eval_id)

    @on(ActionFailed)
    def action_failed(self, message: ActionFailed) -> None:
        self.notify(message.reason, severity="error", timeout=10)

    @on(Worker.StateChanged)
    def worker_failed(self, event: Worker.StateChanged) -> None:
        """A follower that crashed (the app reports why) no longer follows anything."""
        if event.state is WorkerState.ERROR and event.worker.group == "eval-follow":
            self._stop_following()

    # --- items, costs, export ----------------------------------------------------------------

    def action_cycle_filter(self) -> None:
        self.item_filter = FILTERS[(FILTERS.index(self.item_filter) + 1) % len(FILTERS)]
        self.action_show_tab("items")

    def set_filter(self, chosen: ItemFilter) -> None:
        self.item_filter = chosen
        self.action_show_tab("items")

    @on(DataTable.RowSelected, "#eval-items")
    def item_chosen(self) -> None:
        self.action_open_item()

    def action_open_item(self) -> None:
        table = self.query_one(EvalItemsTable)
        report = self.report
        if report is None or table.current is None:
            self.notify("No item highlighted.", severity="warning", timeout=3)
            return
        screen = EvalItemScreen(
            self.workspace,
            report.eval_dir,
            report.spec,
            table.entries,
            table.cursor_row,
            FILTER_TITLES[self.item_filter].split(" (")[0],
            self._sent.setdefault(report.eval_id, {}),
        )
        self.app.push_screen(screen)

    def action_show_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = f"eval-tab-{tab}"
        if tab == "items":
            self.query_one(EvalItemsTable).focus()

    def action_monthly(self) -> None:
        self.action_show_tab("costs")
        self.query_one("#eval-monthly", Input).focus()

    @on(Input.Changed, "#eval-monthly")
    def monthly_typed(self, event: Input.Changed) -> None:
        text = event.value.replace(",", "").replace("_", "").strip()
        if text.isdigit():
            self.monthly = int(text)

    @on(Input.Submitted, "#eval-monthly")
    def monthly_submitted(self) -> None:
        self.query_one("#eval-tabs Tabs").focus()

    def action_focus_history(self) -> None:
        self.query_one(EvalHistoryTable).focus()

    def action_export(self) -> None:
        if self.report is not None:
            self.export_report(self.workspace, self.report.eval_dir, self.monthly)

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="eval-export",
        description="export the report",
    )
    def export_report(self, workspace: Workspace, eval_dir: Path, monthly: int) -> None:
        from workbench.evaluate.report import load_report, write_jsonl, write_markdown
        from workbench.evaluate.spec import EvalError

        try:
            report = load_report(eval_dir, current_pricing(workspace), monthly)
            markdown = write_markdown(report, eval_dir / "report.md")
            jsonl = write_jsonl(report, eval_dir / "report.jsonl")
        except (EvalError, OSError) as exc:
            self.post_message(self.ActionFailed(f"Could not export the report: {exc}"))
            return
        self.post_message(self.ReportExported(markdown, jsonl, monthly))

    @on(ReportExported)
    def report_exported(self, message: ReportExported) -> None:
        folder = _relative(message.markdown.parent, self.workspace.root)
        self.notify(
            f"Wrote {message.markdown.name} and {message.jsonl.name} in {folder}/ "
            f"(costs at {message.monthly:,} requests a month).",
            timeout=8,
        )

    # --- keys that make sense now ------------------------------------------------------------

    REPORT_ACTIONS: ClassVar[frozenset[str]] = frozenset(
        {"cycle_filter", "show_tab", "monthly", "export", "open_item"}
    )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        summary = self.summary_of(self.selected)
        if action == "stop":
            return summary is not None and summary.state in ACTIVE_STATES
        if action == "resume":
            return summary is not None and _resumable(summary)
        if action in self.REPORT_ACTIONS:
            return self.report is not None
        return True

    # --- palette ----------------------------------------------------------------------------

    def palette_commands(self) -> list[PaletteCommand]:
        def command(title: str, help: str, callback: Callable[[], object]) -> PaletteCommand:
            return PaletteCommand(f"eval: {title}", help, callback)

        return [
            command("new eval", "Configure and start an eval (n)", self.action_new),
            command("stop eval", "Stop the running eval; r resumes it (s)", self.action_stop),
            command(
                "resume eval", "Finish a stopped eval, retrying failures (r)", self.action_resume
            ),
            command("show all items", "Every item of the eval", partial(self.set_filter, "all")),
            command(
                "show losses only",
                "The items the old pipeline won",
                partial(self.set_filter, "losses"),
            ),
            command(
                "show disagreements",
                "Items whose two judge orders differ (position bias)",
                partial(self.set_filter, "disagreements"),
            ),
            command(
                "show errors", "Items that failed, with why", partial(self.set_filter, "errors")
            ),
            command(
                "side by side",
                "The highlighted item: input, both answers, both verdicts (Enter)",
                self.action_open_item,
            ),
            command(
                "cost and latency",
                "Per request and per month, old pipeline vs fine-tuned (c)",
                partial(self.action_show_tab, "costs"),
            ),
            command(
                "set monthly volume",
                "Requests a month for the projected costs (m)",
                self.action_monthly,
            ),
            command(
                "export report",
                "Markdown and JSONL into the eval's folder (x)",
                self.action_export,
            ),
            command(
                "refresh list",
                "Read the list of evals again",
                partial(self.refresh_evals, self.workspace, ""),
            ),
        ]


def _resumable(summary: EvalSummary) -> bool:
    """Stopped, failed, lost or never started; or finished with items failed or left."""
    if summary.state in RESUMABLE_STATES:
        return True
    return summary.state == "finished" and bool(summary.errors or summary.pending)


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
