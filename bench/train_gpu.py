"""QLoRA training speed and memory on a GPU: workbench's Unsloth path against two baselines.

Three variants train the same Llama-3.2-1B-shaped model (random init, built here: no hub) on
the same rows (~425 tokens each, batch 8), QLoRA r=16 on all linear layers:

  a  workbench  -- `workbench.train.engine.run_training` with the Unsloth backend, in the main
                   thread as the detached runner calls it (the real code path: chat template,
                   prompt masking, trl SFTTrainer, events, checkpoint at the end)
  b  bare Unsloth -- FastLanguageModel + SFTTrainer as in Unsloth's own notebooks
  c  plain      -- transformers + bitsandbytes 4-bit + peft + trl SFTTrainer (trl's QLoRA recipe,
                   gradient checkpointing on: trl's default)

a and b alternate round by round in one process; c runs in its own process, because importing
Unsloth patches transformers and trl for the whole process and c must be the unpatched stack.
Tokens/s counts real (non-padding) tokens over the timed steps (after warm-up steps), measured
the same way for all three: from the trainer's log of step N to that of step N+k. Peak GPU
memory is torch's peak allocation during a variant, above what the process held before it.

Targets (issue 4): a >= 1.7x the tokens/s of c, a <= half the peak memory of c, a within 5% of
b. The whole script stays under ~6 minutes on an H100 (--budget-s; about 4.5 expected).

Each measurement in train_gpu.json also carries what explains a gap: every timed step's
seconds (`step_s`) and the median step's rate, the trainer's resolved setup (padding-free,
collator, checkpointing, optimizer, thread) and torch.compile's graph and recompile counts
during the run.

On the GPU machine (Python 3.12, CUDA torch; the Unsloth wheels from ../shared/gpu/):
    PYTHONPATH=/tmp/site-b:/tmp/site-a:. python3 bench/train_gpu.py --out $OUT
Then here, to put its section into docs/benchmarks.md:
    .venv/bin/python bench/train_gpu.py --apply OUT_DIR/benchmarks_section.md
A CPU smoke test of everything but the Unsloth and bitsandbytes parts (tiny model):
    .venv/bin/python bench/train_gpu.py --dry-run --out /tmp/train-gpu-dry
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import types
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:0] = [str(REPO), str(BENCH)]

TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
VARIANTS = {
    "workbench": "a: workbench (Unsloth backend, real code path)",
    "bare_unsloth": "b: bare Unsloth script",
    "plain": "c: transformers + peft + bitsandbytes + trl",
}
CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
SPECIALS = ["<|pad|>", "<|unk|>", "<|im_start|>", "<|im_end|>", "system", "user", "assistant"]
LLAMA_3_2_1B: dict[str, Any] = {
    "vocab_size": 128256,
    "hidden_size": 2048,
    "intermediate_size": 8192,
    "num_hidden_layers": 16,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 64,
    "max_position_embeddings": 131072,
    "rms_norm_eps": 1e-5,
    "rope_theta": 500000.0,
    "rope_scaling": {
        "rope_type": "llama3",
        "factor": 32.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
    },
    "tie_word_embeddings": True,
}
TINY = {
    **LLAMA_3_2_1B,
    "vocab_size": 4096,
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 32,
    "max_position_embeddings": 4096,
}


Timeline = dict[int, tuple[float, float | None]]
"""step -> (seconds since training began, peak GPU GiB so far) at that step's log."""
NOTES: list[str] = []
SETUP: dict[str, Any] = {}
"""How the variant's trainer was set up (padding-free, checkpointing, collator, thread), for
telling apart a slow code path from noise when a and b differ."""
GPU_UTIL: list[float | None] = []
"""a's step events' GPU utilization (%): low while the tokens/s are low points at the host."""


