"""The Train screen: start QLoRA runs, watch them live, compare them, export them.

Runs are detached processes writing `runs/<id>/events.jsonl`; this screen only reads those
files (a thread worker tails the selected run's log every half second), so it shows a run that
started before the app opened, history included, and closing the app stops nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from rich.markup import escape
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import DataTable
from textual.worker import Worker, WorkerState, get_current_worker

from screens.base import PaletteCommand, WorkbenchScreen
from screens.data_dialogs import ConfirmScreen
from screens.train_export import CheckpointChoice, ExportChoice, ExportScreen, checkpoint_choices
from screens.train_form import TrainForm
from screens.train_sweep import SweepScreen
from screens.widgets.line_chart import Series
from screens.widgets.train_live import RunLive, log_lines, overlay
from screens.widgets.train_runs import RunsTable
from workbench.export.events import ExportProgress
from workbench.jobs import EventTail, observed_status
from workbench.train.events import RunHistory
from workbench.train.runs import (
    ReadMark,
    RunCache,
    RunRefused,
    RunSummary,
    resume_run,
    start_run,
    stop_run,
)

POLL_S = 0.5
LIST_EVERY_S = 2.0
LOG_ON_PICK = 120
"""Log lines drawn when a run is picked (the log shows a dozen; more scroll back)."""


def _binding(key: str, action: str, label: str, tooltip: str, show: bool = True) -> Binding:
    return Binding(key, action, label, id=f"train.{action}", tooltip=tooltip, show=show)


def export_text(export_id: str, progress: ExportProgress) -> str:
    """`export 2026…: quantize 2/3 · 45% of the stage · 60% in all`, or how it ended."""
    if (done := progress.finished) is not None:
        errors = "; ".join(error.message for error in progress.errors)
        if done.state == "finished":
            return f"[green]export {export_id} finished[/] in {escape(kept_files(progress))}"
        return f"[red]export {export_id} {done.state}[/]: {escape(errors or done.reason)}"
    if progress.stage is None:
        return f"export {export_id}: starting…"
    stage = progress.stage
    return (
        f"export {export_id}: {escape(stage.message)} ({stage.index}/{stage.total}) · "
        f"{progress.fraction:.0%} of the stage · {progress.overall:.0%} in all"
    )


def kept_files(progress: ExportProgress) -> str:
    """`exports/ID/: a.gguf, b.gguf`: the GGUFs asked for (an f16 written only to quantize from
    is deleted at the end), with their folder."""
    wanted = progress.started.quants if progress.started is not None else None
    paths = [Path(f.path) for f in progress.files if wanted is None or f.quant in wanted]
    if not paths:
        return "(no files)"
    folder = paths[0].parent
    shown = f"{folder.parent.name}/{folder.name}/"
    return f"{shown}: " + ", ".join(path.name for path in paths)


def ended_early(export_dir: Path) -> str | None:
    """How an export ended, when its process has gone (killed before it logged `finished`)."""
    status = observed_status(export_dir)
    if status is None or status.active:
        return None
    return f"[red]export {export_dir.name} {status.state}[/]: {escape(status.message)}"


def latest_sweep(root: Path) -> Path | None:
    """The newest sweep directory of the workspace, if any."""
    base = root / "sweeps"
    sweeps = sorted(path for path in base.iterdir() if path.is_dir()) if base.is_dir() else []
    return sweeps[-1] if sweeps else None


class TrainScreen(WorkbenchScreen):
    MODE = "train"
    AUTO_FOCUS = "#train-runs"
    HELP = """\
## Train
Fine-tune the base model on the training split with QLoRA. Runs keep going in the background
when you close the app or lose SSH; reopening shows them live with their whole history.

- **n** opens the settings of a new run (each explained); **Ctrl+S** there starts it
- **s** stops the highlighted run (a checkpoint is saved), **r** resumes it
- **e** exports it to GGUF for the Chat and Eval screens: pick best/ or a saved checkpoint and
  the quantizations (f16, q8_0, q4_k_m); **x** stops that export
