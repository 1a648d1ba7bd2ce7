"""The Textual app: four screens (Data, Train, Chat, Eval) over one workspace."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from textual import on, work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.reactive import reactive
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
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "1",
            "show('data')",
            "Data",
            id="go.data",
            tooltip="Import, browse, fix and split the training examples",
        ),
        Binding(
            "2",
            "show('train')",
            "Train",
            id="go.train",
            tooltip="Configure, start and watch training runs",
        ),
        Binding(
            "3", "show('chat')", "Chat", id="go.chat", tooltip="Chat with an exported GGUF model"
        ),
        Binding(
            "4",
            "show('eval')",
            "Eval",
            id="go.eval",
            tooltip="Judge the model against the old pipeline",
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

    def __init__(
        self, workspace: Workspace, probe: Callable[[], Accelerator] = detect_accelerator
    ) -> None:
        super().__init__()
        self.workspace = workspace
        self.probe = probe
        self.sub_title = workspace.name

    def on_mount(self) -> None:
        self.detect_accelerator()
        self.scan_jobs()
        self.set_interval(JOBS_SCAN_SECONDS, self.scan_jobs)

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


def _describe(active: object) -> str:
    binding = active.binding  # type: ignore[attr-defined]
    return str(binding.tooltip or binding.description)


def make_app(
    workspace: Workspace, probe: Callable[[], Accelerator] = detect_accelerator
) -> WorkbenchApp:
    """Build the app on an opened workspace: used by the CLI, the tests and the benchmarks."""
    return WorkbenchApp(workspace, probe=probe)
