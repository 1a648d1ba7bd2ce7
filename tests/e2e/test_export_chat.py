"""The whole flow on the tiny model: train a LoRA adapter for a few steps, export it with
`workbench export` (a detached job) as f16 and q8_0, load both in the chat engine and chat, and
check that llama.cpp sees the same token ids as training and computes the trained model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock

from workbench.chat.engine import ChatModel, ChatSettings
from workbench.data.store import ExampleStore, Query
from workbench.export.job import plan_export, start_export, stop_export
from workbench.export.manifest import list_exported_ggufs, read_manifest, sha256_of
from workbench.jobs import JobStatus, observed_status, read_events
from workbench.workspace import Workspace, init_workspace, open_workspace

pytestmark = pytest.mark.slow

RUN_ID = "20261128-120000-e2e0"
CONVERSATION = [
    {"role": "system", "content": "You write page titles."},
    {"role": "user", "content": "A title for a café guide \u2013 naïve tips, 日本 edition?"},
    {"role": "assistant", "content": "Café Basics: 12 Naïve Mistakes to Avoid"},
]


def workbench(*args: str, stdin: str = "", cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "workbench.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        check=False,
    )


def train_adapter(base: Path, run_dir: Path, results: Path) -> None:
    """A few LoRA steps on one conversation, saved the way a training run saves them; the
    prompt's token ids and last logits (trained and base) go to `results` (.npz)."""
    import numpy as np
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(base),
        LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj", "up_proj", "down_proj"]),
    )
    batch = tokenizer.apply_chat_template(CONVERSATION, return_dict=True, return_tensors="pt")
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-2)
    for _ in range(4):
        model(**batch, labels=batch["input_ids"]).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    for target in (run_dir / "best", run_dir / "checkpoints" / "checkpoint-4"):
        model.save_pretrained(target)
        tokenizer.save_pretrained(target)  # as the trainer does; export must not rely on it
    (run_dir / "best" / "workbench.json").write_text(json.dumps({"step": 4, "eval_loss": 2.0}))
    (run_dir / "config.json").write_text(json.dumps({"base_model": str(base)}))
    (run_dir / "run.json").write_text(json.dumps({"model": str(base), "base_model": str(base)}))
    (run_dir / "status.json").write_text(
        json.dumps({"id": RUN_ID, "kind": "run", "state": "finished", "pid": None})
    )
    model.eval()
    with torch.no_grad():
        trained = model(**batch).logits[0, -1]
        with model.disable_adapter():
            base_logits = model(**batch).logits[0, -1]
    np.savez(results, ids=batch["input_ids"][0].numpy(), trained=trained, base=base_logits)


@pytest.fixture(scope="module")
def exported(
    demo_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Workspace, Path, dict[str, Any]]:
    """The trained run exported by `workbench export`; built once for all xdist workers."""
    import numpy as np
    from transformers import AutoTokenizer

    base = tmp_path_factory.getbasetemp()
    shared = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "e2e-export"
    with FileLock(f"{shared}.lock"):
        if not (shared / "export.log").is_file():
            workspace = init_workspace(shared / "ws")
            train_adapter(demo_model_dir, workspace.runs_dir / RUN_ID, shared / "trained.npz")
            result = workbench("-w", str(workspace.root), "export", "e2e0", "--quant", "f16,q8_0")
            assert result.returncode == 0, result.stdout + result.stderr
            (export_dir,) = [path for path in workspace.exports_dir.iterdir() if path.is_dir()]
            (shared / "export-id").write_text(export_dir.name)
            (shared / "export.log").write_text(result.stdout)
    workspace = open_workspace(shared / "ws")
    export_dir = workspace.exports_dir / (shared / "export-id").read_text()
    arrays = np.load(shared / "trained.npz")
    trained = {
        "ids": arrays["ids"].tolist(),
        "trained": arrays["trained"],
        "base": arrays["base"],
        "tok": AutoTokenizer.from_pretrained(demo_model_dir),
        "log": (shared / "export.log").read_text(),
    }
    return workspace, export_dir, trained


def test_export_writes_both_files_and_a_manifest(exported: Any) -> None:
    workspace, export_dir, trained = exported
    assert "[1/4] merging the best adapter" in trained["log"]
    assert "finished: done" in trained["log"]
    manifest = read_manifest(export_dir)
    assert manifest is not None
    assert (manifest.run_id, manifest.checkpoint, manifest.checkpoint_step) == (RUN_ID, "best", 4)
    assert manifest.quants == ("f16", "q8_0")
    for item in manifest.files:
        path = export_dir / item.file
        assert path.name == f"{RUN_ID}-best-{item.quant}.gguf"
        assert item.bytes == path.stat().st_size and item.sha256 == sha256_of(path)
    assert (export_dir / "merged" / "tokenizer.model").is_file(), "copied from the base model"
    status = json.loads((export_dir / "status.json").read_text())
    assert status["state"] == "finished"
    listed = list_exported_ggufs(workspace.exports_dir)
    assert {entry.quant for entry in listed} == {"f16", "q8_0"}