@dataclass(frozen=True)
class Plan:
    """What every variant trains: shape, data, batch, steps."""

    dry_run: bool = False
    train_rows: int = 256
    val_rows: int = 8
    mean_tokens: int = 425
    spread: int = 100
    batch: int = 8
    warmup_steps: int = 5
    timed_steps: int = 30
    rounds: int = 3
    max_seq_length: int = 1024
    lora_r: int = 16
    lora_alpha: int = 16
    learning_rate: float = 2e-4
    seed: int = 3407

    @property
    def shape(self) -> dict[str, Any]:
        return TINY if self.dry_run else LLAMA_3_2_1B

    @property
    def steps(self) -> int:
        return self.warmup_steps + self.timed_steps


DRY_RUN = Plan(
    dry_run=True,
    train_rows=48,
    val_rows=4,
    mean_tokens=48,
    spread=16,
    batch=4,
    warmup_steps=1,
    timed_steps=3,
    rounds=2,
    max_seq_length=128,
)


# --- building the model, tokenizer and data (worker "build") -----------------------------------


def build(work: Path, plan: Plan) -> None:
    """Write model/ (random init, bf16 on CUDA), its tokenizer, and rows.jsonl."""
    tokenizer = build_tokenizer(plan.shape["vocab_size"])
    model_dir = work / "model"
    tokenizer.save_pretrained(model_dir)
    build_model(model_dir, plan, tokenizer)
    rows = make_rows(plan, tokenizer)
    (work / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    lengths = [len(chat_ids(tokenizer, row)) for row in rows]
    meta = {"rows": len(rows), "mean_tokens": statistics.mean(lengths), "max": max(lengths)}
    (work / "data.json").write_text(json.dumps(meta), "utf-8")
    print(json.dumps(meta), flush=True)


def build_tokenizer(vocab_size: int) -> Any:
    """A fast tokenizer with the Llama 3 vocabulary size: whole-word pieces `w0`, `w1`, ..."""
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: index for index, token in enumerate(SPECIALS)}
    vocab.update({f"w{n}": len(SPECIALS) + n for n in range(vocab_size - len(SPECIALS))})
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<|unk|>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.add_special_tokens([AddedToken(t, special=True) for t in SPECIALS[:4]])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, eos_token="<|im_end|>", pad_token="<|pad|>", unk_token="<|unk|>"
    )
    tokenizer.chat_template = CHATML
    return tokenizer


def build_model(model_dir: Path, plan: Plan, tokenizer: Any) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        **plan.shape,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    cuda = torch.cuda.is_available()
    torch.manual_seed(plan.seed)
    with torch.device("cuda" if cuda else "cpu"):
        model = LlamaForCausalLM(config)
    model.to(torch.bfloat16 if cuda else torch.float32)
    model.save_pretrained(model_dir)
    del model


