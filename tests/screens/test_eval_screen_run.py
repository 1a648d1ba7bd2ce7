"""Evals started from the Eval screen: a detached job on the tiny demo model (three items),
judged through the real SDK against the fake Messages API, followed live; stopped and
resumed with keys; the API key never reaches the workspace or the screen."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.message import Message
from textual.pilot import Pilot

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from eval_support import KEY, SIZE, eval_screen, export_gguf, settle, svg_of, with_test_split
from fake_anthropic import FakeRequest, Reply, Slow, Verdict, fake_anthropic
from support import notifications, wait_until

from screens.app import make_app
from screens.data_dialogs import ConfirmScreen
from screens.eval import EvalScreen
from screens.eval_dialogs import NewEvalScreen
from screens.widgets.eval_items import EvalItemsTable
from workbench.accelerator import Accelerator
from workbench.data.store import ExampleStore
from workbench.workspace import Workspace

pytestmark = pytest.mark.slow


@pytest.fixture
def ws(workspace: Workspace, gguf_model: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """Three held-out examples, the demo model exported as an f16 GGUF, the key set."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    settings = {"eval.max_tokens": 12, "eval.threads": 1, "eval.concurrency": 1}
    workspace = with_test_split(workspace.set_values(settings), 3)
    export_gguf(workspace, gguf_model)
    return workspace


def old_pipeline_wins_but_on_the_half_marathon(ws: Workspace) -> Callable[[FakeRequest], Reply]:
    with ExampleStore(ws.db_path) as store:
        stored = {e.messages[-1]["content"] for e in store.iter_examples(split="test")}

    def script(request: FakeRequest) -> Reply:
        old_in_a = request.response_a in stored
        fine_tuned_wins = "half marathon" in request.input_text
        return Verdict("A" if old_in_a != fine_tuned_wins else "B", "scripted reason")

    return script


def outcomes(screen: EvalScreen) -> list[str | None]:
    return [entry.outcome for entry in screen.query_one(EvalItemsTable).entries]


def state(screen: EvalScreen) -> str:
    return screen.report.summary.state if screen.report is not None else ""


async def start_from_the_dialog(pilot: Pilot[None]) -> EvalScreen:
    await pilot.press("4", "n")
    await settle(pilot)
    assert isinstance(pilot.app.screen, NewEvalScreen)
    await pilot.press("ctrl+s")
    await wait_until(pilot, lambda: not isinstance(pilot.app.screen, NewEvalScreen))
    return eval_screen(pilot.app)  # type: ignore[arg-type]


async def test_an_eval_started_here_runs_live_to_its_report(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    messages: list[Message] = []
    with fake_anthropic(old_pipeline_wins_but_on_the_half_marathon(ws)) as api:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", api.base_url)
        app = make_app(ws, probe=Accelerator)
        async with app.run_test(size=SIZE, message_hook=messages.append) as pilot:
            screen = await start_from_the_dialog(pilot)
            await wait_until(pilot, lambda: state(screen) == "finished" and not screen.following)
            await settle(pilot)
            assert outcomes(screen) == ["loss", "win", "loss"]
            assert screen.report is not None
            summary = screen.report.summary
            assert (summary.wins, summary.losses, summary.judge_calls) == (1, 2, 6)
            await pilot.press("x")
            await settle(pilot)
            assert KEY not in svg_of(app)
            notices = notifications(app)
    progress = [m.progress for m in messages if isinstance(m, EvalScreen.ProgressReported)]
    assert progress and progress[-1].done == 3 and progress[-1].losses == 2
    ended = [m.final for m in messages if isinstance(m, EvalScreen.EvalEnded)]
    assert {final.state for final in ended} == {"finished"}
    finished = [n for n in notices if "finished: W/T/L 1/0/2" in n]
    assert len(finished) == 1  # said once, however often the list was read meanwhile
    assert api.judge_calls == 6
    (eval_dir,) = [p for p in ws.evals_dir.iterdir() if p.is_dir()]
    assert (eval_dir / "report.md").is_file() and (eval_dir / "report.jsonl").is_file()
    files = [p for p in ws.root.rglob("*") if p.is_file()]
    assert not [p for p in files if KEY.encode() in p.read_bytes()]


async def test_an_eval_stopped_with_s_resumes_with_r(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    judge = old_pipeline_wins_but_on_the_half_marathon(ws)
    stalled = {"on": True}

    def script(request: FakeRequest) -> Reply:
        """After the first item the judge stalls, until the eval has been stopped."""
        if stalled["on"] and request.number > 2:
            return Slow(60.0, judge(request))
        return judge(request)

    with fake_anthropic(script) as api:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", api.base_url)
        app = make_app(ws, probe=Accelerator)
        messages: list[Message] = []
        async with app.run_test(size=SIZE, message_hook=messages.append) as pilot:
            screen = await start_from_the_dialog(pilot)
            await wait_until(pilot, lambda: screen.live is not None and screen.live.done == 1)
            await pilot.press("s")
            await pilot.pause()
            assert isinstance(app.screen, ConfirmScreen)
            await pilot.press("y")
            await wait_until(pilot, lambda: state(screen) == "stopped" and not screen.following)
            assert outcomes(screen) == ["loss", None, None]

            stalled["on"] = False
            await pilot.press("r")
            await wait_until(pilot, lambda: state(screen) == "finished" and not screen.following)
            await settle(pilot)
            assert outcomes(screen) == ["loss", "win", "loss"]
    assert api.judge_calls == 7  # the call cut off by the stop is the only one asked twice
    ended = [m.final.state for m in messages if isinstance(m, EvalScreen.EvalEnded)]
    changes = [s for i, s in enumerate(ended) if i == 0 or ended[i - 1] != s]
    assert changes == ["stopped", "finished"]  # the first attempt's end is not taken for the last
