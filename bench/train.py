"""How long the sample workspace's default training run takes on this machine (CPU, tiny model).

The sample's 121 SEO pairs are imported into a copy of `sample_data/`, with the long system
prompt stripped (as `workbench data` cleaning does; with it every prompt is longer than the
sample's max_seq_length and the run is refused), and every 10th example held out for
validation. Then `workbench train` is timed from the command to the run's `finished` status:
the checks, the detached process, loading, tokenizing, training, evaluations and checkpoints.

Baseline, measured alternately: a bare transformers + peft + trl script training the same
model on the same examples with the same settings in one process (no workbench).
Target: the workbench run finishes within 60 s on a 2-core CPU.

    .venv/bin/python bench/train.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import REPO, median, table, write_section

SAMPLE = REPO / "sample_data"
PAIRS = SAMPLE / "imports" / "seo_pairs.jsonl"

BARE_SCRIPT = r"""
import json, sys, time
started = time.perf_counter()
from datasets import Dataset
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer
from workbench.config import load_config
from workbench.demo_model import ensure_demo_model

workspace, out = sys.argv[1], sys.argv[2]
train_cfg = load_config(__import__("pathlib").Path(workspace) / "workbench.toml").train
rows = [json.loads(line) for line in open(sys.argv[3])]
def pc(messages):
    return {"prompt": messages[:-1], "completion": messages[-1:]}
train = Dataset.from_list([pc(r) for i, r in enumerate(rows) if i % 10 != 9])
val = Dataset.from_list([pc(r) for i, r in enumerate(rows) if i % 10 == 9])
path = ensure_demo_model()
tokenizer = AutoTokenizer.from_pretrained(path)
model = AutoModelForCausalLM.from_pretrained(path)
model = get_peft_model(model, LoraConfig(r=train_cfg.lora_r, lora_alpha=train_cfg.lora_alpha,
    target_modules=train_cfg.target_modules, task_type="CAUSAL_LM"))
args = SFTConfig(output_dir=out, per_device_train_batch_size=train_cfg.batch_size,
    per_device_eval_batch_size=train_cfg.batch_size, learning_rate=train_cfg.learning_rate,
    num_train_epochs=train_cfg.epochs, lr_scheduler_type=train_cfg.lr_scheduler,
    warmup_steps=train_cfg.warmup_ratio, max_length=train_cfg.max_seq_length,
    eval_strategy="steps", eval_steps=train_cfg.eval_steps, save_strategy="steps",
    save_steps=train_cfg.eval_steps, logging_steps=1, report_to="none", disable_tqdm=True,
    seed=train_cfg.seed, completion_only_loss=True, dataloader_pin_memory=False, bf16=False)
trainer = SFTTrainer(model=model, processing_class=tokenizer, train_dataset=train,
    eval_dataset=val, args=args)
result = trainer.train()
print(json.dumps({"seconds": time.perf_counter() - started, "steps": result.global_step}))
"""


def prepare_workspace(root: Path) -> Path:
    """A copy of the sample workspace with its pairs imported and split (every 10th is val)."""
    from workbench.data.store import ExampleStore
    from workbench.workspace import open_workspace

    target = root / "sample_data"
    shutil.copytree(
        SAMPLE, target, ignore=shutil.ignore_patterns("examples.db*", "runs", "exports", "evals")
    )
    records = [json.loads(line) for line in PAIRS.read_text(encoding="utf-8").splitlines()]
    for record in records:
        record["messages"] = [m for m in record["messages"] if m["role"] != "system"]
    workspace = open_workspace(target)
    with ExampleStore(workspace.db_path) as store:
        ids = store.add_examples(records, source="seo_pairs.jsonl")
        store.set_split([i for n, i in enumerate(ids) if n % 10 != 9], "train")
        store.set_split([i for n, i in enumerate(ids) if n % 10 == 9], "val")
    return target


def stripped_pairs(root: Path) -> Path:
    path = root / "pairs.jsonl"
    lines = []
    for line in PAIRS.read_text(encoding="utf-8").splitlines():
        messages = [m for m in json.loads(line)["messages"] if m["role"] != "system"]
        lines.append(json.dumps(messages))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def time_workbench(workspace: Path) -> dict[str, float]:
    """`workbench train` to the run's finished status, as a user would wait for it."""
    from workbench.jobs import observed_status
    from workbench.train.runs import load_run, read_history

    started, cpu_before = time.perf_counter(), children_cpu_s()
    out = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "-w", str(workspace), "train"],
        capture_output=True,
        text=True,
        check=True,
    )
    cli_cpu = children_cpu_s() - cpu_before
    run_dir = workspace / "runs" / out.stdout.strip().splitlines()[-1]
    runner_cpu = 0.0
    while (status := observed_status(run_dir)) is not None and status.active:
        runner_cpu = max(runner_cpu, process_cpu_s(status.pid or 0))
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    run = load_run(run_dir)
    assert run.state == "finished", f"run ended {run.state}: {run.error}"
    steps = read_history(run_dir).steps
    rates = [point.tokens_per_s for point in steps[1:] if point.tokens_per_s]
    return {
        "seconds": seconds,
        "steps": run.step,
        "best_eval_loss": run.best_eval_loss or 0.0,
        "tokens_per_s": median(rates) if rates else 0.0,
        "train_s": steps[-1].elapsed_s if steps else 0.0,
        "cpu_s": cli_cpu + runner_cpu,
    }


