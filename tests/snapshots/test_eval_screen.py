"""What the Eval screen looks like in its main states (`--snapshot-update` to accept changes)."""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "screens"))
from eval_support import (
    FAILED,
    KEY,
    LOSS,
    SIZE,
    SPLIT,
    TIE,
    WIN,
    append_events,
    eval_screen,
    export_gguf,
    make_eval,
    settle,
    with_test_split,
)

from screens.app import make_app
from workbench.accelerator import Accelerator
from workbench.evaluate.events import Phase, Progress, Started
from workbench.workspace import Workspace


@pytest.fixture
def ws(workspace: Workspace) -> Workspace:
    """Six held-out examples and two past evals: all losses, then a mixed one."""
    workspace = with_test_split(workspace.set_values({"eval.gpu_hourly_usd": 2.49}), 6)
    make_eval(workspace, "20260220-090000-aaaa", [LOSS, LOSS, LOSS], started=1_771_600_000.0)
    make_eval(workspace, "20260224-120000-bbbb", [LOSS, WIN, SPLIT, LOSS, TIE, FAILED])
    return workspace


def keys(*pressed: str) -> Callable[[Pilot[None]], Awaitable[None]]:
    """Open the Eval screen, press keys, wait for what they started."""

    async def run(pilot: Pilot[None]) -> None:
        await pilot.press("4")
        await settle(pilot)
        for key in pressed:
            await pilot.press(key)
            await settle(pilot, rounds=2)
        await settle(pilot)

    return run


def snap(workspace: Workspace, snap_compare: Any, *pressed: str) -> bool:
    app = make_app(workspace, probe=Accelerator)
    return bool(snap_compare(app, terminal_size=SIZE, run_before=keys(*pressed)))


def test_past_evals(ws: Workspace, snap_compare: Any) -> None:
    assert snap(ws, snap_compare, "down")


def test_losses_side_by_side(ws: Workspace, snap_compare: Any) -> None:
    assert snap(ws, snap_compare, "f", "enter")


def test_cost_and_latency(ws: Workspace, snap_compare: Any) -> None:
    assert snap(ws, snap_compare, "c")


def test_new_eval_dialog(
    workspace: Workspace, snap_compare: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    with_test_split(workspace, 6)
    export_gguf(workspace)
    assert snap(workspace, snap_compare, "n")


def test_no_evals_and_no_key(workspace: Workspace, snap_compare: Any) -> None:
    assert snap(workspace, snap_compare)


def test_a_running_eval(workspace: Workspace, snap_compare: Any) -> None:
    """Two of five items judged, followed live (the eval's process is this test's)."""
    with_test_split(workspace, 5)
    eval_id = "20260226-100000-dddd"
    eval_dir = make_eval(
        workspace, eval_id, [LOSS, WIN, TIE, LOSS, WIN], "running", pid=os.getpid(), done=2
    )
    append_events(
        eval_dir,
        Started(eval_id, 5, 5, "/srv/models/seo-writer-q8_0.gguf", "stored", "claude-sonnet-5-5"),
        Phase("generating and judging 5 items"),
        Progress(2, 5, wins=1, losses=1, judge_calls=4, judge_input_tokens=3600,
                 judge_output_tokens=160, judge_cost_usd=0.0088),
    )  # fmt: skip

    async def run(pilot: Pilot[None]) -> None:
        await keys()(pilot)
        screen = eval_screen(pilot.app)  # type: ignore[arg-type]
        while screen.live is None or screen.report is None:
            await pilot.pause(0.05)
        await settle(pilot)

    app = make_app(workspace, probe=Accelerator)
    assert snap_compare(app, terminal_size=SIZE, run_before=run)
