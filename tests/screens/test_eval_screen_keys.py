"""The Eval screen driven by key presses, on evals written as the engine writes them: the list of
past evals, the summary, filters, the side-by-side view, sending to the data, costs, export,
following a running eval, stopping one, and what it says without an API key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from textual.widgets import Input, Static, TextArea

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eval_support import (
    FAILED,
    KEY,
    LOSS,
    SPLIT,
    TIE,
    WIN,
    append_events,
    eval_app,
    eval_screen,
    export_gguf,
    make_eval,
    settle,
    svg_of,
    text_of,
    with_test_split,
)
from support import notifications

from screens.app import WorkbenchApp
from screens.data_dialogs import ConfirmScreen
from screens.eval_dialogs import AnswerEditorScreen, NewEvalScreen
from screens.eval_item import EvalItemScreen
from screens.widgets.eval_costs import EvalCostPanel
from screens.widgets.eval_history import EvalHistoryTable
from screens.widgets.eval_items import EvalItemsTable
from screens.widgets.eval_summary import EvalSummaryPanel
from workbench.data.store import ExampleStore, Query
from workbench.evaluate.events import Finished, ItemJudged, Phase, Progress, Started
from workbench.jobs import JobStatus, read_status, write_status
from workbench.workspace import Workspace

OLDER, NEWER = "20260220-090000-aaaa", "20260224-120000-bbbb"
MIXED = [LOSS, WIN, SPLIT, LOSS, TIE, FAILED]


@pytest.fixture
def ws(workspace: Workspace) -> Workspace:
    """Six held-out examples and two past evals: an older one (all losses), a newer mixed one."""
    workspace = with_test_split(workspace.set_values({"eval.gpu_hourly_usd": 2.0}), 6)
    make_eval(workspace, OLDER, [LOSS, LOSS, LOSS], started=1_771_600_000.0)
    make_eval(workspace, NEWER, MIXED)
    return workspace


@pytest.fixture
def keyed(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    return KEY


def items_shown(app: WorkbenchApp) -> list[tuple[int, str]]:
    """(index, outcome) of each row of the items table."""
    table = eval_screen(app).query_one(EvalItemsTable)
    return [(entry.item.index, entry.outcome or "error") for entry in table.entries]


def summary_text(app: WorkbenchApp) -> str:
    return text_of(eval_screen(app).query_one(EvalSummaryPanel))


def notices(app: WorkbenchApp) -> str:
    """Every notification so far, one a line (a phrase may be searched across them)."""
    return "\n".join(notifications(app))


# --- without an API key --------------------------------------------------------------------


async def test_without_a_key_the_screen_says_what_to_set(workspace: Workspace) -> None:
    async with eval_app(workspace) as pilot:
        app = pilot.app
        screen = eval_screen(app)
        banner = text_of(screen.query_one("#eval-key-banner", Static))
        assert "set ANTHROPIC_API_KEY to your Anthropic API key" in banner
        assert "start workbench again" in banner
        checklist = text_of(screen.query_one("#eval-empty", Static))
        assert "No evals yet." in checklist
        assert "✗ an exported model" in checklist and "✗ held-out inputs" in checklist
        assert "✗ the judge's API key: `export ANTHROPIC_API_KEY=...` before starting" in checklist

        await pilot.press("n")
        await pilot.pause()
        assert not isinstance(app.screen, NewEvalScreen)
        assert "To run an eval, set ANTHROPIC_API_KEY" in notices(app)
    assert list(workspace.evals_dir.iterdir()) == []


async def test_with_a_key_and_a_model_the_checklist_is_ticked(
    workspace: Workspace, keyed: str
) -> None:
    with_test_split(workspace, 3)
    export_gguf(workspace)
    async with eval_app(workspace) as pilot:
        app = pilot.app
        screen = eval_screen(app)
        assert not screen.query_one("#eval-key-banner").display
        checklist = text_of(screen.query_one("#eval-empty", Static))
        assert "✓ an exported model: 1 GGUF file(s) in exports/" in checklist
        assert "✓ held-out inputs: 3 examples in the test split" in checklist
        assert "✓ the judge's API key: ANTHROPIC_API_KEY is set" in checklist
        assert keyed not in svg_of(app)


# --- past evals -------------------------------------------------------------------------------


async def test_past_evals_are_listed_newest_first_and_shown_when_highlighted(
    ws: Workspace,
) -> None:
    async with eval_app(ws) as pilot:
        app = pilot.app
        history = eval_screen(app).query_one(EvalHistoryTable)
        assert history.ids == [NEWER, OLDER]
        rows = text_of(history)
        assert "W/T/L 1/2/2" in rows and "W/T/L 0/0/3" in rows
        assert "40% [" in rows  # (1 + 0.5 * 2) / 5
        assert eval_screen(app).selected == NEWER
        summary = summary_text(app)
        assert "finished · seo-writer-q8_0.gguf vs old pipeline (stored)" in summary
        assert "W/T/L 1/2/2 of 5 · win rate 40% (95% CI" in summary
        assert "orders disagreed on 20%" in summary and "1 failed" in summary
        assert "r retries the 1 left" in summary  # the failed item can be retried
        assert items_shown(app) == [
            (0, "loss"),
            (1, "win"),
            (2, "tie"),
            (3, "loss"),
            (4, "tie"),
            (5, "error"),
        ]

        await pilot.press("h", "down")
        await settle(pilot)
        assert eval_screen(app).selected == OLDER
        assert "W/T/L 0/0/3 of 3 · win rate 0%" in summary_text(app)
        assert items_shown(app) == [(0, "loss"), (1, "loss"), (2, "loss")]


async def test_an_eval_started_elsewhere_appears_in_the_list(ws: Workspace) -> None:
    async with eval_app(ws) as pilot:
        app = pilot.app
        make_eval(ws, "20260225-080000-cccc", [WIN], started=1_772_100_000.0)
        await pilot.press("ctrl+p", *"eval: refresh", "enter")
        await settle(pilot)
        assert eval_screen(app).query_one(EvalHistoryTable).ids[0] == "20260225-080000-cccc"


# --- items: filters and side by side --------------------------------------------------------


async def test_f_shows_losses_then_disagreements_then_errors(ws: Workspace) -> None:
    async with eval_app(ws) as pilot:
        app = pilot.app
        await pilot.press("f")
        assert items_shown(app) == [(0, "loss"), (3, "loss")]
        line = text_of(eval_screen(app).query_one("#eval-filter-line", Static))
        assert "Showing losses only: 2 of 6 items" in line
        await pilot.press("f")
        assert items_shown(app) == [(2, "tie")]
        await pilot.press("f")
        assert items_shown(app) == [(5, "error")]
        assert "HTTP 500: upstream overloaded" in text_of(
            eval_screen(app).query_one(EvalItemsTable)
        )
        await pilot.press("f")
        assert len(items_shown(app)) == 6


async def test_side_by_side_shows_input_answers_and_both_verdicts(ws: Workspace) -> None:
    async with eval_app(ws) as pilot:
        app = pilot.app
        await pilot.press("f", "enter")
        await pilot.pause()
        assert isinstance(app.screen, EvalItemScreen)
        title = text_of(app.screen.query_one("#eval-item-title", Static))
        assert "Item 0 · example #11 · loss · 1 of 2 losses only" in title
        assert "Topic:" in text_of(app.screen.query_one("#eval-item-input"))
        assert "A short answer from the fine-tuned model." in text_of(
            app.screen.query_one("#eval-item-candidate")
        )
        with ExampleStore(ws.db_path) as store:
            stored = store.get(11).messages[-1]["content"]
        assert stored.split()[0] in text_of(app.screen.query_one("#eval-item-baseline"))
        verdicts = text_of(app.screen.query_one("#eval-item-verdicts", Static))
        assert "fine-tuned in slot A → old pipeline wins: the old pipeline's answer" in verdicts
        assert "old pipeline in slot A → old pipeline wins" in verdicts

        await pilot.press("n")
        assert "Item 3 · example #14 · loss · 2 of 2" in text_of(
            app.screen.query_one("#eval-item-title", Static)
        )
        await pilot.press("n")
        assert "No next item in this list." in notices(app)
        await pilot.press("escape")
        assert not isinstance(app.screen, EvalItemScreen)


async def test_a_disagreement_names_the_winner_of_each_order(ws: Workspace) -> None:
    async with eval_app(ws) as pilot:
        app = pilot.app
        await pilot.press("f", "f", "enter")
        await pilot.pause()
        title = text_of(app.screen.query_one("#eval-item-title", Static))
        assert "the orders disagree (counted as a tie)" in title
        verdicts = text_of(app.screen.query_one("#eval-item-verdicts", Static))
        assert "fine-tuned in slot A → fine-tuned wins: slot A reads better" in verdicts
        assert "old pipeline in slot A → old pipeline wins: slot A reads better" in verdicts


async def test_a_loss_becomes_a_training_example_as_is_or_edited(ws: Workspace) -> None:
    async with eval_app(ws) as pilot:
        app = pilot.app
        await pilot.press("f", "enter", "s")
        await settle(pilot)
        assert "Item 0 is now training example #17" in notices(app)
        assert "sent to the data as example #17" in text_of(
            app.screen.query_one("#eval-item-title", Static)
        )

        await pilot.press("n", "e")
        await pilot.pause()
        assert isinstance(app.screen, AnswerEditorScreen)
        app.screen.query_one(TextArea).text = "A better answer, written by hand."
        await pilot.press("ctrl+s")
        await settle(pilot)

        await pilot.press("p", "s")  # item 0 again: asks first
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
    with ExampleStore(ws.db_path) as store:
        added = [store.get(i) for i in store.ids(Query(tag="from-eval"))]
        stored = store.get(11).messages[-1]["content"]
    assert [e.source for e in added] == [f"eval:{NEWER}:0", f"eval:{NEWER}:3"]
    assert all(e.split == "train" for e in added)
    assert added[0].messages[-1] == {"role": "assistant", "content": stored}
    assert added[1].messages[-1]["content"] == "A better answer, written by hand."
    assert added[1].messages[:-1] == store_messages(ws, 14)[:-1]


def store_messages(ws: Workspace, example_id: int) -> list[dict[str, str]]:
    with ExampleStore(ws.db_path) as store:
        return store.get(example_id).messages


async def test_an_empty_edited_answer_is_not_sent(ws: Workspace) -> None:
    async with eval_app(ws) as pilot:
        app = pilot.app
        await pilot.press("f", "enter", "e")
        await pilot.pause()
        app.screen.query_one(TextArea).text = "   "
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, AnswerEditorScreen)
        assert "The answer is empty" in text_of(app.screen.query_one("#answer-error", Static))
    with ExampleStore(ws.db_path) as store:
        assert store.count(Query(tag="from-eval")) == 0


# --- costs and export -------------------------------------------------------------------------


async def test_costs_are_projected_at_the_volume_typed(ws: Workspace) -> None:
    async with eval_app(ws) as pilot:
        app = pilot.app
        await pilot.press("c")
        panel = eval_screen(app).query_one(EvalCostPanel)
        text = text_of(panel)
        assert "per month (100,000)" in text
        assert "old pipeline" in text and "stored, claude-sonnet-5-5" in text
        assert "fine-tuned" in text and "seo-writer-q8_0.gguf" in text
        assert "stored answers: tokens estimated, latency unknown" in text
        old, new = (row.cost_per_request_usd for row in panel.rows)
        assert old is not None and new is not None and new < old

        await pilot.press("m", *"2000000")
        await pilot.pause()
        text = text_of(panel)
        assert "per month (2,000,000)" in text
        assert f"${old * 2_000_000:,.2f}" in text and f"${new * 2_000_000:,.2f}" in text
        saved = old * 2_000_000 - new * 2_000_000
        assert f"At 2,000,000 requests a month the fine-tuned model saves ${saved:,.2f}" in text


async def test_a_missing_gpu_price_says_how_to_set_it(workspace: Workspace) -> None:
    with_test_split(workspace, 2)
    make_eval(workspace, NEWER, [LOSS, WIN])
    async with eval_app(workspace) as pilot:
        app = pilot.app
        await pilot.press("c")
        text = " ".join(text_of(eval_screen(app).query_one(EvalCostPanel)).split())
        assert "set eval.gpu_hourly_usd for its cost" in text
        assert "`workbench config set eval.gpu_hourly_usd=2.49`" in text
        assert "needs both costs per request" in text


async def test_x_exports_the_report_as_markdown_and_jsonl(ws: Workspace) -> None:
    async with eval_app(ws) as pilot:
        app = pilot.app
        await pilot.press("c", "m", *"5000", "enter", "x")
        await settle(pilot)
        assert f"Wrote report.md and report.jsonl in evals/{NEWER}/" in notices(app)
    markdown = (ws.evals_dir / NEWER / "report.md").read_text()
    assert "1 wins, 2 ties, 2 losses (N=5)" in markdown
    assert "per month (5,000 requests)" in markdown
    lines = (ws.evals_dir / NEWER / "report.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert records[0]["type"] == "summary" and records[0]["losses"] == 2
    assert [r["outcome"] for r in records[1:]] == ["loss", "win", "tie", "loss", "tie", None]


# --- a running eval -----------------------------------------------------------------------------


async def test_a_running_eval_is_followed_live_to_its_end(workspace: Workspace) -> None:
    with_test_split(workspace, 3)
    eval_id = "20260226-100000-dddd"
    eval_dir = make_eval(
        workspace, eval_id, [LOSS, WIN, TIE], state="running", pid=os.getpid(), done=0
    )
    append_events(
        eval_dir,
        Started(eval_id, 3, 3, "/srv/models/seo-writer-q8_0.gguf", "stored", "claude-sonnet-5-5"),
        Progress(0, 3),
        Phase("generating and judging 3 items"),
    )
    async with eval_app(workspace) as pilot:
        app = pilot.app
        screen = eval_screen(app)
        await wait_until(pilot, lambda: screen.phase != "")
        assert screen.following == eval_id
        assert "running · seo-writer-q8_0.gguf" in summary_text(app)
        assert "generating and judging 3 items" in summary_text(app)
        assert "0/3 done · W/T/L 0/0/0" in summary_text(app)
        assert "s Stop" in text_of(app.screen.query_one("Footer"))

        make_eval_progress(eval_dir, workspace)
        append_events(
            eval_dir,
            ItemJudged(0, 11, "loss"),
            Progress(1, 3, losses=1, judge_calls=2, judge_input_tokens=1800, judge_cost_usd=0.01),
        )
        await wait_until(pilot, lambda: screen.live is not None and screen.live.done == 1)
        await wait_until(pilot, lambda: items_shown(app)[0] == (0, "loss"))
        assert "1/3 done · W/T/L 0/0/1" in summary_text(app)
        assert "judge: 2 calls (0 cached) · 1,800 in / 0 out tokens · $0.01000" in summary_text(app)
        assert screen.done == 1 and screen.total == 3

        write_status(eval_dir, JobStatus(eval_id, "eval", "finished", pid=os.getpid()))
        append_events(eval_dir, Finished("finished", "W/T/L 0/0/1", 1, 3))
        await wait_until(pilot, lambda: screen.following == "")
        await settle(pilot)
        assert f"Eval {eval_id} finished: W/T/L 0/0/1." in notices(app)
        assert "finished · seo-writer-q8_0.gguf" in summary_text(app)
        assert "s Stop" not in text_of(app.screen.query_one("Footer"))


def make_eval_progress(eval_dir: Path, workspace: Workspace) -> None:
    """The first item's result, as the job appends it."""
    from eval_support import LOSS as plan
    from eval_support import _result

    from workbench.evaluate.evalset import read_items
    from workbench.evaluate.results import append_result

    append_result(eval_dir, _result(read_items(eval_dir)[0], plan, 0))


