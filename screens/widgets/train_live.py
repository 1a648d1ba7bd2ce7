"""The live view of one run: its numbers, its warnings and errors, its curves and its log."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.markup import escape
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import RichLog, Static

from screens.widgets.line_chart import COLOURS, LineChart, Series
from workbench.train.events import RunHistory, describe_event, event_from_dict
from workbench.train.runs import RunSummary

OOM_ADVICE = (
    "Try a smaller train.batch_size (raise gradient_accumulation_steps to keep the effective "
    "batch), a shorter train.max_seq_length, or train.load_in_4bit = true; then press n."
)


def log_lines(records: Sequence[Mapping[str, Any]]) -> list[Text]:
    """Log lines for raw events: warnings in yellow, errors in red."""
    lines = []
    for record in records:
        event = event_from_dict(record)
        if event is None:
            continue
        style = {"warning": "bold yellow", "error": "bold red", "finished": "bold"}.get(
            event.type, ""
        )
        lines.append(Text(describe_event(event), style=style))
    return lines


def curves(history: RunHistory, name: str = "", colour: str = "cyan") -> list[Series]:
    """The loss line and the eval-loss markers of one run."""
    loss = tuple((float(point.step), point.loss) for point in history.steps)
    evals = tuple((float(point.step), point.eval_loss) for point in history.evals)
    prefix = f"{name} " if name else ""
    result = [Series(f"{prefix}loss", loss, colour)]
    if evals:
        result.append(Series(f"{prefix}eval loss", evals, "yellow" if not name else colour, True))
    return result


def overlay(histories: Sequence[tuple[str, RunHistory]]) -> tuple[Series, ...]:
    """Several runs' curves, one colour per run."""
    series: list[Series] = []
    for index, (name, history) in enumerate(histories):
        series += curves(history, name, COLOURS[index % len(COLOURS)])
    return tuple(series)


def eta_s(history: RunHistory) -> float | None:
    """Seconds left at this attempt's pace."""
    if not history.steps or history.finished is not None:
        return None
    last = history.steps[-1]
    first = history.started.resumed_from_step if history.started else 0
    done = last.step - first
    if done <= 0 or last.elapsed_s <= 0:
        return None
    return last.elapsed_s / done * max(0, last.total_steps - last.step)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def stats_text(summary: RunSummary, history: RunHistory) -> str:
    """`running · step 40/100 · epoch 1.20 · 2,300 tokens/s · GPU 5.20 GiB 87% busy · ETA 3m`."""
    parts = [f"[b]{summary.id}[/b] {_state(summary.state)}"]
    parts.append(f"step [b]{history.step}/{history.total_steps}[/b]")
    if history.steps:
        last = history.steps[-1]
        parts.append(f"epoch {last.epoch:.2f}")
        if last.tokens_per_s is not None:
            parts.append(f"{last.tokens_per_s:,.0f} tokens/s")
        if gpu := gpu_text(last.gpu_memory_gib, last.gpu_util):
            parts.append(gpu)
        parts.append(f"loss {last.loss:.4f}")
    if (best := history.best) is not None:
        parts.append(f"best eval [b]{best.eval_loss:.4f}[/b] @ {best.step}")
    if summary.state in ("running", "starting"):
        parts.append(f"ETA {duration(eta_s(history))}")
    parts.append(f"took {duration(history.active_s)}")
    line = " · ".join(parts)
    if history.phase and history.finished is None and not history.steps:
        line += f"\n[dim]{escape(history.phase)}[/dim]"
    return line


def gpu_text(memory_gib: float | None, util: float | None) -> str:
    """`GPU 5.20 GiB 87% busy`; '' on CPU (both unknown)."""
    parts = ["GPU"] if memory_gib is not None or util is not None else []
    if memory_gib is not None:
        parts.append(f"{memory_gib:.2f} GiB")
    if util is not None:
        parts.append(f"{util:.0f}% busy")
    return " ".join(parts)