def children_cpu_s() -> float:
    """CPU seconds used by this process's finished children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def process_cpu_s(pid: int) -> float:
    """CPU seconds a running process has used so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def time_bare(workspace: Path, pairs: Path, out: Path) -> dict[str, float]:
    """The bare script in a fresh interpreter, timed from process start."""
    started, cpu_before = time.perf_counter(), children_cpu_s()
    result = subprocess.run(
        [sys.executable, "-c", BARE_SCRIPT, str(workspace), str(out), str(pairs)],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    if result.returncode != 0:
        raise SystemExit(f"the bare script failed:\n{result.stderr[-3000:]}")
    data = json.loads(result.stdout.strip().splitlines()[-1])
    data["seconds"] = time.perf_counter() - started
    data["cpu_s"] = children_cpu_s() - cpu_before
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wb-bench-train-") as tmp:
        root = Path(tmp)
        workspace = prepare_workspace(root)
        pairs = stripped_pairs(root)
        workbench, bare, loads = [], [], [os.getloadavg()[0]]
        for index in range(args.runs):
            workbench.append(time_workbench(workspace))
            bare.append(time_bare(workspace, pairs, root / f"bare-{index}"))
            loads.append(os.getloadavg()[0])
    print(json.dumps({"workbench": workbench, "bare": bare, "load": loads}, indent=2))
    write_report(workbench, bare, args.runs, loads)


def write_report(
    workbench: list[dict[str, float]], bare: list[dict[str, float]], runs: int, loads: list[float]
) -> None:
    wb_s = median([run["seconds"] for run in workbench])
    bare_s = median([run["seconds"] for run in bare])
    rows = [
        [
            "sample workspace, default run (`workbench train` to finished)",
            f"{wb_s:.1f} s",
            "≤ 60 s",
            "yes" if wb_s <= 60 else "NO",
        ],
        ["bare transformers + peft + trl script, same settings", f"{bare_s:.1f} s", "baseline", ""],
        ["ratio workbench / bare script", f"{wb_s / bare_s:.2f}x", "", ""],
        [
            "CPU time used, workbench (CLI + run process)",
            f"{median([r['cpu_s'] for r in workbench]):.1f} s",
            "",
            "",
        ],
        ["CPU time used, bare script", f"{median([r['cpu_s'] for r in bare]):.1f} s", "", ""],
        ["optimizer steps per run", f"{workbench[0]['steps']:.0f}", "", ""],
        [
            "training loop only (first to last step)",
            f"{median([r['train_s'] for r in workbench]):.1f} s",
            "",
            "",
        ],
        [
            "tokens/s while training (median)",
            f"{median([r['tokens_per_s'] for r in workbench]):,.0f}",
            "",
            "",
        ],
        ["best eval loss", f"{median([r['best_eval_loss'] for r in workbench]):.3f}", "", ""],
    ]
    body = (
        f"Median of {runs} runs each, workbench and baseline alternating. The tiny demo model "
        "(2 layers, 1k vocabulary, random init); the sample's 121 pairs with the system prompt "
        "stripped, 109 train / 12 val; the sample's `[train]` settings (1 epoch, batch 8, "
        "max_seq_length 1024, LoRA r 8 on all linear layers, eval and checkpoint every 5 "
        "steps). The workbench time includes the pre-flight checks, the detached process "
        "start, model loading and tokenizing. Other jobs shared the machine: its 1-minute load "
        f"average was {', '.join(f'{load:.1f}' for load in loads)} (before and after each "
        "pair; 2 would mean both cores busy), so read the ratio, not the absolute times.\n\n"
        + table(["measure", "value", "target", "met"], rows)
    )
    print(
        write_section(
            "train-cpu", "Training on CPU (issue 4)", ".venv/bin/python bench/train.py", body
        )
    )


if __name__ == "__main__":
    main()