async def wait_until(pilot, predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.05)


async def test_s_asks_then_stops_the_running_eval(workspace: Workspace) -> None:
    with_test_split(workspace, 2)
    job = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        eval_dir = make_eval(
            workspace, "20260226-110000-eeee", [LOSS, WIN], state="running", pid=job.pid, done=1
        )
        async with eval_app(workspace) as pilot:
            app = pilot.app
            await pilot.press("s")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("y")
            await settle(pilot)
            assert job.wait(timeout=10) == -15  # SIGTERM: the job finishes the item and stops
            assert "Stopping eval 20260226-110000-eeee" in notices(app)
    finally:
        job.kill()
    assert read_status(eval_dir) is not None


async def test_quitting_stops_following_and_leaves_the_eval_running(workspace: Workspace) -> None:
    with_test_split(workspace, 1)
    eval_dir = make_eval(
        workspace, "20260226-120000-ffff", [LOSS], state="running", pid=os.getpid(), done=0
    )
    async with eval_app(workspace) as pilot:
        app = pilot.app
        screen = eval_screen(app)
        assert screen.following == "20260226-120000-ffff"
        assert not screen._follow_cancel.is_set()
        await pilot.press("ctrl+q")
    assert screen._follow_cancel.is_set()  # the follower's loop ends within a poll
    status = read_status(eval_dir)
    assert status is not None and status.state == "running"


