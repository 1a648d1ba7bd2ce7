"""The app shell, driven by key presses: screens, header, palette, help and quit."""

from __future__ import annotations

import os
from pathlib import Path

from data_support import fill, seo_records
from textual.message import Message
from textual.pilot import Pilot
from textual.widgets import Label, Markdown
from textual.widgets._footer import FooterKey

from screens.app import WorkbenchApp, make_app
from screens.chat import ChatScreen
from screens.data import DataScreen
from screens.eval import EvalScreen
from screens.help import HelpScreen
from screens.train import TrainScreen
from workbench.accelerator import Accelerator, Gpu
from workbench.jobs import JobStatus, write_status
from workbench.workspace import Workspace

SIZE = (120, 36)
H100 = Accelerator((Gpu("NVIDIA H100 80GB HBM3", 70_000, 81_559, 12),))


def header_text(app: WorkbenchApp, label_id: str) -> str:
    return str(app.screen.query_one(f"#{label_id}", Label).render())


async def test_number_keys_switch_between_the_four_screens(workspace: Workspace) -> None:
    app = make_app(workspace, probe=Accelerator)
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, DataScreen)
        for key, screen in (
            ("2", TrainScreen),
            ("3", ChatScreen),
            ("4", EvalScreen),
            ("1", DataScreen),
        ):
            await pilot.press("f2")  # the Data screen takes digits as screen keys
            await pilot.press(key)
            assert isinstance(app.screen, screen)
            assert app.screen.query_one(".tab.-current", Label).id == f"tab-{screen.MODE}"


async def test_function_keys_switch_screens_even_while_typing(workspace: Workspace) -> None:
    app = make_app(workspace, probe=Accelerator)
    async with app.run_test(size=SIZE) as pilot:
        for key, screen in (
            ("f4", ChatScreen),
            ("f5", EvalScreen),
            ("f3", TrainScreen),
            ("f4", ChatScreen),
            ("f2", DataScreen),
        ):
            await pilot.press(key)
            await pilot.pause()
            assert isinstance(app.screen, screen)


async def test_header_shows_workspace_gpu_and_running_jobs(workspace: Workspace) -> None:
    messages: list[Message] = []
    app = make_app(workspace, probe=lambda: H100)
    job_dir = workspace.runs_dir / "r1"
    job_dir.mkdir()
    write_status(job_dir, JobStatus(id="r1", kind="run", state="running", pid=os.getpid()))
    async with app.run_test(size=SIZE, message_hook=messages.append) as pilot:
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert header_text(app, "header-workspace") == f"workbench · {workspace.name}"
        assert (
            header_text(app, "header-accelerator") == "NVIDIA H100 80GB HBM3 · 68.4/79.6 GiB free"
        )
        assert header_text(app, "header-jobs") == "1 running (run)"
        assert any(isinstance(m, WorkbenchApp.AcceleratorDetected) for m in messages)


async def test_header_updates_when_a_job_ends(workspace: Workspace) -> None:
    app = make_app(workspace, probe=Accelerator)
    job_dir = workspace.runs_dir / "r1"
    job_dir.mkdir()
    write_status(job_dir, JobStatus(id="r1", kind="run", state="running", pid=os.getpid()))
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert header_text(app, "header-jobs") == "1 running (run)"
        write_status(job_dir, JobStatus(id="r1", kind="run", state="finished", pid=os.getpid()))
        app.scan_jobs()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert header_text(app, "header-jobs") == "no jobs running"


async def test_command_palette_switches_screens(workspace: Workspace) -> None:
    app = make_app(workspace, probe=Accelerator)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p")
        await pilot.press(*"go: eval")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, EvalScreen)


async def test_help_shows_this_screen_and_its_keys_then_closes(workspace: Workspace) -> None:
    app = make_app(workspace, probe=Accelerator)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2", "f1")
        assert isinstance(app.screen, HelpScreen)
        text = app.screen.query_one(Markdown).source
        assert "## Train" in text
        assert "| `1` | Import, browse, fix and split the training examples |" in text
        assert "| `^q` | Quit the app; background jobs keep running |" in text
        await pilot.press("escape")
        assert isinstance(app.screen, TrainScreen)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)


async def test_help_starts_with_the_focused_widget(workspace: Workspace) -> None:
    app = make_app(workspace, probe=Accelerator)
    async with app.run_test(size=SIZE) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press("f1")  # the workspace is empty: its Data screen says how to import
        text = app.screen.query_one(Markdown).source
        assert text.startswith("## Here\nNo examples in this workspace yet")


