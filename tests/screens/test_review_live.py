"""The review queue and the Data screen while a capture proxy stores pairs: new candidates show
without a key press."""

from __future__ import annotations

import json
import time

from data_support import SIZE, data_app, query_text, settle, shown_ids
from support import wait_until
from textual.pilot import Pilot

from screens.app import make_app
from screens.data import WAITING_EVERY_S
from screens.review import WATCH_EVERY_S, ReviewScreen
from screens.widgets.examples_table import ExamplesTable
from workbench.accelerator import Accelerator
from workbench.collect import review
from workbench.collect.fake_upstream import anthropic_message, json_bytes
from workbench.collect.pairs import Exchange
from workbench.collect.sink import StoreSink
from workbench.data.store import ExampleStore
from workbench.workspace import Workspace


def exchange(topic: str) -> Exchange:
    """A Messages API call as the capture proxy hands it to its storage."""
    request = {
        "model": "claude-x",
        "max_tokens": 50,
        "system": "Write an SEO title.",
        "messages": [{"role": "user", "content": f"Page: {topic}"}],
    }
    reply = anthropic_message("claude-x", f"The Best {topic.title()}")
    return Exchange(
        api="anthropic",
        path="/v1/messages",
        request_body=json.dumps(request).encode(),
        status=200,
        response_body=json_bytes(reply),
        started_at=time.time(),
        latency_ms=12.0,
    )


def capture(workspace: Workspace, *topics: str) -> None:
    """Store pairs through the capture sink, from outside the app, as the proxy's process does."""
    sink = StoreSink.for_database(workspace.db_path)
    for topic in topics:
        sink.submit(exchange(topic))
    sink.close()
    assert sink.stats().stored == len(topics)


def previews(screen: ReviewScreen) -> list[str]:
    return [row.preview for row in screen.query_one(ExamplesTable).rows_on_screen()]


async def wait_for_rows(pilot: Pilot[None], screen: ReviewScreen, count: int) -> list[str]:
    deadline = time.monotonic() + WATCH_EVERY_S * 5
    while len(previews(screen)) < count and time.monotonic() < deadline:
        await pilot.pause(0.2)
        await settle(pilot, rounds=1)
    return previews(screen)


async def test_candidates_captured_while_the_screen_is_open_appear(workspace: Workspace) -> None:
    capture(workspace, "trail shoes")
    app = make_app(workspace, probe=Accelerator)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ReviewScreen)
        assert previews(screen) == ["Page: trail shoes"]

        capture(workspace, "camping stoves", "ski wax")
        assert await wait_for_rows(pilot, screen, 3) == [
            "Page: trail shoes",
            "Page: camping stoves",
            "Page: ski wax",
        ]
        assert screen.query_one("#review-main").border_title == "Review · 3 captured · 0 synthetic"


async def test_an_arrival_shows_though_a_reject_kept_the_count_level(workspace: Workspace) -> None:
    capture(workspace, "trail shoes", "tent pegs")
    app = make_app(workspace, probe=Accelerator)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ReviewScreen)
        first = next(iter(screen.query_one(ExamplesTable).rows_on_screen())).id
        with ExampleStore(workspace.db_path) as store:  # `workbench review reject` elsewhere
            review.reject(store, [first])
        capture(workspace, "ski wax")  # and the proxy stores one: still 2 waiting

        await wait_until(
            pilot,
            lambda: "Page: ski wax" in previews(screen),
            timeout=WATCH_EVERY_S * 10,
            what="the new candidate listed",
        )
        assert previews(screen) == ["Page: tent pegs", "Page: ski wax"]


async def test_the_data_screen_counts_and_lists_candidates_captured_while_it_is_open(
    workspace: Workspace,
) -> None:
    capture(workspace, "trail shoes")
    async with data_app(workspace) as pilot:
        app = pilot.app
        assert "1 waiting for review (r)" in query_text(app)
        capture(workspace, "camping stoves", "ski wax")
        await wait_until(
            pilot,
            lambda: "3 waiting for review (r)" in query_text(app) and len(shown_ids(app)) == 3,
            timeout=WAITING_EVERY_S * 10,
            what="the Data screen to show the new candidates",
        )
        assert "3 examples" in query_text(app)