# --- the new-eval dialog ------------------------------------------------------------------------


async def test_the_new_eval_dialog_lists_exports_and_explains_what_is_wrong(
    workspace: Workspace, keyed: str
) -> None:
    with_test_split(workspace, 3)
    export_gguf(workspace)
    async with eval_app(workspace) as pilot:
        app = pilot.app
        await pilot.press("n")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, NewEvalScreen)
        hint = text_of(dialog.query_one("#new-eval-hint", Static))
        assert "The test split has 3 examples: this eval takes 3" in hint
        assert str(dialog.chosen_model()).endswith("exports/20260224-101500-ab12/model-q8_0.gguf")

        dialog.query_one("#new-eval-path", Input).value = "no/such/model.gguf"
        await pilot.press("ctrl+s")
        await pilot.pause()
        error = " ".join(text_of(dialog.query_one("#new-eval-error", Static)).split())
        assert "model.gguf: no such file. Export the model first (Train screen)." in error

        dialog.query_one("#new-eval-path", Input).value = ""
        dialog.query_one("#new-eval-concurrency", Input).value = "0"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "Concurrency: a whole number from 1 to 256." in text_of(
            dialog.query_one("#new-eval-error", Static)
        )
        await pilot.press("escape")
        assert not isinstance(app.screen, NewEvalScreen)
    assert list(workspace.evals_dir.iterdir()) == []


