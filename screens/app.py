"""The Textual app: four screens (Data, Train, Chat, Eval) over one workspace."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, cast

from textual import events, on, work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.reactive import reactive
from textual.widget import AwaitMount
from textual.worker import Worker, WorkerState

from screens.base import WorkbenchScreen
from screens.chat import ChatScreen
from screens.commands import WorkbenchCommands
from screens.data import DataScreen
from screens.eval import EvalScreen
from screens.help import HelpScreen, help_markdown
from screens.train import TrainScreen
from workbench.accelerator import Accelerator, detect_accelerator
from workbench.jobs import JobStatus, running_jobs
from workbench.workspace import Workspace

JOBS_SCAN_SECONDS = 2.0
PREPARE_GAP_SECONDS = 0.05
"""Between two screens prepared in the background: keys pressed meanwhile are answered first."""


class WorkbenchApp(App[None]):
    """The workbench: one workspace, four screens as modes, jobs watched in the header."""

    TITLE = "workbench"
    CSS_PATH = "workbench.tcss"
    MODES: ClassVar[dict[str, type[WorkbenchScreen]]] = {  # type: ignore[assignment]
        "data": DataScreen,
        "train": TrainScreen,
        "chat": ChatScreen,
        "eval": EvalScreen,
    }
    DEFAULT_MODE = "data"
    COMMANDS = App.COMMANDS | {WorkbenchCommands}
    # 1-4 are not in the footer: the header shows them as the screens' tabs.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "1",
            "show('data')",
            "Data",
            id="go.data",
            tooltip="Import, browse, fix and split the training examples",
            show=False,
        ),
        Binding(
            "2",
            "show('train')",
            "Train",
            id="go.train",
            tooltip="Configure, start and watch training runs",
            show=False,
        ),
        Binding(
            "3",
            "show('chat')",
            "Chat",
            id="go.chat",
            tooltip="Chat with an exported GGUF model",
            show=False,
        ),
        Binding(
            "4",
            "show('eval')",
            "Eval",
            id="go.eval",
            tooltip="Judge the model against the old pipeline",
            show=False,
        ),
        # F2-F5 switch screens even while typing in a text field (digits go to the field).
        *(
            Binding(
                f"f{number}",
                f"show('{mode}')",
                mode.title(),
                id=f"go.{mode}.fkey",
                tooltip=f"The {mode.title()} screen (works while typing)",
                show=False,
                priority=True,
            )
            for number, mode in ((2, "data"), (3, "train"), (4, "chat"), (5, "eval"))
        ),
        Binding(
            "f1,question_mark",
            "help",
            "Help",
            id="app.help",
            tooltip="Help for the focused widget, this screen and its keys",
        ),
        Binding(
            "ctrl+q",
            "quit",
            "Quit",
            id="app.quit",
            priority=True,
            tooltip="Quit the app; background jobs keep running",
        ),
    ]

    accelerator: reactive[Accelerator | None] = reactive(None)
    running_jobs: reactive[tuple[JobStatus, ...]] = reactive(())

    @dataclass
    class AcceleratorDetected(Message):
        accelerator: Accelerator

    @dataclass
    class JobsScanned(Message):
        jobs: tuple[JobStatus, ...]

    @dataclass
    class ScreensPrepared(Message):
        modes: tuple[str, ...]
        """The modes whose screens were mounted in the background."""

    def __init__(
        self,
        workspace: Workspace,
        probe: Callable[[], Accelerator] = detect_accelerator,
        warm_up: bool | None = None,
    ) -> None:
        super().__init__()
        self.workspace = workspace
        self.probe = probe
        self.warm_up = warm_up
        """Prepare the other screens once the first has painted, then freeze the start-up heap
        (`warm_up_screens`). None: only in a real terminal (`run()` not headless)."""
        self.quitting = False
        """Set by the quit key: no more screens are prepared."""
        self.sub_title = workspace.name

    def run(self, *, headless: bool = False, **kwargs: Any) -> None:
        """Start the app; by default, a session in a terminal warms up (see `warm_up`), while
        headless runs (snapshots) stay as lean and deterministic as tests."""
        if self.warm_up is None:
            self.warm_up = not headless
        return super().run(headless=headless, **kwargs)

    def on_mount(self) -> None:
        self.detect_accelerator()
        self.scan_jobs()
        self.set_interval(JOBS_SCAN_SECONDS, self.scan_jobs)
        if self.warm_up:
            self.call_after_refresh(self.warm_up_screens)

    @work(exclusive=True, exit_on_error=False, group="warm-up", description="prepare the screens")
    async def warm_up_screens(self) -> None:
        """Mount the screens not shown yet, one at a time, so that a first visit costs what a
        later one does (mounting a screen takes 100-200 ms). Keys pressed meanwhile are answered
        between two screens; a screen the user opened already is skipped."""
        prepared: list[str] = []
        for mode in self.MODES:
            await asyncio.sleep(PREPARE_GAP_SECONDS)
            mounted = self._prepare_mode(mode)
            if mounted is not None:
                prepared.append(mode)
                await mounted
        if not self.quitting:
            _freeze_heap()
            self.post_message(self.ScreensPrepared(tuple(prepared)))

    def _prepare_mode(self, mode: str) -> AwaitMount | None:
        """Textual's first step of `switch_mode` (build and mount the mode's screen) without
        showing it; the screen is then told it is hidden, as a screen left for another is.
        None if the mode has its screen already, or if the app is closing."""
        if self.quitting or not self.is_running or mode in self.mode_screens():
            return None
        mounted = self._init_mode(mode)
        self.mode_screens()[mode].post_message(events.ScreenSuspend())
        return mounted

    def mode_screens(self) -> dict[str, WorkbenchScreen]:
        """The screens built so far (shown, or prepared in the background), by mode."""
        return {
            mode: cast(WorkbenchScreen, stack[0])
            for mode, stack in self._screen_stacks.items()
            if stack and mode in self.MODES
        }

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="probe",
        description="detect the GPU",
    )
    def detect_accelerator(self) -> None:
        self.post_message(self.AcceleratorDetected(self.probe()))

    @work(
        thread=True,
        exclusive=True,
        exit_on_error=False,
        group="jobs",
        description="scan running jobs",
    )
    def scan_jobs(self) -> None:
        self.post_message(self.JobsScanned(tuple(running_jobs(self.workspace.root))))

    def on_workbench_app_accelerator_detected(self, message: AcceleratorDetected) -> None:
        self.accelerator = message.accelerator

    def on_workbench_app_jobs_scanned(self, message: JobsScanned) -> None:
        self.running_jobs = message.jobs

    @on(Worker.StateChanged)
    def report_worker_failure(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR:
            self.notify(
                f"{event.worker.description} failed: {event.worker.error}",
                severity="error",
                timeout=8,
            )

    async def action_quit(self) -> None:
        """Quit; a screen being prepared finishes mounting first (at most ~0.2 s), as a screen
        torn down halfway through its mount fails in its own start-up code."""
        self.quitting = True
        warming = [worker for worker in self.workers if worker.group == "warm-up"]
        if warming:
            await self.workers.wait_for_complete(warming)
        self.exit()

    def action_show(self, mode: str) -> None:
        """Switch to one of the four screens."""
        if mode != self.current_mode:
            self.switch_mode(mode)

    def action_help(self) -> None:
        """Help for what has focus, this screen and its keys."""
        if isinstance(self.screen, HelpScreen):
            return
        screen_help = getattr(self.screen, "HELP", "")
        keys = [
            (active.binding.key_display or self.get_key_display(active.binding), _describe(active))
            for active in self.screen.active_bindings.values()
            if active.binding.id
        ]
        self.push_screen(HelpScreen(help_markdown(self.focused, screen_help, keys)))


def _freeze_heap() -> None:
    """Move what start-up built (modules, styles, the four screens) out of the collector's
    reach: a full collection then scans only newer objects, a few ms instead of a 50-250 ms
    pause that lands on whatever key is being answered. Once per process: cycles among frozen
    objects are never collected, so a second app (tests) must not freeze more leftovers."""
    if gc.get_freeze_count() == 0:
        gc.collect()
        gc.freeze()


def _describe(active: object) -> str:
    binding = active.binding  # type: ignore[attr-defined]
    return str(binding.tooltip or binding.description)


def make_app(
    workspace: Workspace,
    probe: Callable[[], Accelerator] = detect_accelerator,
    warm_up: bool | None = None,
) -> WorkbenchApp:
    """Build the app on an opened workspace: used by the CLI, the tests and the benchmarks.

    `warm_up`: mount all four screens in the background after the first paint, so that every
    screen switch is fast (see `WorkbenchApp.warm_up`). By default only a session in a real
    terminal does; the benchmarks and the tests of it pass True.
    """
    return WorkbenchApp(workspace, probe=probe, warm_up=warm_up)
