"""What the Data screen looks like in its main states (`--snapshot-update` to accept changes)."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "screens"))
from data_support import SIZE, fill, seo_records, settle

from screens.app import make_app
from workbench.accelerator import Accelerator
from workbench.data.store import ExampleStore, Problem
from workbench.workspace import Workspace

FLAWS = {
    31: [Problem("warning", "ends-mid-sentence", "the answer ends mid-sentence: “…recommend”")],
    75: [Problem("error", "empty-answer", "the assistant message is empty")],
    79: [Problem("warning", "language", "the input is English, the answer German")],
    97: [Problem("warning", "ends-mid-sentence", "the answer ends mid-sentence: “…the right to”")],
}


@pytest.fixture
def curated(sample_workspace_opened: Workspace) -> Workspace:
    """The sample pairs, imported, a few already split, flagged, tagged and found faulty."""
    ids = fill(sample_workspace_opened, seo_records(), source="seo_pairs.jsonl")
    with ExampleStore(sample_workspace_opened.db_path) as store:
        store.set_split(ids[:96], "train")
        store.set_split(ids[96:108], "val")
        store.set_split(ids[108:], "test")
        store.set_flag([56, 92, 99], "bad")
        store.set_flag([60, 64], "needs-review")
        store.add_tag([32, 56, 76, 92, 82, 99], "duplicate")
        store.add_tag([1, 2, 3], "reviewed")
        store.set_problems(FLAWS)
        store.quarantine(
            "seo_pairs.jsonl", 122, '{"messages": [{"role": "user"', ["not valid JSON"]
        )
    return sample_workspace_opened


def keys(*pressed: str) -> Callable[[Pilot[None]], Awaitable[None]]:
    """Wait for the table, press keys, wait for what they started."""

    async def run(pilot: Pilot[None]) -> None:
        await settle(pilot)
        for key in pressed:
            await pilot.press(key)
            await pilot.pause()
        await settle(pilot)

    return run


def snap(workspace: Workspace, snap_compare: Any, *pressed: str) -> bool:
    app = make_app(workspace, probe=Accelerator)
    return bool(snap_compare(app, terminal_size=SIZE, run_before=keys(*pressed)))


def test_browse(curated: Workspace, snap_compare: Any) -> None:
    assert snap(curated, snap_compare, "j", "j")


def test_search_with_problems(curated: Workspace, snap_compare: Any) -> None:
    assert snap(curated, snap_compare, "slash", *"coffee", "enter", "j", "j", "j")


def test_filters_dialog(curated: Workspace, snap_compare: Any) -> None:
    assert snap(curated, snap_compare, "f")


def test_message_editor(curated: Workspace, snap_compare: Any) -> None:
    assert snap(curated, snap_compare, "e")


def test_stats_panel(curated: Workspace, snap_compare: Any) -> None:
    assert snap(curated, snap_compare, "x")


def test_bulk_confirmation(curated: Workspace, snap_compare: Any) -> None:
    assert snap(curated, snap_compare, "slash", *"coffee", "enter", "b", "up", "enter")


def test_quarantine(curated: Workspace, snap_compare: Any) -> None:
    assert snap(curated, snap_compare, "q")


def test_empty_workspace(workspace: Workspace, snap_compare: Any) -> None:
    assert snap(workspace, snap_compare)
