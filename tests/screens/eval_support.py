"""Shared by the Eval screen tests and snapshots: evals written as the engine writes them (no
model, no judge), an exported GGUF, waiting, and reading what the screen shows."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from support import SIZE, app_on, screen_of, seo_records
from support import settle as settle_all
from textual.pilot import Pilot
from textual.widget import Widget

from screens.app import WorkbenchApp
from screens.eval import EvalScreen
from workbench.data.store import ExampleStore
from workbench.evaluate.evalset import EvalItem, item_from_example, write_items
from workbench.evaluate.events import EvalEvent, event_to_dict
from workbench.evaluate.generate import Generation
from workbench.evaluate.judge import Verdict
from workbench.evaluate.report import write_summary
from workbench.evaluate.results import ItemResult, append_result
from workbench.evaluate.spec import EvalSpec, save_spec
from workbench.export.manifest import ExportedFile, ExportManifest, write_manifest
from workbench.jobs import JobState, JobStatus, append_event, write_status
from workbench.workspace import Workspace

__all__ = ["SIZE"]

KEY = "sk-ant-screen-test-never-on-disk-4e1b"
STARTED = 1_772_000_000.0  # a fixed time: lists and snapshots stay the same
MODEL = "/srv/models/seo-writer-q8_0.gguf"


def with_test_split(workspace: Workspace, count: int = 3) -> Workspace:
    """The sample pairs: 10 to train on and `count` held out for the eval."""
    records = seo_records()
    with ExampleStore(workspace.db_path) as store:
        store.add_examples(records[:10], split="train")
        store.add_examples(records[100 : 100 + count], split="test")
    return workspace


@dataclass(frozen=True)
class Planned:
    """One item of a fake eval: what the judge said in each order (slot letters)."""

    cb: str  # fine-tuned in slot A
    bc: str  # old pipeline in slot A
    candidate: str = "A short answer from the fine-tuned model."
    error: str = ""


WIN = Planned("A", "B", "A complete answer that uses every keyword and ends with a call to action.")
LOSS = Planned("B", "A")
TIE = Planned("tie", "tie")
SPLIT = Planned("A", "A")  # each order prefers slot A: the orders disagree (a tie)
FAILED = Planned("", "", error="judge: HTTP 500: upstream overloaded (after 4 retries)")


REASONS = {
    "win": "the fine-tuned answer covers the keywords and reads naturally",
    "loss": "the old pipeline's answer is complete; the other stops early",
    "tie": "both answers are equally useful",
}


def _outcome(plan: Planned) -> tuple[str | None, bool]:
    """(outcome for the fine-tuned model, orders disagreed), as the engine aggregates."""
    if plan.error:
        return None, False
    first = {"A": "win", "B": "loss"}.get(plan.cb, "tie")
    second = {"A": "loss", "B": "win"}.get(plan.bc, "tie")
    return (first, False) if first == second else ("tie", True)


def _verdicts(plan: Planned) -> tuple[Verdict | None, Verdict | None]:
    outcome, disagreed = _outcome(plan)
    if outcome is None:
        return None, None
    reason = "slot A reads better" if disagreed else REASONS[outcome]
    return tuple(  # type: ignore[return-value]
        Verdict(winner, reason, input_tokens=900, output_tokens=40, calls=1)
        for winner in (plan.cb, plan.bc)
    )


def _result(item: EvalItem, plan: Planned, number: int) -> ItemResult:
    outcome, disagreed = _outcome(plan)
    cb, bc = _verdicts(plan)
    return ItemResult(
        index=item.index,
        example_id=item.example_id,
        candidate=Generation(plan.candidate, 0.4 + number * 0.1, 310, 60 + number),
        baseline=Generation(item.reference, None, 700, 330, estimated=True),
        cb=cb,
        bc=bc,
        outcome=outcome,  # type: ignore[arg-type]
        disagreed=disagreed,
        error=plan.error,
    )


def make_eval(
    workspace: Workspace,
    eval_id: str,
    plans: Sequence[Planned],
    state: JobState = "finished",
    started: float = STARTED,
    pid: int | None = None,
    done: int | None = None,
) -> Path:
    """An eval directory as the engine leaves it: spec, items, the first `done` results (all
    by default), status and summary. Items come from the workspace's test split."""
    eval_dir = workspace.evals_dir / eval_id
    eval_dir.mkdir(parents=True)
    save_spec(eval_dir, EvalSpec(model=MODEL, prices=dict(workspace.config.eval.prices)))
    with ExampleStore(workspace.db_path) as store:
        examples = list(store.iter_examples(split="test"))[: len(plans)]
    items = [item_from_example(i, example) for i, example in enumerate(examples)]
    write_items(eval_dir, items)
    for number, (item, plan) in enumerate(zip(items, plans, strict=True)):
        if done is None or number < done:
            append_result(eval_dir, _result(item, plan, number))
    write_status(
        eval_dir, JobStatus(eval_id, "eval", state, pid=pid, started_at=started, updated_at=started)
    )
    write_summary(eval_dir)
    return eval_dir


def append_events(eval_dir: Path, *events: EvalEvent) -> None:
    for event in events:
        append_event(eval_dir, event_to_dict(event))


def export_gguf(workspace: Workspace, source: Path | None = None) -> Path:
    """An export in `exports/` with its manifest: a copy of `source`, or a stand-in file."""
    export_dir = workspace.exports_dir / "20260224-101500-ab12"
    export_dir.mkdir(parents=True, exist_ok=True)
    quant = "f16" if source else "q8_0"
    path = export_dir / f"model-{quant}.gguf"
    if source is not None:
        shutil.copyfile(source, path)
    else:
        path.write_bytes(b"GGUF" + bytes(2_000_000))
    manifest = ExportManifest(
        id=export_dir.name,
        run_id="20260224-090000-cd34",
        checkpoint="best",
        base_model="demo",
        files=(ExportedFile(quant, path.name, path.stat().st_size, "0" * 64),),
        created_at=STARTED,
    )
    write_manifest(export_dir, manifest)
    return path


async def settle(pilot: Pilot[None], rounds: int = 6) -> None:
    """Let every worker finish, but the follower of a running eval, which never does, and
    every message that follows be handled."""
    await settle_all(pilot, rounds, endless={"eval-follow"}, tick=0.05)


@asynccontextmanager
async def eval_app(workspace: Workspace) -> AsyncIterator[Pilot[None]]:
    """The app on `workspace`, the Eval screen opened with `4` and its lists read."""
    async with app_on(workspace).run_test(size=SIZE) as pilot:
        await pilot.press("4")
        await settle(pilot)
        yield pilot


def eval_screen(app: WorkbenchApp) -> EvalScreen:
    """The Eval screen, also under a dialog."""
    return screen_of(app, EvalScreen)


def text_of(widget: Widget) -> str:
    """What a widget shows on the terminal now (its part of the screen), line by line."""
    strips = widget.screen._compositor.render_strips()
    region = widget.region
    return "\n".join(
        strip.crop(region.x, region.right).text.rstrip()
        for strip in strips[region.y : region.bottom]
    )


def svg_of(app: WorkbenchApp) -> str:
    """The screen as the snapshot tests see it (every character drawn)."""
    return app.export_screenshot()