- **space** marks runs, **o** overlays the marked runs' curves (again: back to one run)
- **w** shows the latest sweep ranked by best eval loss; **k** there keeps the best
"""

    BINDINGS: ClassVar[list[BindingType]] = [
        _binding("n", "new_run", "New run", "Edit the settings and start a new run"),
        _binding("s", "stop_run", "Stop", "Stop the highlighted run (it can be resumed)"),
        _binding("r", "resume_run", "Resume", "Resume the highlighted stopped or failed run"),
        _binding("e", "export_run", "Export", "Export the highlighted run to GGUF"),
        _binding("x", "stop_export", "Stop export", "Stop the export started here", False),
        _binding("space", "mark", "Mark", "Mark or unmark the run for comparison", False),
        _binding("o", "overlay", "Compare", "Overlay the marked runs' curves"),
        _binding("w", "sweep", "Sweep", "The latest sweep ranked by best eval loss"),
    ]

    @dataclass
    class RunsListed(Message):
        runs: list[RunSummary]

    @dataclass
    class RunFollowed(Message):
        run_id: str
        history: RunHistory
        lines: list[Text]
        first: bool
        """The lines replace the log (the run was never shown, or its log was rewritten)."""
        follower: int
        """Which follower posted it: only the latest one's messages are shown."""

    @dataclass
    class RunChanged(Message):
        run_dir: Path
        note: str

    @dataclass
    class ActionRefused(Message):
        problems: list[str]

    @dataclass
    class ExportProgressed(Message):
        text: str

    @dataclass
    class CheckpointsListed(Message):
        run_dir: Path
        choices: list[CheckpointChoice]

    @dataclass
    class RunsCompared(Message):
        series: tuple[Series, ...]

    @dataclass
    class SweepLoaded(Message):
        sweep_dir: Path
        runs: list[RunSummary]
        kept: str

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.runs: dict[str, RunSummary] = {}
        self.selected: str | None = None
        self.marked: set[str] = set()
        self.last_overrides: dict[str, Any] = {}
        self.cache = RunCache()
        """Every run's folded history: a refresh or a pick reads only new events."""
        self.export_dir: Path | None = None
        self.following = 0
        """The number of the latest follower started (one per run picked)."""

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="train-body"):
            yield RunsTable(id="train-runs")
            yield RunLive(id="train-live")

    def on_mount(self) -> None:
        self.list_runs_now()
        self.list_timer = self.set_interval(LIST_EVERY_S, self.list_runs_now)

    def on_screen_suspend(self) -> None:
        """Another screen shows: stop refreshing a list nobody sees (it costs the other's keys)."""
        self.list_timer.pause()

    def on_screen_resume(self) -> None:
        self.list_timer.resume()
        self.list_runs_now()

    def palette_commands(self) -> list[PaletteCommand]:
        return [
            PaletteCommand(
                "train: new run", "Edit the settings and start a run", self.action_new_run
            ),
            PaletteCommand("train: stop run", "Stop the highlighted run", self.action_stop_run),
            PaletteCommand(
                "train: resume run", "Resume the highlighted run", self.action_resume_run
            ),
            PaletteCommand("train: export run", "Export the run to GGUF", self.action_export_run),
            PaletteCommand("train: stop export", "Stop the export", self.action_stop_export),
            PaletteCommand("train: compare runs", "Overlay marked runs", self.action_overlay),
            PaletteCommand("train: sweep summary", "Rank the latest sweep", self.action_sweep),
        ]

    # --- the runs list ---------------------------------------------------------------------------

    def list_runs_now(self) -> None:
        self.list_runs_job()

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="train-list",
        description="list runs",
    )
    def list_runs_job(self) -> None:
        self.post_message(self.RunsListed(self.cache.list_runs(self.workbench.workspace)))

    @on(RunsListed)
    def runs_listed(self, message: RunsListed) -> None:
        self.runs = {run.id: run for run in message.runs}
        self.marked &= set(self.runs)
        table = self.query_one(RunsTable)
        table.show(message.runs, self.marked, self.selected)
        if self.selected is None and message.runs:
            self.select(message.runs[-1].id)
        elif self.selected in self.runs:
            live = self.query_one(RunLive)
            if live.summary != self.runs[self.selected]:
                live.summary = self.runs[self.selected]

    @on(DataTable.RowHighlighted, "#train-runs")
    def run_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value and event.row_key.value != self.selected:
            self.select(event.row_key.value)

    def select(self, run_id: str) -> None:
        """Show `run_id` on the right at once from what was read of it, then follow its log."""
        self.selected = run_id
        live = self.query_one(RunLive)
        live.compared = ()
        run_dir = self.runs[run_id].dir
        seen = self.cache.peek(run_dir, wait=False)
        if seen is not None:
            live.show_run(self.runs[run_id], seen.history, log_lines(seen.records[-LOG_ON_PICK:]))
        else:
            live.summary = self.runs[run_id]
        self.following += 1
        self.follow(run_dir, seen.mark if seen is not None else None, self.following)

    # --- following the selected run --------------------------------------------------------------

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="train-follow",
        description="follow run",
    )
    def follow(self, run_dir: Path, mark: ReadMark | None, follower: int) -> None:
        """Post every record after `mark` exactly once (the whole kept tail first when `mark` is
        None: the run was never shown), until another run is picked. Records a list refresh
        read first are posted too; only new bytes of the log are read, by whoever comes first."""
        worker = get_current_worker()
        while not worker.is_cancelled:
            if (read := self.cache.since(run_dir, mark)) is not None:
                records = read.records[-LOG_ON_PICK:] if read.restarted else read.records
                message = self.RunFollowed(
                    run_dir.name, read.history, log_lines(records), read.restarted, follower
                )
                self.post_message(message)
                mark = read.mark
            time.sleep(POLL_S)

    @on(RunFollowed)
    def run_followed(self, message: RunFollowed) -> None:
        if message.follower != self.following or message.run_id != self.selected:
            return  # posted before another run was picked
        live = self.query_one(RunLive)
        live.history = message.history
        if message.run_id in self.runs and live.summary is not self.runs[message.run_id]:
            live.summary = self.runs[message.run_id]
        if message.first:
            live.reset_log(message.lines)
        else:
            live.append_log(message.lines)

    # --- starting, stopping, resuming ------------------------------------------------------------

    def action_new_run(self) -> None:
        form = TrainForm(self.workbench.workspace.config.train, self.last_overrides)
        self.app.push_screen(form, self.start_with)

    def start_with(self, overrides: dict[str, Any] | None) -> None:
        if overrides is not None:
            self.last_overrides = overrides
            self.query_one(RunLive).notice = ""
            self.notify("Checking the settings and the data…", title="New run")
            self.start_job(overrides)

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="train-start",
        description="start run",
    )
    def start_job(self, overrides: dict[str, Any]) -> None:
        try:
            run_dir = start_run(self.workbench.workspace, overrides)
        except RunRefused as exc:
            self.post_message(self.ActionRefused(exc.problems))
            return
        self.post_message(self.RunChanged(run_dir, f"Run {run_dir.name} started"))

    @on(RunChanged)
    def run_changed(self, message: RunChanged) -> None:
        self.notify(message.note, title="Train")
        self.selected = None  # the newest run gets selected when the list comes back
        self.list_runs_now()

    @on(ActionRefused)
    def action_refused(self, message: ActionRefused) -> None:
        text = "\n".join(message.problems)
        self.notify(text, title="Refused", severity="error", timeout=30)
        self.query_one(RunLive).notice = f"[bold red]Refused:[/] {escape(text)}"

    def _highlighted(self) -> RunSummary | None:
        run = self.runs.get(self.selected or "")
        if run is None:
            self.notify("No run selected: press n to start one.", severity="warning")
        return run

    def action_stop_run(self) -> None:
        if (run := self._highlighted()) is not None:
            self.control_job(run.dir, "stop")

    def action_resume_run(self) -> None:
        if (run := self._highlighted()) is not None:
            self.control_job(run.dir, "resume")

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="train-control",
        description="stop or resume",
    )
    def control_job(self, run_dir: Path, what: str) -> None:
        if what == "stop":
            stopped = stop_run(run_dir)
            note = "stopping: a checkpoint is saved first" if stopped else "it is not running"
            self.post_message(self.RunChanged(run_dir, f"Run {run_dir.name}: {note}"))
            return
        try:
            resume_run(run_dir)
        except RunRefused as exc:
            self.post_message(self.ActionRefused(exc.problems))
            return
        self.post_message(self.RunChanged(run_dir, f"Run {run_dir.name} resumed"))

    # --- export ----------------------------------------------------------------------------------

    def action_export_run(self) -> None:
        if (run := self._highlighted()) is not None:
            self.checkpoints_job(run.dir)

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="train-checkpoints",
        description="list checkpoints",
    )
    def checkpoints_job(self, run_dir: Path) -> None:
        seen = self.cache.peek(run_dir)
        choices = checkpoint_choices(run_dir, seen.history if seen is not None else None)
        self.post_message(self.CheckpointsListed(run_dir, choices))

    @on(CheckpointsListed)
    def checkpoints_listed(self, message: CheckpointsListed) -> None:
        run_dir = message.run_dir

        def chosen(choice: ExportChoice | None) -> None:
            if choice is not None:
                self.export_job(run_dir, choice)

        self.app.push_screen(ExportScreen(run_dir.name, message.choices), chosen)

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="train-export",
        description="export run",
    )
    def export_job(self, run_dir: Path, choice: ExportChoice) -> None:
        from workbench.export.job import ExportRefused, plan_export, start_export

        exports_dir = self.workbench.workspace.exports_dir
        try:
            request = plan_export(exports_dir, run_dir, choice.checkpoint, choice.quants)
        except ExportRefused as exc:
            self.post_message(self.ActionRefused([str(exc)]))
            return
        start_export(request)
        self.export_dir = request.export_dir
        what = "best" if choice.checkpoint == "best" else f"checkpoint-{choice.checkpoint}"
        note = f"Export {request.export_dir.name} of {what} started ({', '.join(choice.quants)})"
        self.post_message(self.RunChanged(run_dir, note + "; x stops it"))
        self.follow_export(request.export_dir)

    def follow_export(self, export_dir: Path) -> None:
        """Post the export's progress until it ends (runs in the export worker's thread)."""
        from workbench.export.events import ExportProgress

        worker = get_current_worker()
        tail, progress = EventTail(export_dir), ExportProgress()
        self.post_message(self.ExportProgressed(export_text(export_dir.name, progress)))
        while not worker.is_cancelled and progress.finished is None:
            records = tail.read_new()
            if records:
                progress.add_dicts(records)
                self.post_message(self.ExportProgressed(export_text(export_dir.name, progress)))
            elif (ended := ended_early(export_dir)) is not None:
                if not (records := tail.read_new()):  # its last events came just now?
                    self.post_message(self.ExportProgressed(ended))
                    return
                progress.add_dicts(records)
                self.post_message(self.ExportProgressed(export_text(export_dir.name, progress)))
            time.sleep(POLL_S)

    def action_stop_export(self) -> None:
        if self.export_dir is None:
            self.notify("No export started here: press e to export a run.", severity="warning")
            return
        self.stop_export_job(self.export_dir)

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="train-export-stop",
        description="stop export",
    )
    def stop_export_job(self, export_dir: Path) -> None:
        from workbench.export.job import stop_export

        stopped = stop_export(export_dir)
        note = "stopping: its partial files are removed" if stopped else "it is not running"
        self.post_message(self.ExportProgressed(f"export {export_dir.name}: {note}"))

    @on(ExportProgressed)
    def export_progressed(self, message: ExportProgressed) -> None:
        self.query_one(RunLive).notice = message.text

    # --- comparing -------------------------------------------------------------------------------

    def action_mark(self) -> None:
        if (run := self._highlighted()) is not None:
            self.marked ^= {run.id}
            self.query_one(RunsTable).show(list(self.runs.values()), self.marked, self.selected)

    def action_overlay(self) -> None:
        live = self.query_one(RunLive)
        if live.compared:
            live.compared = ()
            live.summary = live.summary
            return
        if len(self.marked) < 2:
            self.notify("Mark two or more runs with space first.", severity="warning")
            return
        self.compare_job([self.runs[run_id].dir for run_id in sorted(self.marked)])

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="train-compare",
        description="compare runs",
    )
    def compare_job(self, run_dirs: list[Path]) -> None:
        histories = [(run_dir.name[-4:], self.cache.history(run_dir)) for run_dir in run_dirs]
        self.post_message(self.RunsCompared(overlay(histories)))

    @on(RunsCompared)
    def runs_compared(self, message: RunsCompared) -> None:
        self.query_one(RunLive).compared = message.series

    # --- sweeps ----------------------------------------------------------------------------------

    def action_sweep(self) -> None:
        self.sweep_job()

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="train-sweep",
        description="load sweep",
    )
    def sweep_job(self, keep: bool = False) -> None:
        from workbench.train.sweep import keep_best, read_sweep, sweep_summary

        sweep_dir = latest_sweep(self.workbench.workspace.root)
        if sweep_dir is None:
            problem = "No sweep yet: start one with `workbench sweep start FILE`."
            self.post_message(self.ActionRefused([problem]))
            return
        if keep:
            try:
                keep_best(sweep_dir)
            except RunRefused as exc:
                self.post_message(self.ActionRefused(exc.problems))
                return
        kept = str(read_sweep(sweep_dir).get("kept", ""))
        self.post_message(self.SweepLoaded(sweep_dir, sweep_summary(sweep_dir), kept))

    @on(SweepLoaded)
    def sweep_loaded(self, message: SweepLoaded) -> None:
        screen = SweepScreen(message.sweep_dir, message.runs, message.kept)
        self.app.push_screen(screen, lambda keep: keep and self.confirm_keep(message.runs))

    def confirm_keep(self, runs: list[RunSummary]) -> None:
        best = runs[0].variant or runs[0].id if runs else "the best variant"
        question = f"Keep {best} and delete the other variants' weights (their logs stay)?"
        self.app.push_screen(
            ConfirmScreen(question, "Keep best"),
            lambda yes: yes and self.sweep_job(keep=True),
        )

    # --- failures --------------------------------------------------------------------------------

    @on(Worker.StateChanged)
    def worker_failed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR:
            self.notify(
                f"{event.worker.description} failed: {event.worker.error}",
                title="Train",
                severity="error",
                timeout=12,
            )