def make_rows(plan: Plan, tokenizer: Any) -> list[list[dict[str, str]]]:
    """Chat rows of mean_tokens ± spread tokens: a short request, a long answer."""
    rng = random.Random(plan.seed)
    words = plan.shape["vocab_size"] - len(SPECIALS)
    rows = []
    for _ in range(plan.train_rows + plan.val_rows):
        total = rng.randint(plan.mean_tokens - plan.spread, plan.mean_tokens + plan.spread)
        user = max(4, total // 5)
        answer = total - user - 6  # <|im_start|> role ... <|im_end|> around each message

        def text(count: int) -> str:
            return " ".join(f"w{rng.randrange(words)}" for _ in range(count))

        rows.append(
            [
                {"role": "user", "content": text(user)},
                {"role": "assistant", "content": text(answer)},
            ]
        )
    return rows


def chat_ids(tokenizer: Any, messages: list[dict[str, str]], prompt: bool = False) -> list[int]:
    out = tokenizer.apply_chat_template(
        messages, tokenize=True, add_generation_prompt=prompt, return_dict=False
    )
    return list(out["input_ids"] if isinstance(out, dict) else out)


def token_rows(tokenizer: Any, rows: list[list[dict[str, str]]]) -> list[dict[str, list[int]]]:
    """Pre-tokenized rows for b and c: the answer learned, the request masked (-100)."""
    out = []
    for messages in rows:
        prompt, full = chat_ids(tokenizer, messages[:-1], True), chat_ids(tokenizer, messages)
        out.append({"input_ids": full, "labels": [-100] * len(prompt) + full[len(prompt) :]})
    return out


# --- the variants -------------------------------------------------------------------------------


def clock_callback() -> Any:
    """A trainer callback that notes when each step's loss is logged (after the GPU synced)."""
    from transformers import TrainerCallback

    class Clock(TrainerCallback):  # type: ignore[misc]
        def __init__(self) -> None:
            self.t0 = time.perf_counter()
            self.times: Timeline = {}

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.t0 = time.perf_counter()

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if logs and "loss" in logs:
                self.times[state.global_step] = (time.perf_counter() - self.t0, peak_gib())

    return Clock()


def peak_gib() -> float | None:
    """torch's peak GPU allocation so far (None on the CPU)."""
    import torch

    return torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None


def describe_trainer(trainer: Any) -> None:
    """Note the settings that decide a step's cost, as the trainer resolved them."""
    args, collator = trainer.args, trainer.data_collator
    model = getattr(trainer, "model", None)
    SETUP.update(
        thread=threading.current_thread().name,
        torch_threads=_torch_threads(),
        padding_free=getattr(args, "padding_free", None),
        collator=type(collator).__name__,
        collator_padding_free=getattr(collator, "padding_free", None),
        gradient_checkpointing=getattr(args, "gradient_checkpointing", None),
        unsloth_gradient_checkpointing=str(getattr(model, "_unsloth_gradient_checkpointing", "-")),
        optim=str(getattr(args, "optim", None)),
        include_num_input_tokens_seen=str(getattr(args, "include_num_input_tokens_seen", None)),
        logging_nan_inf_filter=getattr(args, "logging_nan_inf_filter", None),
        eval_strategy=str(getattr(args, "eval_strategy", None)),
        unsloth_return_logits=os.environ.get("UNSLOTH_RETURN_LOGITS"),
    )


def _torch_threads() -> int:
    import torch

    return int(torch.get_num_threads())


def trainer_args(plan: Plan, out: Path, **extra: Any) -> Any:
    """SFTConfig shared by b and c, as a notebook writes it."""
    import torch
    from trl import SFTConfig

    cuda = torch.cuda.is_available()
    return SFTConfig(
        output_dir=str(out),
        per_device_train_batch_size=plan.batch,
        gradient_accumulation_steps=1,
        warmup_steps=0,
        max_steps=plan.steps,
        learning_rate=plan.learning_rate,
        logging_steps=1,
        optim="adamw_8bit" if cuda else "adamw_torch",
        weight_decay=0.0,
        lr_scheduler_type="linear",
        seed=plan.seed,
        report_to="none",
        max_length=plan.max_seq_length,
        save_strategy="no",
        disable_tqdm=True,
        bf16=cuda,
        **({} if cuda else {"use_cpu": True, "gradient_checkpointing": False}),
        **extra,
    )


def run_workbench(work: Path, plan: Plan, out: Path) -> Timeline:
    """a: workbench's engine, Unsloth backend (transformers backend in a dry run).

    Its step events carry the time and peak memory at each step's log, as the clock does for
    b and c. A failure after the timed steps (in the final eval or save) is noted, not fatal.
    """
    from workbench.config import TrainSection
    from workbench.train import trainer as workbench_trainer
    from workbench.train.data import FrozenData
    from workbench.train.engine import TrainJob, run_training
    from workbench.train.events import RunError, Step, TrainEvent

    rows = read_rows(work)
    model_dir = str(work / "model")
    config = TrainSection(
        base_model=model_dir,
        backend="hf" if plan.dry_run else "unsloth",
        load_in_4bit=not plan.dry_run,
        lora_r=plan.lora_r,
        lora_alpha=plan.lora_alpha,
        lora_dropout=0.0,
        target_modules=TARGET_MODULES,
        learning_rate=plan.learning_rate,
        max_steps=plan.steps,
        batch_size=plan.batch,
        max_seq_length=plan.max_seq_length,
        warmup_ratio=0.0,
        lr_scheduler="linear",
        eval_steps=10_000,
        seed=plan.seed,
    )
    job = TrainJob(
        config=config,
        model=model_dir,
        backend=config.backend if config.backend != "auto" else "hf",
        data=FrozenData(train=tuple(rows[: plan.train_rows]), val=tuple(rows[plan.train_rows :])),
        output_dir=out,
    )
    times: Timeline = {}
    errors: list[str] = []
    build_trainer = workbench_trainer.build_trainer

    def noting_build_trainer(*args: Any, **kwargs: Any) -> Any:  # only looks, changes nothing
        trainer = build_trainer(*args, **kwargs)
        describe_trainer(trainer)
        return trainer

    def note(event: TrainEvent) -> None:
        if isinstance(event, Step):
            times[event.step] = (event.elapsed_s, event.gpu_memory_gib)
            GPU_UTIL.append(event.gpu_util)
        elif isinstance(event, RunError):
            errors.append(f"{event.kind}: {event.message}")

    workbench_trainer.build_trainer = noting_build_trainer
    try:
        final = run_training(job, threading.Event(), note)  # this thread, as the runner does
    finally:
        workbench_trainer.build_trainer = build_trainer
    if final.state != "finished":
        if plan.steps not in times:
            raise RuntimeError(f"run {final.state}: {final.reason}; {errors}")
        NOTES.append(f"workbench run ended {final.state} after the timed steps: {errors}")
    return times


def run_bare_unsloth(work: Path, plan: Plan, out: Path) -> Timeline:
    """b: FastLanguageModel + SFTTrainer, nothing else."""
    from datasets import Dataset
    from trl import SFTTrainer
    from unsloth import FastLanguageModel

    model, tokenizer = FastLanguageModel.from_pretrained(
        model_name=str(work / "model"),
        max_seq_length=plan.max_seq_length,
        dtype=None,
        load_in_4bit=True,
    )
    model = FastLanguageModel.get_peft_model(
        model,
        r=plan.lora_r,
        target_modules=TARGET_MODULES,
        lora_alpha=plan.lora_alpha,
        lora_dropout=0,
        bias="none",
        use_gradient_checkpointing="unsloth",
        random_state=plan.seed,
    )
    clock = clock_callback()
    data = token_rows(tokenizer, read_rows(work)[: plan.train_rows])
    trainer = SFTTrainer(
        model=model,
        processing_class=tokenizer,
        train_dataset=Dataset.from_list(data),
        args=trainer_args(plan, out),
        callbacks=[clock],
    )
    describe_trainer(trainer)
    trainer.train()
    return dict(clock.times)


def run_plain(work: Path, plan: Plan, out: Path) -> Timeline:
    """c: transformers + bitsandbytes 4-bit + peft + trl SFTTrainer (no Unsloth in the process)."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTTrainer

    cuda = torch.cuda.is_available()
    kwargs: dict[str, Any] = {"dtype": torch.bfloat16 if cuda else torch.float32}
    if cuda:
        from transformers import BitsAndBytesConfig

        kwargs["device_map"] = {"": 0}
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
    model = AutoModelForCausalLM.from_pretrained(str(work / "model"), **kwargs)
    tokenizer = AutoTokenizer.from_pretrained(str(work / "model"))
    lora = LoraConfig(
        r=plan.lora_r,
        lora_alpha=plan.lora_alpha,
        lora_dropout=0.0,
        target_modules=TARGET_MODULES,
        bias="none",
        task_type="CAUSAL_LM",
    )
    clock = clock_callback()
    data = token_rows(tokenizer, read_rows(work)[: plan.train_rows])
    trainer = SFTTrainer(
        model=model,
        processing_class=tokenizer,
        train_dataset=Dataset.from_list(data),
        args=trainer_args(plan, out),
        peft_config=lora,
        callbacks=[clock],
    )
    describe_trainer(trainer)
    trainer.train()
    return dict(clock.times)


RUNNERS: dict[str, Callable[[Path, Plan, Path], Timeline]] = {
    "workbench": run_workbench,
    "bare_unsloth": run_bare_unsloth,
    "plain": run_plain,
}


def read_rows(work: Path) -> list[list[dict[str, str]]]:
    return [json.loads(line) for line in (work / "rows.jsonl").read_text("utf-8").splitlines()]


# --- measuring (workers "unsloth" and "plain") ----------------------------------------------------


def measure(variant: str, round_: int, work: Path, plan: Plan) -> dict[str, Any]:
    """Train one variant once; tokens/s over the timed steps and peak GPU memory."""
    import gc

    import torch

    cuda = torch.cuda.is_available()
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    held = torch.cuda.memory_allocated() if cuda else 0
    result: dict[str, Any] = {"variant": variant, "round": round_, "ok": False}
    started = time.perf_counter()
    out = work / "runs" / f"{variant}-{round_}"
    NOTES.clear()
    SETUP.clear()
    GPU_UTIL.clear()
    compiled_before = compile_counts()
    try:
        times = RUNNERS[variant](work, plan, out)
        result.update(rate(times, plan, work), ok=True)
        result["torch_compile"] = {
            key: count - compiled_before.get(key, 0)
            for key, count in compile_counts().items()
            if count != compiled_before.get(key, 0)
        }
        training_peak = times[plan.steps][1]
        if training_peak is not None:
            result["train_peak_gib"] = round(training_peak - held / 2**30, 3)
        if NOTES:
            result["note"] = "; ".join(NOTES)[:2000]
        if SETUP:
            result["setup"] = dict(SETUP)
        if GPU_UTIL:
            result["gpu_util"] = list(GPU_UTIL)
    except BaseException as exc:  # one variant failing must not lose the others
        result["error"] = f"{type(exc).__name__}: {exc}"[:2000]
        result["traceback"] = traceback.format_exc()[-4000:]
    finally:
        result["wall_s"] = round(time.perf_counter() - started, 1)
        if cuda:
            result["run_peak_gib"] = round((torch.cuda.max_memory_allocated() - held) / 2**30, 3)
            result["held_before_gib"] = round(held / 2**30, 3)
        shutil.rmtree(out, ignore_errors=True)
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
    return result


def compile_counts() -> dict[str, int]:
    """torch.compile's running totals (graphs compiled, frames seen, recompiles); a variant
    that compiles again in every run, or falls back to eager, shows up here."""
    try:
        from torch._dynamo.utils import counters
    except Exception:
        return {}
    totals: dict[str, int] = {}
    for group in ("stats", "frames"):
        for key, count in counters.get(group, {}).items():
            totals[f"{group}.{key}"[:80]] = int(count)
    for group in ("recompiles", "graph_break"):  # keyed by reason: only the total
        totals[group] = int(sum(counters.get(group, {}).values()))
    return totals


def rate(times: Timeline, plan: Plan, work: Path) -> dict[str, Any]:
    """Tokens/s between the logs of the last warm-up step and the last timed step."""
    first, last = plan.warmup_steps, plan.steps
    if first not in times or last not in times:
        raise RuntimeError(f"steps {first} and {last} were not both logged: {sorted(times)}")
    seconds = times[last][0] - times[first][0]
    mean_tokens = json.loads((work / "data.json").read_text("utf-8"))["mean_tokens"]
    tokens = plan.batch * mean_tokens * (last - first)
    steps = [
        times[step][0] - times[step - 1][0]
        for step in range(first + 1, last + 1)
        if step in times and step - 1 in times
    ]
    median_step = statistics.median(steps) if steps else seconds / (last - first)
    return {
        "tokens_per_s": round(tokens / seconds, 1),
        "timed_s": round(seconds, 3),
        # robust to one slow step (a stray recompile, a host hiccup): the typical step's rate
        "tokens_per_s_median_step": round(plan.batch * mean_tokens / max(median_step, 1e-9), 1),
        "step_s": [round(step, 4) for step in steps],
    }


def worker(kind: str, work: Path, plan: Plan, deadline: float, results: Path) -> None:
    """Run rounds of this worker's variants until done or the deadline is near."""
    variants = ["workbench", "bare_unsloth"] if kind == "unsloth" else ["plain"]
    round_s = 0.0
    for round_ in range(plan.rounds):
        if round_ and time.time() + round_s > deadline:
            print(f"stopping before round {round_ + 1}: time budget", flush=True)
            break
        began = time.time()
        order = variants if round_ % 2 == 0 else variants[::-1]
        for variant in order:
            result = measure(variant, round_, work, plan)
            with open(results, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(result) + "\n")
            print(json.dumps({k: v for k, v in result.items() if k != "traceback"}), flush=True)
        round_s = time.time() - began


def prepare_worker_process(kind: str, dry_run: bool) -> None:
    """Offline settings; Unsloth imported first (it must precede transformers, trl, peft)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("UNSLOTH_DISABLE_STATISTICS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    allow_missing_tomlkit()
    if kind == "unsloth" and not dry_run:
        import unsloth  # noqa: F401


def allow_missing_tomlkit() -> bool:
    """workbench.config imports tomlkit to write workbench.toml; the GPU image lacks it and this
    script never writes TOML, so an empty module stands in. True when the stand-in was needed."""
    if importlib.util.find_spec("tomlkit") is not None:
        return False
    sys.modules["tomlkit"] = types.ModuleType("tomlkit")
    return True


# --- the orchestrating process ----------------------------------------------------------------


def run_worker(
    kind: str, args: argparse.Namespace, work: Path, deadline: float, out: Path
) -> dict[str, Any]:
    """Run a worker process with a hard timeout; its output goes to OUT/logs/KIND.log."""
    argv = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, "--work", str(work)]
    argv += ["--deadline", str(deadline), "--rounds", str(args.rounds), "--out", str(out)]
    argv += ["--dry-run"] if args.dry_run else []
    env = dict(os.environ, UNSLOTH_COMPILE_LOCATION=str(work / "unsloth_compiled_cache"))
    log = out / "logs" / f"{kind}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    timeout = max(30.0, deadline - started + 45)  # the worker stops itself at the deadline
    with open(log, "w", encoding="utf-8") as handle:
        try:
            code = subprocess.run(
                argv, stdout=handle, stderr=subprocess.STDOUT, timeout=timeout, cwd=work, env=env
            ).returncode
        except subprocess.TimeoutExpired:
            code = -9
    info = {"worker": kind, "exit": code, "seconds": round(time.time() - started, 1)}
    print(json.dumps(info), flush=True)
    return info


def environment(allowed_tomlkit: bool) -> dict[str, Any]:
    packages = [
        "torch",
        "transformers",
        "peft",
        "trl",
        "datasets",
        "accelerate",
        "bitsandbytes",
        "unsloth",
        "unsloth_zoo",
        "triton",
        "tokenizers",
        "pydantic",
    ]
    versions = {}
    for name in packages:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    smi = shutil.which("nvidia-smi")
    gpu = ""
    if smi:
        query = [smi, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"]
        gpu = subprocess.run(query, capture_output=True, text=True, check=False).stdout.strip()
    return {
        "python": sys.version.split()[0],
        "gpu": gpu,
        "packages": versions,
        "tomlkit_stand_in": allowed_tomlkit,
    }


def summarize(results: list[dict[str, Any]], plan: Plan) -> dict[str, Any]:
    """Medians per variant and the three ratios the issue asks for."""
    per: dict[str, dict[str, Any]] = {}
    for variant in VARIANTS:
        ok = [r for r in results if r["variant"] == variant and r["ok"]]
        failed = [r for r in results if r["variant"] == variant and not r["ok"]]
        per[variant] = {
            "runs": len(ok),
            "failed": len(failed),
            "tokens_per_s": statistics.median([r["tokens_per_s"] for r in ok]) if ok else None,
            "tokens_per_s_all": [r["tokens_per_s"] for r in ok],
            "tokens_per_s_median_step": _median_of(ok, "tokens_per_s_median_step"),
            "setup": ok[0].get("setup") if ok else None,
            "peak_gib": _median_of(ok, "train_peak_gib"),
            "run_peak_gib": _median_of(ok, "run_peak_gib"),
            "error": failed[0]["error"] if failed else None,
        }
    return {"variants": per, "ratios": ratios(per)}


def _median_of(rows: list[dict[str, Any]], key: str) -> float | None:
    values = [row[key] for row in rows if row.get(key) is not None]
    return statistics.median(values) if values else None


def ratios(per: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    a, b, c = per["workbench"], per["bare_unsloth"], per["plain"]

    def div(x: float | None, y: float | None) -> float | None:
        return round(x / y, 3) if x is not None and y else None

    return {
        "speed_vs_plain": div(a["tokens_per_s"], c["tokens_per_s"]),
        "memory_vs_plain": div(a["peak_gib"], c["peak_gib"]),
        "speed_vs_bare_unsloth": div(a["tokens_per_s"], b["tokens_per_s"]),
    }


def markdown(summary: dict[str, Any], plan: Plan, env: dict[str, Any]) -> str:
    from report import table

    per, r = summary["variants"], summary["ratios"]
    rows = []
    for key, label in VARIANTS.items():
        v = per[key]
        tps = f"{v['tokens_per_s']:,.0f}" if v["tokens_per_s"] else f"failed: {v['error']}"[:90]
        peak = f"{v['peak_gib']:.2f} GiB" if v["peak_gib"] is not None else "-"
        spread = ", ".join(f"{x:,.0f}" for x in v["tokens_per_s_all"])
        rows.append([label, tps, peak, f"{v['runs']} ({spread})"])
    verdicts = [
        [
            "a / c tokens/s",
            _fmt(r["speed_vs_plain"], "x"),
            "≥ 1.7x",
            _met(r["speed_vs_plain"], 1.7, None),
        ],
        [
            "a / c peak memory",
            _fmt(r["memory_vs_plain"], "x"),
            "≤ 0.5x",
            _met(r["memory_vs_plain"], None, 0.5),
        ],
        [
            "a / b tokens/s",
            _fmt(r["speed_vs_bare_unsloth"], "x"),
            "≥ 0.95x",
            _met(r["speed_vs_bare_unsloth"], 0.95, None),
        ],
    ]
    shape = (
        "tiny (dry run)"
        if plan.dry_run
        else "Llama-3.2-1B shape (16 layers, 2048 hidden, 128,256 vocab, tied embeddings)"
    )
    intro = (
        f"{shape}, random init, 4-bit QLoRA r={plan.lora_r} alpha={plan.lora_alpha} on all linear "
        f"layers; rows of {plan.mean_tokens} ± {plan.spread} tokens (answer learned, request "
        f"masked), batch {plan.batch}; {plan.warmup_steps} warm-up steps, then "
        f"{plan.timed_steps} timed steps; medians over rounds (a and b alternating in one "
        "process, c in its own process). Peak memory: torch's peak allocation up to the last "
        "timed step, above what the process held before the variant (a's final evaluation and "
        f"save come after). GPU: {env['gpu'] or 'none'}. Packages: {env['packages']}.\n\n"
    )
    return (
        intro
        + table(["variant", "tokens/s", "peak GPU memory", "runs (tokens/s each)"], rows)
        + "\n\n"
        + table(["ratio", "value", "target", "met"], verdicts)
    )


def _fmt(value: float | None, unit: str) -> str:
    return f"{value:.2f}{unit}" if value is not None else "-"


def _met(value: float | None, at_least: float | None, at_most: float | None) -> str:
    if value is None:
        return "not measured"
    ok = (at_least is None or value >= at_least) and (at_most is None or value <= at_most)
    return "yes" if ok else "NO"


def orchestrate(args: argparse.Namespace) -> int:
    plan = replace(DRY_RUN if args.dry_run else Plan(), rounds=args.rounds)
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    results_file = out / "measurements.jsonl"
    results_file.unlink(missing_ok=True)
    started = time.time()
    deadline = started + args.budget_s
    work = Path(tempfile.mkdtemp(prefix="wb-train-gpu-"))
    workers = [run_worker("build", args, work, started + min(240, args.budget_s / 2), out)]
    if workers[0]["exit"] == 0:
        # c first, with a share of the time, so the comparison never lacks its baseline.
        plain_share = started + (deadline - started) * 0.35
        workers.append(run_worker("plain", args, work, max(plain_share, time.time() + 60), out))
        workers.append(run_worker("unsloth", args, work, deadline, out))
    results = (
        [json.loads(line) for line in results_file.read_text().splitlines()]
        if results_file.exists()
        else []
    )
    env = environment(importlib.util.find_spec("tomlkit") is None)
    summary = summarize(results, plan)
    report = {
        "plan": asdict(plan),
        "environment": env,
        "workers": workers,
        "summary": summary,
        "measurements": results,
        "total_s": round(time.time() - started, 1),
    }
    (out / "train_gpu.json").write_text(json.dumps(report, indent=2), "utf-8")
    body = markdown(summary, plan, env)
    (out / "train_gpu.md").write_text(body + "\n", "utf-8")
    print(body)
    if not args.dry_run:
        write_doc_section(body, out)
    shutil.rmtree(work, ignore_errors=True)
    return 0 if all(v["runs"] for v in summary["variants"].values()) else 1


SECTION = "train-gpu"
COMMAND = "PYTHONPATH=/tmp/site-b:/tmp/site-a:. python3 bench/train_gpu.py --out $OUT"


def write_doc_section(body: str, out: Path) -> None:
    """Write the section into this tree's docs/benchmarks.md and copy it to OUT for --apply."""
    from report import DOC, write_section

    section = write_section(SECTION, "Training on a GPU (issue 4)", COMMAND, body)
    (out / "benchmarks_section.md").write_text(section + "\n", "utf-8")
    print(f"wrote the {SECTION} section of {DOC}")


def apply_section(path: Path) -> None:
    """Put a section written on the GPU machine into docs/benchmarks.md, replacing the old one."""
    from report import DOC, HEADER

    section = path.read_text("utf-8").strip()
    start, end = f"<!-- bench:{SECTION} -->", f"<!-- /bench:{SECTION} -->"
    if not (section.startswith(start) and section.endswith(end)):
        raise SystemExit(f"{path}: not a {SECTION} section")
    text = DOC.read_text("utf-8") if DOC.exists() else HEADER
    if start in text and end in text:
        before, rest = text.split(start, 1)
        text = before + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    DOC.write_text(text, "utf-8")
    print(f"{DOC}: {SECTION} section replaced")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("train-gpu-out"))
    parser.add_argument("--dry-run", action="store_true", help="tiny model on the CPU, no Unsloth")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--budget-s", type=float, default=300.0, help="whole-script time budget")
    parser.add_argument("--apply", type=Path, metavar="SECTION_FILE")
    parser.add_argument("--worker", choices=["build", "unsloth", "plain"], help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.apply:
        apply_section(args.apply)
        return 0
    if args.worker is None:
        return orchestrate(args)
    plan = replace(DRY_RUN if args.dry_run else Plan(), rounds=args.rounds)
    results = args.out.resolve() / "measurements.jsonl"
    try:
        prepare_worker_process(args.worker, args.dry_run)
    except Exception as exc:  # e.g. Unsloth cannot be imported: say so in the results
        variants = {"unsloth": ["workbench", "bare_unsloth"], "plain": ["plain"]}
        for variant in variants.get(args.worker, []):
            failure = {"variant": variant, "round": 0, "ok": False, "error": f"setup: {exc!r}"}
            with open(results, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(failure) + "\n")
        raise
    if args.worker == "build":
        build(args.work, plan)
    else:
        worker(
            args.worker, args.work, plan, args.deadline, args.out.resolve() / "measurements.jsonl"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