def _state(state: str) -> str:
    colour = {
        "running": "green",
        "starting": "green",
        "finished": "cyan",
        "failed": "red",
        "lost": "red",
        "stopped": "yellow",
        "stopping": "yellow",
    }.get(state, "white")
    return f"[bold {colour}]{state}[/]"


def alert_text(history: RunHistory) -> str:
    """The errors and warnings a user must see, most serious first; '' when all is well."""
    lines = []
    for error in history.errors[-2:]:
        lines.append(f"[bold red]✖ {_error_title(error.kind)}[/]: {escape(error.message)}")
        if error.kind == "out_of_memory":
            lines.append(f"  [red]{escape(OOM_ADVICE)}[/]")
    seen: set[str] = set()
    for warning in reversed(history.warnings):
        if warning.kind not in seen:
            seen.add(warning.kind)
            lines.append(f"[bold yellow]▲ {warning.kind}[/]: {escape(warning.message)}")
    return "\n".join(lines)


def _error_title(kind: str) -> str:
    return {
        "nan_loss": "loss became NaN/inf, the run stopped",
        "out_of_memory": "out of GPU memory",
    }.get(kind, f"{kind} error")


class RunLive(Vertical):
    """The selected run (or several runs overlaid): numbers, alerts, chart and log tail."""

    HELP = """\
The selected run, live: step, epoch, tokens/s, ETA, GPU memory and utilization, and loss. The
chart draws the training loss as a line and the eval loss as dots (**o** overlays the runs marked
with **space**). Warnings (overfitting, memorizing) and errors (NaN loss, out of memory) show in
colour above it; the log below is the run's event log, newest last.
"""

    summary: reactive[RunSummary | None] = reactive(None, always_update=True)
    history: reactive[RunHistory | None] = reactive(None, always_update=True)
    compared: reactive[tuple[Series, ...]] = reactive((), always_update=True)
    notice: reactive[str] = reactive("")
    """The last refusal or the progress of an export started here."""

    def compose(self) -> ComposeResult:
        yield Static("Select a run on the left, or press [b]n[/b] to start one.", id="train-stats")
        yield Static("", id="train-alerts")
        yield Static("", id="train-notice")
        yield LineChart(id="train-chart")
        yield RichLog(id="train-log", max_lines=400, wrap=True, markup=False)

    def watch_history(self, history: RunHistory | None) -> None:
        self._show()

    def watch_summary(self, summary: RunSummary | None) -> None:
        self._show()

    def watch_notice(self, note: str) -> None:
        self.query_one("#train-notice", Static).update(note)
        self.query_one("#train-notice").set_class(bool(note), "-shown")

    def watch_compared(self, series: tuple[Series, ...]) -> None:
        if series:
            self.query_one(LineChart).series = series

    def _show(self) -> None:
        if self.summary is None or self.history is None:
            return
        self.query_one("#train-stats", Static).update(stats_text(self.summary, self.history))
        alerts = alert_text(self.history)
        self.query_one("#train-alerts", Static).update(alerts)
        self.query_one("#train-alerts").set_class(bool(alerts), "-shown")
        if not self.compared:
            self.query_one(LineChart).series = tuple(curves(self.history))

    def show_run(self, summary: RunSummary, history: RunHistory, lines: Sequence[Text]) -> None:
        """Another run picked: its numbers, curves and log tail in one go (one paint)."""
        with self.app.batch_update():
            self.set_reactive(RunLive.summary, summary)
            self.history = history
            self.reset_log(lines)

    def reset_log(self, lines: Sequence[Text]) -> None:
        log = self.query_one(RichLog)
        log.clear()
        self.append_log(lines)

    def append_log(self, lines: Sequence[Text]) -> None:
        """One write for the whole batch: a write per line costs a layout each (~0.3 ms)."""
        if lines:
            self.query_one(RichLog).write(Text("\n").join(lines))