async def test_a_refused_start_keeps_the_dialog_open_with_the_reason(
    workspace: Workspace, keyed: str
) -> None:
    export_gguf(workspace)  # no test or val examples: the engine refuses
    async with eval_app(workspace) as pilot:
        app = pilot.app
        await pilot.press("n")
        await settle(pilot)
        assert "split is empty" in text_of(app.screen.query_one("#new-eval-hint", Static))
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, NewEvalScreen)
        error = text_of(app.screen.query_one("#new-eval-error", Static))
        assert "Could not start the eval: no examples in the val split: split the data" in error
    assert list(workspace.evals_dir.iterdir()) == []


# --- help and palette -----------------------------------------------------------------------------


async def test_help_and_palette_speak_of_evals(ws: Workspace) -> None:
    from textual.widgets import Markdown

    async with eval_app(ws) as pilot:
        app = pilot.app
        await pilot.press("f1")
        text = app.screen.query_one(Markdown).source
        assert text.startswith("## Here\nEach input of the eval")
        assert "## Eval" in text and "| `n` | Configure and start an eval |" in text
        await pilot.press("escape", "ctrl+p", *"eval: show losses", "enter")
        await pilot.pause()
        assert eval_screen(app).item_filter == "losses"


def test_no_snapshot_of_the_eval_screen_holds_the_key() -> None:
    """The snapshots are taken with the key in the environment; none may show it."""
    snapshots = Path(__file__).resolve().parents[1] / "snapshots" / "__snapshots__"
    svgs = list(snapshots.rglob("*.svg"))
    assert any("test_eval_screen" in str(svg) for svg in svgs)
    assert not [svg for svg in svgs if KEY in svg.read_text(encoding="utf-8")]