@pytest.mark.parametrize("quant", ["f16", "q8_0"])
def test_llama_cpp_sees_the_token_ids_training_saw(exported: Any, quant: str) -> None:
    _, export_dir, trained = exported
    tokenizer = trained["tok"]
    gguf = read_manifest(export_dir).path_of(export_dir, quant)
    with ChatModel.load(gguf, ChatSettings(n_ctx=512)) as model:
        assert model.loaded.template_source == "gguf"
        assert model.prompt_tokens(CONVERSATION, add_generation_prompt=False) == trained["ids"]
        expected = tokenizer.apply_chat_template(
            CONVERSATION[:2], tokenize=True, add_generation_prompt=True, return_dict=False
        )
        assert model.prompt_tokens(CONVERSATION[:2]) == list(expected)
        done = model.answer(CONVERSATION[:2], ChatSettings(temperature=0, max_tokens=8))
        assert done.completion_tokens >= 1 and done.tokens_per_s >= 0


def test_the_f16_gguf_computes_the_trained_model_not_the_base(exported: Any) -> None:
    import llama_cpp
    import numpy as np

    _, export_dir, trained = exported
    gguf = read_manifest(export_dir).path_of(export_dir, "f16")
    with ChatModel.load(gguf, ChatSettings(n_ctx=512)) as model:
        llm = model.llm
        llm.reset()
        llm.eval(trained["ids"])
        last = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
        logits = np.ctypeslib.as_array(last, shape=(llm.n_vocab(),)).copy()
    export_error = np.abs(logits - trained["trained"]).max()
    adapter_effect = np.abs(trained["trained"] - trained["base"]).max()
    assert export_error < adapter_effect / 10, (export_error, adapter_effect)


def test_workbench_chat_repl_streams_regenerates_and_saves_to_data(exported: Any) -> None:
    workspace, export_dir, _ = exported
    question = CONVERSATION[1]["content"]
    script = f"/system {CONVERSATION[0]['content']}\n{question}\n/regen\n/save A new title\n/exit\n"
    result = workbench(
        "chat",
        export_dir.name,
        "--quant",
        "q8_0",
        "-w",
        str(workspace.root),
        "--temperature",
        "0",
        "--max-tokens",
        "12",
        stdin=script,
    )
    assert result.returncode == 0, result.stderr
    # Two answers, each followed by a newline; greedy, so regenerate gives the same one.
    half = len(result.stdout) // 2
    assert result.stdout and result.stdout[:half] == result.stdout[half:]
    assert result.stderr.count("[12 tokens · first token") == 2
    assert "saved as example 1, tagged from-chat" in result.stderr
    with ExampleStore(workspace.db_path) as store:
        (example_id,) = store.ids(Query(tag="from-chat"))
        example = store.get(example_id)
    assert example.messages == [
        CONVERSATION[0],
        CONVERSATION[1],
        {"role": "assistant", "content": "A new title"},
    ]
    one_shot = workbench(
        "chat",
        str(read_manifest(export_dir).path_of(export_dir, "f16")),
        "-p",
        "Hi",
        "--json",
        "--max-tokens",
        "4",
        "--temperature",
        "0",
    )
    report = json.loads(one_shot.stdout)
    assert report["completion_tokens"] <= 4 and report["time_to_first_token_s"] > 0


def test_bad_files_and_unknown_runs_give_one_line_and_exit_1(exported: Any, tmp_path: Path) -> None:
    workspace, _, _ = exported
    notes = tmp_path / "notes.gguf"
    notes.write_text("not a model")
    result = workbench("chat", str(notes))
    assert result.returncode == 1
    assert result.stderr.strip().startswith("workbench: notes.gguf is not a GGUF model file")
    before = set(workspace.exports_dir.iterdir())
    result = workbench("-w", str(workspace.root), "export", "nope")
    assert result.returncode == 1 and "no run 'nope'" in result.stderr
    result = workbench("-w", str(workspace.root), "export", "e2e0", "--quant", "q3")
    assert result.returncode == 1 and "unknown quantization 'q3'" in result.stderr
    assert set(workspace.exports_dir.iterdir()) == before, "refused exports write nothing"


def test_a_stopped_export_ends_stopped_and_leaves_no_model_files(exported: Any) -> None:
    workspace, _, _ = exported
    request = plan_export(workspace.exports_dir, workspace.runs_dir / RUN_ID, "last", ["q8_0"])
    start_export(request)
    wait_for(request.export_dir, {"running"})
    assert stop_export(request.export_dir)
    status = wait_for(request.export_dir, {"stopped", "finished", "failed"})
    assert status.state == "stopped", status
    events = read_events(request.export_dir)
    assert events[-1]["type"] == "finished" and events[-1]["state"] == "stopped"
    assert not list(request.export_dir.glob("*.gguf"))
    assert not (request.export_dir / "merged").exists()
    assert read_manifest(request.export_dir) is None
    assert not stop_export(request.export_dir), "nothing left to stop"


def wait_for(export_dir: Path, states: set[str], timeout: float = 120.0) -> JobStatus:
    """The export's status once it is in one of `states`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = observed_status(export_dir)
        if status is not None and status.state in states:
            return status
        time.sleep(0.05)
    raise AssertionError(f"{export_dir.name} never reached {states}: {observed_status(export_dir)}")
