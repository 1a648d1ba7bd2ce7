"""The selected eval in a few lines: state, progress while it runs, W/T/L, win rate, judge cost."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import ProgressBar, Static

from screens.eval_text import (
    ACTIVE_STATES,
    RESUMABLE_STATES,
    judge_line,
    model_name,
    pct,
    progress_line,
    state_text,
    win_rate_text,
    wtl,
)

if TYPE_CHECKING:
    from workbench.evaluate.events import Progress
    from workbench.evaluate.report import EvalSummary


def headline(summary: EvalSummary) -> Text:
    """`W/T/L 1/1/4 · win rate 25% (95% CI 8%-50%) · orders disagreed on 17%`."""
    line = Text.assemble(wtl(summary.wins, summary.ties, summary.losses))
    line.append(f" of {summary.n} · win rate ")
    line.append(win_rate_text(summary), "bold")
    line.append(f" · orders disagreed on {pct(summary.disagreement_rate)}")
    if summary.errors:
        line.append(f" · {summary.errors} failed", "bold red")
    if summary.pending:
        line.append(f" · {summary.pending} not done", "yellow")
    return line


def state_line(summary: EvalSummary) -> Text:
    """`finished · model-f16.gguf vs old pipeline (stored) · judged by claude-sonnet-5-5`, and
    what to do when it did not finish."""
    line = Text.assemble(
        state_text(summary.state),
        " · ",
        (model_name(summary.model), "bold"),
        f" vs old pipeline ({summary.baseline}) · judged by {summary.judge_model}",
    )
    if summary.state in RESUMABLE_STATES:
        line.append(" · r resumes it (what is done is kept)", "yellow")
    elif summary.state == "finished" and (summary.errors or summary.pending):
        line.append(f" · r retries the {summary.errors + summary.pending} left", "yellow")
    return line


def summary_text(summary: EvalSummary, live: Progress | None, phase: str) -> Group:
    """Everything the panel says, from the report (and the live counts while it runs)."""
    running = summary.state in ACTIVE_STATES
    parts = [state_line(summary)]
    if running and live is not None:
        line = progress_line(live)
        if phase:
            line.append(f" · {phase}", "italic")
        parts.append(line)
        judge = judge_line(
            live.judge_calls,
            live.cached_judgments,
            live.judge_input_tokens,
            live.judge_output_tokens,
            live.judge_cost_usd,
        )
    else:
        parts.append(headline(summary))
        judge = judge_line(
            summary.judge_calls,
            summary.cached_judgments,
            summary.judge_input_tokens,
            summary.judge_output_tokens,
            summary.judge_cost_usd,
        )
    parts.append(Text(judge, "dim"))
    return Group(*parts)


class EvalSummaryPanel(Vertical, can_focus=True):
    """The selected eval's headline numbers; live while it runs."""

    HELP = """\
The selected eval. **W/T/L** counts the fine-tuned model's wins, ties and losses against the
old pipeline, each judged in both orders (a pair whose orders disagree is a tie). The **win
rate** counts a tie as half: 50% means as good as the old pipeline; the 95% interval shows how
sure that is with this many items. While an eval runs, the counts, the judge's tokens and its
cost so far update live. **s** stops a running eval, **r** resumes a stopped one.
"""

    summary: reactive[EvalSummary | None] = reactive(None)
    live: reactive[Progress | None] = reactive(None)
    """The latest progress of the eval while it runs (None: not followed)."""
    phase: reactive[str] = reactive("")

    def compose(self) -> ComposeResult:
        yield Static("", id="eval-summary-text")
        with Horizontal(id="eval-progress-row"):
            yield ProgressBar(id="eval-progress", show_eta=False)

    def on_mount(self) -> None:
        self.border_title = "Eval"

    def _render_all(self) -> None:
        text = self.query_one("#eval-summary-text", Static)
        summary = self.summary
        running = summary is not None and summary.state in ACTIVE_STATES
        self.query_one("#eval-progress-row").display = running
        if summary is None:
            text.update(Text("No eval selected.", "dim"))
            return
        self.border_title = f"Eval {summary.id}"
        text.update(summary_text(summary, self.live, self.phase))

    def watch_summary(self) -> None:
        self._render_all()

    def watch_live(self) -> None:
        self._render_all()

    def watch_phase(self) -> None:
        self._render_all()
