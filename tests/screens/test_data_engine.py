"""The Data screen driving the data engine: import, validate, strip instructions, split, stats."""

from __future__ import annotations

import json
from pathlib import Path

from data_support import (
    data_app,
    data_screen,
    fill,
    notifications,
    pair,
    query_text,
    settle,
    shown_ids,
    widget_text,
)
from textual.widgets import Static

from screens.clean_preview import CleanPreviewScreen
from screens.data_dialogs import ConfirmScreen, PromptScreen
from screens.widgets.stats_panel import StatsPanel
from workbench.data.store import ExampleStore, Query
from workbench.workspace import Workspace

INSTRUCTION = "You write short SEO articles. Use plain prose, no headings. " * 8


def seo_pair(topic: str, answer: str, system: str = INSTRUCTION) -> dict[str, object]:
    record = pair(topic, answer)
    record["messages"].insert(0, {"role": "system", "content": system})  # type: ignore[attr-defined]
    return record


def write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


async def test_import_a_file_then_undo_it(workspace: Workspace, tmp_path: Path) -> None:
    good = [json.dumps(pair(f"topic {i}", f"Answer number {i}.")) for i in range(3)]
    source = write_jsonl(tmp_path / "pairs.jsonl", [*good, '{"messages": [oops'])
    async with data_app(workspace) as pilot:
        app = pilot.app
        await pilot.press("i")
        assert isinstance(app.screen, PromptScreen)
        app.screen.query_one("#prompt-input").value = str(source)  # type: ignore[attr-defined]
        await pilot.press("enter")
        await settle(pilot)
        assert shown_ids(app) == [1, 2, 3]
        assert query_text(app) == "3 examples"
        assert any(
            text.startswith("Imported 3 examples") and "1 line quarantined" in text
            for text in notifications(app)
        )
        await pilot.press("u")
        await settle(pilot)
        assert data_screen(app).query_one("#data-empty").display
    with ExampleStore(workspace.db_path) as store:
        assert store.count(Query()) == 0
        assert [entry["line"] for entry in store.quarantined()] == [4]


async def test_importing_a_missing_file_says_so(workspace: Workspace) -> None:
    async with data_app(workspace) as pilot:
        app = pilot.app
        await pilot.press("i", *"nope.jsonl", "enter")
        await settle(pilot)
        assert any(text.startswith("No such file or folder") for text in notifications(app))


async def test_validate_marks_problems_and_duplicates(workspace: Workspace) -> None:
    fill(workspace, [pair("a", "Fine answer."), pair("b", ""), pair("a", "Fine answer.")])
    async with data_app(workspace) as pilot:
        app = pilot.app
        await pilot.press("v")
        await settle(pilot)
        assert any(text.startswith("Checked 3 examples: 1 error") for text in notifications(app))
        rows = list(data_screen(app).query_one("#data-table").rows_on_screen())  # type: ignore[attr-defined]
        assert [row.problem_count > 0 for row in rows] == [False, True, True]


async def test_strip_instructions_shows_savings_then_applies_as_one_step(
    workspace: Workspace,
) -> None:
    fill(workspace, [seo_pair(f"topic {i}", f"Answer {i}.") for i in range(6)])
    async with data_app(workspace) as pilot:
        app = pilot.app
        await pilot.press("c")
        await settle(pilot)
        assert isinstance(app.screen, CleanPreviewScreen)
        preview = widget_text(app.screen.query_one("#clean-preview", Static))
        assert "shared system message" in preview and "in 6 examples" in preview
        assert "6 examples change" in preview and "saved" in preview
        await pilot.press("y")
        await settle(pilot)
        with ExampleStore(workspace.db_path) as store:
            assert all(store.get(i).messages[0]["role"] == "user" for i in range(1, 7))
        await pilot.press("u")
        await settle(pilot)
    with ExampleStore(workspace.db_path) as store:
        assert all(store.get(i).messages[0]["content"] == INSTRUCTION for i in range(1, 7))


async def test_split_from_the_palette(workspace: Workspace) -> None:
    fill(workspace, [pair(f"topic {i}", f"Answer {i}.") for i in range(20)])
    async with data_app(workspace) as pilot:
        app = pilot.app
        await pilot.press("ctrl+p", *"data: split")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        assert "train 16, val 2, test 2" in app.screen.question
        await pilot.press("y")
        await settle(pilot)
    with ExampleStore(workspace.db_path) as store:
        assert store.split_counts() == {"train": 16, "val": 2, "test": 2, "unassigned": 0}


async def test_split_all_with_S_then_cancel_changes_nothing(workspace: Workspace) -> None:
    fill(workspace, [pair(f"topic {i}", f"Answer {i}.") for i in range(20)])
    async with data_app(workspace) as pilot:
        await settle(pilot)
        await pilot.press("S")
        await settle(pilot)
        assert isinstance(pilot.app.screen, ConfirmScreen)
        assert "train 16, val 2, test 2" in pilot.app.screen.question
        await pilot.press("n")
        await settle(pilot)
    with ExampleStore(workspace.db_path) as store:
        assert store.split_counts()["unassigned"] == 20


async def test_stats_panel_counts_splits_problems_and_duplicates(workspace: Workspace) -> None:
    ids = fill(workspace, [pair("a", "Same."), pair("a", "Same."), pair("b", "Other answer.")])
    with ExampleStore(workspace.db_path) as store:
        store.set_split(ids[:2], "train")
        store.set_flag([ids[2]], "bad")
    async with data_app(workspace) as pilot:
        app = pilot.app
        await pilot.press("x")
        await settle(pilot)
        panel = data_screen(app).query_one(StatsPanel)
        assert panel.display
        stats = panel.stats
        assert stats is not None
        assert (stats.total, stats.splits["train"], stats.flags["bad"]) == (3, 2, 1)
        assert stats.duplicates == 1
        summary = widget_text(panel.query_one("#stats-summary", Static))
        assert summary.splitlines()[0].split() == ["examples", "3", "with", "problems", "0"]
        assert "duplicates    1" in summary
        await pilot.press("x")
        assert not panel.display