async def test_ctrl_q_quits_cleanly(workspace: Workspace) -> None:
    app = make_app(workspace, probe=Accelerator)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+q")
    assert app.return_code == 0


async def test_quitting_leaves_running_jobs_alone(workspace: Workspace, tmp_path: Path) -> None:
    job_dir = workspace.runs_dir / "r1"
    job_dir.mkdir()
    write_status(job_dir, JobStatus(id="r1", kind="run", state="running", pid=os.getpid()))
    app = make_app(workspace, probe=Accelerator)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+q")
    assert (job_dir / "status.json").read_text().count('"running"') == 1


def footer_keys(app: WorkbenchApp) -> list[FooterKey]:
    return list(app.screen.query(FooterKey))


def shown_keys(app: WorkbenchApp) -> list[str]:
    return [key.key for key in footer_keys(app)]


async def wait_for_workers(pilot: Pilot[None]) -> None:
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()


async def test_the_other_screens_are_prepared_in_the_background(workspace: Workspace) -> None:
    messages: list[Message] = []
    app = make_app(workspace, probe=Accelerator, warm_up=True)
    async with app.run_test(size=SIZE, message_hook=messages.append) as pilot:
        await wait_for_workers(pilot)
        prepared = [m for m in messages if isinstance(m, WorkbenchApp.ScreensPrepared)]
        assert [m.modes for m in prepared] == [("train", "chat", "eval")]
        assert isinstance(app.screen, DataScreen)  # prepared, not shown
        screens = app.mode_screens()
        assert [type(screens[mode]) for mode in ("train", "chat", "eval")] == [
            TrainScreen,
            ChatScreen,
            EvalScreen,
        ]
        assert any(isinstance(m, TrainScreen.RunsListed) for m in messages)  # loaded meanwhile
        for key, mode in (("2", "train"), ("3", "chat"), ("4", "eval")):
            await pilot.press("f2", key)
            assert app.screen is screens[mode]  # the first visit shows the prepared one
            assert app.screen.query_one(".tab.-current", Label).id == f"tab-{mode}"


async def test_tests_and_headless_runs_mount_only_the_screens_shown(workspace: Workspace) -> None:
    app = make_app(workspace, probe=Accelerator)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        assert list(app.mode_screens()) == ["data"]
        await pilot.press("f4")
        assert list(app.mode_screens()) == ["data", "chat"]


async def test_footer_keeps_its_keys_on_a_return_and_follows_focus(workspace: Workspace) -> None:
    fill(workspace, seo_records()[:5])
    app = make_app(workspace, probe=Accelerator)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for_workers(pilot)
        assert "e" in shown_keys(app)  # the table: edit
        await pilot.press("slash")  # into the search field: typing keys only
        await wait_for_workers(pilot)
        searching = footer_keys(app)
        assert "e" not in shown_keys(app) and "slash" in shown_keys(app)
        await pilot.press("f3")
        await wait_for_workers(pilot)
        assert "n" in shown_keys(app)  # the Train screen's keys
        await pilot.press("f2")
        await wait_for_workers(pilot)
        assert footer_keys(app) == searching  # the same widgets: nothing was rebuilt
        await pilot.press("down")  # back to the table
        await wait_for_workers(pilot)
        assert "e" in shown_keys(app)


async def test_a_theme_changed_meanwhile_restyles_a_screen_on_its_return(
    workspace: Workspace,
) -> None:
    app = make_app(workspace, probe=Accelerator)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3", "f2")
        await wait_for_workers(pilot)
        before = app.screen.query_one("#header").styles.background
        app.theme = "textual-light" if app.theme != "textual-light" else "nord"
        await pilot.pause()
        on_data = app.screen.query_one("#header").styles.background
        assert on_data != before
        await pilot.press("f3")
        await pilot.pause()
        assert isinstance(app.screen, TrainScreen)
        assert app.screen.query_one("#header").styles.background == on_data


async def test_quitting_while_screens_are_prepared_waits_for_the_one_mounting(
    workspace: Workspace,
) -> None:
    messages: list[Message] = []
    app = make_app(workspace, probe=Accelerator, warm_up=True)
    async with app.run_test(size=SIZE, message_hook=messages.append) as pilot:
        await pilot.press("ctrl+q")  # at once, while the first screens are being prepared
    assert app.return_code == 0  # no screen failed in a half-torn-down mount
    assert not any(isinstance(m, WorkbenchApp.ScreensPrepared) for m in messages)
