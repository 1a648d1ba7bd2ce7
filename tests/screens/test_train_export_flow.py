"""A real export from the Train screen: the sample workspace trains the demo model for four
steps, then `e` on the run exports best/ (q8_0) or a non-best checkpoint (f16) as the detached
export job, the screen follows it to the end, and the GGUF chats through llama.cpp. Also the
export dialog under keys typed faster than it handles them."""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import pytest
from filelock import FileLock
from textual import events
from textual.pilot import Pilot
from textual.widgets import OptionList

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_train_screen_support import SIZE, app_on, live, shown, wait_until

from screens.train import TrainScreen, export_text
from screens.train_export import CheckpointChoice, ExportChoice, ExportScreen
from workbench.chat.engine import ChatModel, ChatSettings
from workbench.data import clean
from workbench.data.importer import import_pending
from workbench.data.store import ExampleStore, Query
from workbench.export.events import ExportFinished, ExportStarted, FileWritten
from workbench.export.manifest import ExportManifest, read_manifest, sha256_of
from workbench.jobs import observed_status
from workbench.train.runs import read_history, start_run
from workbench.workspace import Workspace, open_workspace

SAMPLE_DATA = Path(__file__).resolve().parents[2] / "sample_data"
TINY = {
    "max_steps": 4,
    "eval_steps": 2,
    "batch_size": 4,
    "max_seq_length": 96,
    "lora_r": 4,
    "lora_alpha": 8,
}
"""Four steps with an eval (so best/ and a checkpoint) every two: checkpoint-2 and -4 stay."""
TRAIN, VAL = 8, 2
ENDED = (" finished", " failed", " stopped", " lost")


# --- the trained sample workspace --------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample workspace after a real run, trained once for all xdist workers; read-only."""
    base = tmp_path_factory.getbasetemp()
    shared = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "train-export"
    with FileLock(f"{shared}.lock"):
        if not (shared / "ready").is_file():
            shutil.rmtree(shared, ignore_errors=True)
            train_sample(shared)
            (shared / "ready").touch()
    return shared / "ws"


def train_sample(shared: Path) -> None:
    """As a user would: open the sample (its pairs are imported), strip the old pipeline's
    instructions, hold out a tiny split, and train `workbench:demo-tiny` for four steps.

    This module fixture is set up before the per-test machine isolation, so it isolates the
    cache (where the demo model is built) itself."""
    with pytest.MonkeyPatch.context() as env:
        for variable in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
            env.setenv(variable, str(shared / "home" / variable.lower()))
        env.setenv("HF_HUB_OFFLINE", "1")
        env.setenv("TRANSFORMERS_OFFLINE", "1")
        ignore = shutil.ignore_patterns("examples.db*", "runs", "exports", "evals")
        shutil.copytree(SAMPLE_DATA, shared / "ws", ignore=ignore)
        workspace = open_workspace(shared / "ws")
        import_pending(workspace)
        with ExampleStore(workspace.db_path) as store:
            clean.strip_instructions(store, clean.find_instructions(store).instructions)
            ids = store.ids(Query())
            store.set_split(ids[:TRAIN], "train")
            store.set_split(ids[TRAIN : TRAIN + VAL], "val")
        run_dir = start_run(workspace, TINY)
    deadline = time.monotonic() + 180
    while (status := observed_status(run_dir)) is None or status.active:
        assert time.monotonic() < deadline, "the tiny run did not end"
        time.sleep(0.1)
    log = (run_dir / "output.log").read_text(errors="replace")[-2000:]
    assert status.state == "finished", log


def copy_of(trained: Path, tmp_path: Path) -> tuple[Workspace, Path]:
    """This test's own copy of the trained workspace (its exports stay its own) and the run."""
    workspace = open_workspace(shutil.copytree(trained, tmp_path / "ws"))
    (run_dir,) = [path for path in workspace.runs_dir.iterdir() if path.is_dir()]
    return workspace, run_dir


# --- driving the screen ------------------------------------------------------------------------


async def open_export_dialog(pilot: Pilot[None], run_id: str) -> list[str]:
    """Go to the Train screen, wait for the run to show, press `e`; the adapters offered."""
    await pilot.press("2")
    await wait_until(pilot, lambda: live(pilot).history is not None, timeout=30)
    assert run_id in shown(pilot, "#train-stats")
    await pilot.press("e")
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, ExportScreen), timeout=30)
    await wait_until(pilot, lambda: isinstance(pilot.app.focused, OptionList), timeout=10)
    options = pilot.app.screen.query_one(OptionList)
    return [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]


async def export_to_the_end(pilot: Pilot[None]) -> tuple[Path, str]:
    """After Ctrl+S: the export's directory and the screen's last word on it."""
    await wait_until(pilot, lambda: isinstance(pilot.app.screen, TrainScreen), timeout=10)
    screen = pilot.app.screen
    assert isinstance(screen, TrainScreen)
    await wait_until(pilot, lambda: screen.export_dir is not None, timeout=30)
    assert screen.export_dir is not None
    export_dir = screen.export_dir

    def ended() -> bool:
        return any(f"{export_dir.name}{word}" in shown(pilot, "#train-notice") for word in ENDED)

    await wait_until(pilot, ended, timeout=180, what="the export to end on the screen")
    return export_dir, shown(pilot, "#train-notice")


def check_files(export_dir: Path, manifest: ExportManifest, names: list[str]) -> None:
    """The manifest lists exactly `names`, which are all the GGUFs there, sizes and digests."""
    assert [item.file for item in manifest.files] == names
    assert sorted(path.name for path in export_dir.glob("*.gguf")) == sorted(names)
    for item in manifest.files:
        path = export_dir / item.file
        assert (item.bytes, item.sha256) == (path.stat().st_size, sha256_of(path))


