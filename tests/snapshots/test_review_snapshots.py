"""What the review queue looks like (`--snapshot-update` to accept changes)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "screens"))
from data_support import SIZE, settle

from screens.app import make_app
from workbench.accelerator import Accelerator
from workbench.data.importer import import_pending
from workbench.data.store import ExampleStore
from workbench.workspace import Workspace

SYSTEM = "You are an SEO copywriter. Write a title and meta description for the page."


def exchange(topic: str, answer: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"Topic: {topic}\nKeywords: {topic.lower()}"},
        {"role": "assistant", "content": answer},
    ]


@pytest.fixture
def queued(sample_workspace_opened: Workspace) -> Workspace:
    """The sample workspace with two captured candidates and two synthetic ones waiting."""
    assert import_pending(sample_workspace_opened) is not None
    with ExampleStore(sample_workspace_opened.db_path) as store:
        captured = store.add_examples(
            [
                {
                    "messages": exchange(
                        "Trail running shoes",
                        "Title: Trail Running Shoes That Grip Every Surface\n"
                        "Meta: Light, grippy trail shoes for mud, rock and long miles.",
                    ),
                    "capture": {
                        "model": "claude-sonnet-4-5",
                        "time": "2026-11-27T10:02:11Z",
                        "tag": "product-pages",
                        "latency_ms": 1840.0,
                        "usage": {"input_tokens": 412, "output_tokens": 38},
                    },
                },
                {
                    "messages": exchange("Camping stoves", "Title: Camping Stoves"),
                    "capture": {"model": "claude-sonnet-4-5", "time": "2026-11-27T10:03:40Z"},
                },
            ],
            source="capture",
            tags=["captured", "model:claude-sonnet-4-5", "product-pages"],
        )
        synthetic = store.add_examples(
            [
                {
                    "messages": exchange(
                        "Ski wax", "Title: Ski Wax Guide\nMeta: Pick the right wax for the snow."
                    ),
                    "synth": {
                        "model": "claude-sonnet-5-5",
                        "topic": "winter sports",
                        "time": "2026-11-27T11:00:00Z",
                        "cost_usd": 0.0031,
                    },
                },
                {
                    "messages": exchange("Kayak paddles", "Title: Kayak Paddles"),
                    "synth": {"model": "claude-sonnet-5-5", "topic": "water sports"},
                },
            ],
            source="synth",
            tags=["synthetic", "model:claude-sonnet-5-5", "topic:winter-sports"],
        )
        store.set_flag(captured + synthetic, "needs-review")
    return sample_workspace_opened


def test_review_queue(queued: Workspace, snap_compare: Any) -> None:
    async def run(pilot: Pilot[None]) -> None:
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        pilot.app.clear_notifications()
        await pilot.pause()

    app = make_app(queued, probe=Accelerator)
    assert snap_compare(app, terminal_size=SIZE, run_before=run)
