"""The header on every screen: workspace, screen tabs, accelerator and running jobs."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label

from workbench.accelerator import Accelerator
from workbench.jobs import JobStatus

SCREEN_TABS = (("data", "1 Data"), ("train", "2 Train"), ("chat", "3 Chat"), ("eval", "4 Eval"))


class WorkbenchHeader(Horizontal):
    """One line: `workbench · NAME │ 1 Data 2 Train 3 Chat 4 Eval │ GPU │ jobs`."""

    HELP = "The header: workspace name, screens (keys 1-4), accelerator and running jobs."

    def __init__(self, workspace_name: str, current: str) -> None:
        super().__init__(id="header")
        self.workspace_name = workspace_name
        self.current = current

    def compose(self) -> ComposeResult:
        yield Label(f"workbench · [b]{self.workspace_name}[/b]", id="header-workspace")
        for mode, title in SCREEN_TABS:
            classes = "tab -current" if mode == self.current else "tab"
            yield Label(f" {title} ", classes=classes, id=f"tab-{mode}")
        yield Label("", id="header-spacer")
        yield Label("…", id="header-accelerator")
        yield Label("no jobs", id="header-jobs")

    def on_mount(self) -> None:
        self.watch(self.app, "accelerator", self.show_accelerator)
        self.watch(self.app, "running_jobs", self.show_jobs)

    def show_accelerator(self, accelerator: Accelerator | None) -> None:
        label = self.query_one("#header-accelerator", Label)
        if accelerator is None:
            label.update("detecting GPU…")
            return
        label.update(accelerator.label)
        label.set_class(accelerator.is_cuda, "-gpu")
        label.tooltip = accelerator.note or None

    def show_jobs(self, jobs: tuple[JobStatus, ...]) -> None:
        label = self.query_one("#header-jobs", Label)
        if not jobs:
            label.update("no jobs running")
        else:
            kinds = ", ".join(sorted({job.kind for job in jobs}))
            label.update(f"{len(jobs)} running ({kinds})")
        label.set_class(bool(jobs), "-busy")