# --- the flow ----------------------------------------------------------------------------------


@pytest.mark.slow
async def test_best_exports_as_q8_0_from_the_screen_and_chats(
    trained: Path, tmp_path: Path
) -> None:
    workspace, run_dir = copy_of(trained, tmp_path)
    best = read_history(run_dir).best
    assert best is not None
    async with app_on(workspace).run_test(size=SIZE) as pilot:
        labels = await open_export_dialog(pilot, run_dir.name)
        assert (
            labels[0]
            == f"best: lowest eval loss (step {best.step}, eval loss {best.eval_loss:.4f})"
        )
        assert [label.split(" ")[0] for label in labels[1:]] == ["checkpoint-4", "checkpoint-2"]
        await pilot.press("ctrl+s")  # best is highlighted and q8_0 ticked when it opens
        export_dir, notice = await export_to_the_end(pilot)

    gguf = f"{run_dir.name}-best-q8_0.gguf"
    assert f"export {export_dir.name} finished" in notice and gguf in notice, notice
    assert export_dir.parent == workspace.exports_dir
    manifest = read_manifest(export_dir)
    assert manifest is not None
    assert (manifest.run_id, manifest.checkpoint, manifest.checkpoint_step) == (
        run_dir.name,
        "best",
        best.step,
    )
    check_files(export_dir, manifest, [gguf])
    with ChatModel.load(export_dir / gguf, ChatSettings(n_ctx=256)) as model:
        question = [{"role": "user", "content": "A title for a page about tomato seedlings"}]
        done = model.answer(question, ChatSettings(temperature=0, max_tokens=6))
    assert done.completion_tokens >= 1 and done.stop_reason in ("end", "length")


@pytest.mark.slow
async def test_a_checkpoint_that_is_not_best_exports_as_f16_and_says_so(
    trained: Path, tmp_path: Path
) -> None:
    workspace, run_dir = copy_of(trained, tmp_path)
    best = read_history(run_dir).best
    assert best is not None
    step = 2 if best.step == 4 else 4
    async with app_on(workspace).run_test(size=SIZE) as pilot:
        labels = await open_export_dialog(pilot, run_dir.name)
        index = next(i for i, label in enumerate(labels) if label.startswith(f"checkpoint-{step} "))
        await pilot.press(*["down"] * index)
        await pilot.press("tab", "space", "down", "space")  # tick f16, untick q8_0
        await pilot.press("ctrl+s")
        export_dir, notice = await export_to_the_end(pilot)

    gguf = f"{run_dir.name}-step-{step}-f16.gguf"
    assert f"export {export_dir.name} finished" in notice and gguf in notice, notice
    manifest = read_manifest(export_dir)
    assert manifest is not None
    assert (manifest.checkpoint, manifest.checkpoint_step) == (f"step-{step}", step)
    check_files(export_dir, manifest, [gguf])


# --- the dialog under fast keys (no export) ----------------------------------------------------

CHOICES = [CheckpointChoice("best", "best"), CheckpointChoice("4", "checkpoint-4")]


def burst(pilot: Pilot[None], *keys: tuple[str, str | None]) -> None:
    """Queue key presses at once, as a fast typist, a paste or `tmux send-keys` delivers them
    (Pilot's `press` would let the app handle each before sending the next)."""
    for key, character in keys:
        pilot.app.post_message(events.Key(key, character))


async def test_quick_space_down_space_ticks_the_rows_it_was_pressed_on(
    workspace: Workspace,
) -> None:
    picked: list[ExportChoice | None] = []
    async with app_on(workspace).run_test(size=SIZE) as pilot:
        pilot.app.push_screen(ExportScreen("r1", CHOICES), picked.append)
        await wait_until(pilot, lambda: isinstance(pilot.app.focused, OptionList), timeout=10)
        assert shown(pilot, "#export-writes") == "Writes: q8_0"  # ticks differ only by colour
        await pilot.press("tab")
        burst(pilot, ("space", " "), ("down", None), ("space", " "))  # f16 on, q8_0 off
        await wait_until(pilot, lambda: shown(pilot, "#export-writes") == "Writes: f16", timeout=10)
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: picked, timeout=10)
    assert picked == [ExportChoice("best", ("f16",))]


async def test_enter_exports_the_adapter_it_was_pressed_on(workspace: Workspace) -> None:
    picked: list[ExportChoice | None] = []
    async with app_on(workspace).run_test(size=SIZE) as pilot:
        pilot.app.push_screen(ExportScreen("r1", CHOICES), picked.append)
        await wait_until(pilot, lambda: isinstance(pilot.app.focused, OptionList), timeout=10)
        burst(pilot, ("enter", "\r"), ("down", None))
        await wait_until(pilot, lambda: picked, timeout=10)
    assert picked == [ExportChoice("best", ("q8_0",))]


# --- what the screen says when an export finished ----------------------------------------------


def test_the_finished_line_names_only_the_files_kept_and_where_they_are(tmp_path: Path) -> None:
    from workbench.export.events import ExportProgress

    export_dir = tmp_path / "exports" / "20261128-030000-ab12"
    progress = ExportProgress()
    progress.add(ExportStarted("20261128-030000-ab12", "r1", "best", "", "demo", ("q8_0",), 4))
    for quant in ("f16", "q8_0"):
        path = export_dir / f"r1-best-{quant}.gguf"
        progress.add(FileWritten(quant, str(path), 1, "0" * 64, 0.1))
    progress.add(ExportFinished("finished", "done", str(export_dir / "manifest.json")))
    text = export_text(export_dir.name, progress)
    assert "r1-best-q8_0.gguf" in text and "r1-best-f16.gguf" not in text
    assert f"exports/{export_dir.name}/" in text
