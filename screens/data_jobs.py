"""The Data screen's jobs: the data engine's event streams turned into progress and a summary.

A job runs in the screen's worker thread: `job(store, cancel, report) -> str`. It calls
`report(what, done, total)` as it goes (the screen shows a progress bar) and returns the one line
to tell the user at the end. Nothing here touches a widget.

The engine modules are imported inside the jobs (they bring numpy), so that the app starts
without them; the screen's first worker imports them in the background.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.data.store import ExampleStore, StoreError

if TYPE_CHECKING:
    from workbench.config import WorkbenchConfig
    from workbench.data.clean import CleanPreview, DedupePlan
    from workbench.data.importer import ImportFinished
    from workbench.data.split import SplitPlan
    from workbench.data.validate import ValidateFinished

Report = Callable[[str, int, int], None]
"""(what is being done, how far, out of how much; 0: unknown)."""
Job = Callable[[ExampleStore, threading.Event, Report], str]


def plural(count: int, what: str = "example") -> str:
    return f"{count:,} {what}{'' if count == 1 else 's'}"


def import_job(path: Path, root: Path, near_threshold: float) -> Job:
    """Import one file as one undoable action; lines that fail go to the quarantine."""

    def run(store: ExampleStore, cancel: threading.Event, report: Report) -> str:
        from workbench.data.importer import import_files

        events = import_files(
            store, [path], cancel=cancel, root=root, near_threshold=near_threshold
        )
        finished = _follow_import(events, report)
        return import_summary(finished)

    return run


def _follow_import(events: Iterator[object], report: Report) -> ImportFinished:
    from workbench.data.importer import FileFailed, ImportFinished, ImportProgress

    for event in events:
        if isinstance(event, ImportProgress):
            report(f"importing {event.name}: {event.imported:,} in", event.done, event.total)
        elif isinstance(event, FileFailed):
            raise ImportFailed(f"{event.name}: {event.error}")
        elif isinstance(event, ImportFinished):
            return event
    raise ImportFailed("the import stopped before it finished")


class ImportFailed(Exception):
    """A file that could not be imported at all; the message says why."""


def job_errors() -> tuple[type[Exception], ...]:
    """What a job can fail with that the user can do something about (the message says what)."""
    import sqlite3

    from workbench.data.formats import FormatError
    from workbench.data.split import SplitError

    return (StoreError, sqlite3.Error, OSError, ImportFailed, FormatError, SplitError)


def load_engine() -> None:
    """Import the engine's modules (numpy among them) ahead of the first job."""
    from workbench.data import clean, importer, split, stats, validate  # noqa: F401


def import_summary(finished: ImportFinished) -> str:
    """`Imported 118 examples (3 with warnings); 3 lines quarantined (q lists them). u undoes.`"""
    text = f"Imported {plural(finished.imported)}"
    if finished.with_warnings:
        text += f" ({finished.with_warnings:,} with warnings)"
    duplicates = finished.exact_duplicates + (finished.near_duplicates or 0)
    if duplicates:
        text += f", {plural(duplicates, 'duplicate')} marked"
    if finished.quarantined:
        text += f"; {plural(finished.quarantined, 'line')} quarantined (q lists them)"
    if finished.cancelled:
        text += "; cancelled before the end"
    return text + ". u undoes the import."


def validate_job(config: WorkbenchConfig) -> Job:
    """Check every live example again and mark duplicates (not an undoable change)."""

    def run(store: ExampleStore, cancel: threading.Event, report: Report) -> str:
        from workbench.data.validate import ValidateFinished, ValidateProgress, validate_store

        for event in validate_store(store, config, cancel):
            if isinstance(event, ValidateProgress):
                report("validating", event.done, event.total)
            elif isinstance(event, ValidateFinished):
                return validate_summary(event)
        return "Validation stopped."

    return run


def validate_summary(finished: ValidateFinished) -> str:
    """`Checked 121 examples: 1 error, 8 warnings (3 duplicates, 3 near duplicates).`"""
    if finished.cancelled:
        return f"Validation cancelled after {plural(finished.checked)}."
    text = (
        f"Checked {plural(finished.checked)}: {plural(finished.errors, 'error')},"
        f" {plural(finished.warnings, 'warning')}"
    )
    duplicates = [
        plural(finished.exact_duplicates, "duplicate") if finished.exact_duplicates else "",
        plural(finished.near_duplicates, "near duplicate") if finished.near_duplicates else "",
    ]
    if any(duplicates):
        text += f" ({', '.join(d for d in duplicates if d)})"
    return text + ". f filters on problems."


def strip_job(preview: CleanPreview, include_variants: bool) -> Job:
    """Strip the previewed instructions, as one undoable action."""

    def run(store: ExampleStore, cancel: threading.Event, report: Report) -> str:
        from workbench.data import clean

        report("stripping instructions", 0, 0)
        changed = clean.strip_instructions(store, preview.instructions, include_variants)
        return f"Stripped instructions from {plural(changed)}. u undoes it."

    return run


def dedupe_job(plan: DedupePlan, delete: bool) -> Job:
    def run(store: ExampleStore, cancel: threading.Event, report: Report) -> str:
        from workbench.data import clean

        changed = clean.apply_dedupe(store, plan, delete=delete)
        verb = "Deleted" if delete else "Tagged"
        return f"{verb} {plural(changed, 'copy')} of duplicates. u undoes it."

    return run


def whitespace_job() -> Job:
    def run(store: ExampleStore, cancel: threading.Event, report: Report) -> str:
        from workbench.data import clean

        report("tidying whitespace", 0, 0)
        return f"Tidied the whitespace of {plural(clean.normalize_whitespace(store))}. u undoes."

    return run


def split_job(plan: SplitPlan) -> Job:
    def run(store: ExampleStore, cancel: threading.Event, report: Report) -> str:
        from workbench.data.split import apply_split

        moved = apply_split(store, plan)
        counts = plan.counts
        return (
            f"Split: train {counts['train']:,}, val {counts['val']:,}, test {counts['test']:,}"
            f" ({plural(moved)} moved). u undoes it."
        )

    return run


def plan_split(store: ExampleStore, config: WorkbenchConfig) -> SplitPlan:
    """The split the workspace's settings ask for (`data.val_fraction`, `test_fraction`,
    `split_seed`); a validation size is suggested when `val_fraction` is 0."""
    from workbench.data import split

    data = config.data
    return split.plan_split(
        store,
        val=data.val_fraction or None,
        test=data.test_fraction,
        seed=data.split_seed,
        near_threshold=data.near_duplicate_threshold,
    )
