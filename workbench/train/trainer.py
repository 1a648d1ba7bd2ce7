"""The trl SFTTrainer both backends share, and the callback that turns its progress into events.

Used only inside a training job. transformers and trl are imported inside the functions (they
load `rich`, which the engine's modules must not pull in at import time); with the Unsloth
backend, `workbench.train.backends.prepare_unsloth` has run before.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from workbench.accelerator import GpuUtilSampler, gpu_selector
from workbench.config import TrainSection
from workbench.train.events import (
    CheckpointSaved,
    Evaluated,
    RunError,
    Started,
    Step,
    TrainEvent,
)
from workbench.train.watch import CurveWatch

CHECKPOINTS_DIR = "checkpoints"
BEST_DIR = "best"
BEST_META = "workbench.json"
KEEP_CHECKPOINTS = 2

Emit = Callable[[TrainEvent], None]

if TYPE_CHECKING:
    from transformers import TrainerControl, TrainerState, TrainingArguments
    from trl import SFTConfig, SFTTrainer


def training_arguments(config: TrainSection, output_dir: Path, backend: str) -> SFTConfig:
    """The trainer settings for a run: eval and checkpoint every `eval_steps`, log every step.

    Nothing here makes the host wait for the GPU inside a step: the loss (and grad norm) is
    fetched once per step, when it is logged. So `include_num_input_tokens_seen` stays off (its
    `.item()` right after each backward pass held the optimizer step's launches back until the
    GPU drained; the step events estimate tokens/s from the rows' mean length instead), and so
    does `logging_nan_inf_filter` (another per-step sync; the callback sees a non-finite loss
    in the logs and stops the run). With Unsloth, `gradient_checkpointing` stays on as in
    Unsloth's own scripts: its trainer passes the flag to `for_training` when the model has
    not recorded the mode `get_peft_model` set ("unsloth"). The transformers backend enables
    checkpointing itself when loading (`backends._prepare_for_gpu_training`), so the trainer
    must not enable it a second time.
    """
    from trl import SFTConfig

    cuda = torch.cuda.is_available()
    bf16 = cuda and torch.cuda.is_bf16_supported()
    return SFTConfig(
        output_dir=str(output_dir / CHECKPOINTS_DIR),
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        learning_rate=config.learning_rate,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps or -1,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_ratio,
        weight_decay=config.weight_decay,
        optim="adamw_8bit" if cuda else "adamw_torch",
        bf16=bf16,
        fp16=cuda and not bf16,
        gradient_checkpointing=backend == "unsloth",
        logging_steps=1,
        logging_nan_inf_filter=False,
        eval_strategy="steps",
        eval_steps=config.eval_steps,
        save_strategy="steps",
        save_steps=config.eval_steps,
        save_total_limit=KEEP_CHECKPOINTS,
        include_num_input_tokens_seen="no",
        max_length=config.max_seq_length,
        packing=config.packing,
        eval_packing=False,
        seed=config.seed,
        data_seed=config.seed,
        report_to="none",
        disable_tqdm=True,
        dataloader_pin_memory=cuda,
        ddp_find_unused_parameters=False,
    )


def build_trainer(
    loaded_model: Any,
    tokenizer: Any,
    train_rows: list[dict[str, list[int]]],
    val_rows: list[dict[str, list[int]]],
    args: SFTConfig,
    callback: Any,
) -> SFTTrainer:
    """An SFTTrainer over pre-tokenized rows (input_ids with their labels already masked)."""
    from datasets import Dataset
    from transformers import PrinterCallback
    from trl import SFTTrainer

    trainer = SFTTrainer(
        model=loaded_model,
        processing_class=tokenizer,
        train_dataset=Dataset.from_list(train_rows),
        eval_dataset=Dataset.from_list(val_rows),
        args=args,
        callbacks=[callback],
    )
    trainer.remove_callback(PrinterCallback)  # the events are the log
    return trainer


def event_callback(**kwargs: Any) -> Any:
    """An `EventCallback` that is also a transformers `TrainerCallback` (no-op for other events)."""
    from transformers import TrainerCallback

    callback_class = type("EventCallback", (EventCallback, TrainerCallback), {})
    return callback_class(**kwargs)


class EventCallback:
    """Emits step, eval and checkpoint events; saves best/; stops on cancel, NaN or patience.

    Build it with :func:`event_callback`, which mixes in transformers' `TrainerCallback`.
    """

    def __init__(
        self,
        emit: Emit,
        cancel: threading.Event,
        started: Callable[[int], Started],
        output_dir: Path,
        config: TrainSection,
        tokens_per_step: float,
        best_so_far: tuple[float, int] | None,
        watch: CurveWatch,
        tokenizer: Any,
        evals_since_best: int = 0,
        gpu_util: Callable[[], float | None] = lambda: None,
    ) -> None:
        self.emit = emit
        self.cancel = cancel
        self.started = started
        self.output_dir = output_dir
        self.config = config
        self.tokens_per_step = tokens_per_step
        self.best = best_so_far
        self.watch = watch
        self.tokenizer = tokenizer
        self.evals_since_best = evals_since_best
        self.gpu_util = gpu_util
        self.stopped = False
        self.early_stopped = False
        self.failed: RunError | None = None
        self._t0 = self._last_time = time.perf_counter()
        self._last_step = 0

    # --- progress -----------------------------------------------------------------------

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        self._t0 = self._last_time = time.perf_counter()
        self._last_step = state.global_step
        if state.is_world_process_zero:
            self.emit(self.started(state.max_steps))

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, float] | None = None,
        **kw: Any,
    ) -> None:
        if not logs or "loss" not in logs:
            return
        loss = float(logs["loss"])
        if not math.isfinite(loss):
            self._fail_nan(control, state.global_step, f"training loss became {loss}")
            return
        self.watch.on_step(state.global_step, loss)
        if state.is_world_process_zero:
            self.emit(self._step_event(state, logs, loss))

    def _step_event(self, state: TrainerState, logs: dict[str, float], loss: float) -> Step:
        now = time.perf_counter()
        tokens = self.tokens_per_step * max(1, state.global_step - self._last_step)
        elapsed = max(now - self._last_time, 1e-9)
        self._last_time, self._last_step = now, state.global_step
        grad_norm = logs.get("grad_norm")
        return Step(
            step=state.global_step,
            total_steps=state.max_steps,
            epoch=round(float(state.epoch or 0.0), 4),
            loss=loss,
            learning_rate=float(logs.get("learning_rate", 0.0)),
            grad_norm=float(grad_norm) if grad_norm is not None else None,
            tokens_per_s=round(tokens / elapsed, 1),
            gpu_memory_gib=_gpu_memory_gib(),
            gpu_util=self.gpu_util(),
            elapsed_s=round(now - self._t0, 3),
        )

    def _fail_nan(self, control: TrainerControl, step: int, what: str) -> None:
        self.failed = RunError(
            kind="nan_loss",
            message=f"{what} at step {step}: the run stopped. Lower train.learning_rate "
            "(and check the data for empty or broken examples), then start a new run.",
            step=step,
        )
        control.should_training_stop = True
        control.should_save = False
        control.should_evaluate = False
        self.emit(self.failed)

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        if self._cancel_requested():
            self.stopped = True
            control.should_training_stop = True
            control.should_save = True
        elif state.global_step >= state.max_steps:
            control.should_evaluate = True
            control.should_save = True

    def _cancel_requested(self) -> bool:
        """The cancel flag; under several processes (accelerate), set if any rank's is set, so
        that every rank stops after the same step."""
        requested = self.cancel.is_set()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            device = (
                torch.device("cuda", torch.cuda.current_device())
                if torch.cuda.is_available()
                else "cpu"
            )
            flag = torch.tensor([1.0 if requested else 0.0], device=device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            requested = bool(flag.item())
        return requested

    # --- evaluation and checkpoints ---------------------------------------------------------

    def on_evaluate(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        metrics: dict[str, float] | None = None,
        **kw: Any,
    ) -> None:
        eval_loss = float((metrics or {}).get("eval_loss", math.nan))
        step = state.global_step
        if not math.isfinite(eval_loss):
            self._fail_nan(control, step, f"eval loss became {eval_loss}")
            return
        is_best = self.best is None or eval_loss < self.best[0]
        if state.is_world_process_zero:
            self.emit(Evaluated(step=step, eval_loss=eval_loss, best=is_best))
        if is_best:
            self.best, self.evals_since_best = (eval_loss, step), 0
            self._save_best(kw.get("model"), state, eval_loss)
        else:
            self.evals_since_best += 1
        warning = self.watch.on_eval(step, eval_loss)
        if warning is not None and state.is_world_process_zero:
            self.emit(warning)
        self._maybe_stop_early(control)

    def _maybe_stop_early(self, control: TrainerControl) -> None:
        patience = self.config.early_stopping_patience
        if patience and self.evals_since_best >= patience and not control.should_training_stop:
            self.early_stopped = True
            control.should_training_stop = True
            control.should_save = True

    def _save_best(self, model: Any, state: TrainerState, eval_loss: float) -> None:
        if model is None or not state.is_world_process_zero:
            return
        target = self.output_dir / BEST_DIR
        save_adapter(
            model, self.tokenizer, target, {"step": state.global_step, "eval_loss": eval_loss}
        )
        self.emit(
            CheckpointSaved(
                step=state.global_step, path=str(target), kind="best", eval_loss=eval_loss
            )
        )

    def on_save(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        if state.is_world_process_zero:
            path = Path(args.output_dir or "") / f"checkpoint-{state.global_step}"
            self.emit(CheckpointSaved(step=state.global_step, path=str(path)))


def save_adapter(model: Any, tokenizer: Any, target: Path, meta: dict[str, Any]) -> None:
    """Write the adapter, tokenizer and `workbench.json` to `target`, replacing it atomically."""
    staging = target.with_name(f".{target.name}.new")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(str(staging))
    tokenizer.save_pretrained(str(staging))
    (staging / BEST_META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    previous = target.with_name(f".{target.name}.old")
    shutil.rmtree(previous, ignore_errors=True)
    if target.exists():
        target.rename(previous)
    staging.rename(target)
    shutil.rmtree(previous, ignore_errors=True)


def _gpu_memory_gib() -> float | None:
    if not torch.cuda.is_available():
        return None
    return round(torch.cuda.max_memory_allocated() / 2**30, 3)


def gpu_util_sampler(device: Any = None) -> GpuUtilSampler:
    """A sampler of the GPU this process trains on (`device`: the trainer's, which under
    `accelerate launch` is this rank's); without CUDA, or on a rank other than 0, which logs
    nothing, it reads nothing (None)."""
    if not torch.cuda.is_available() or os.environ.get("RANK", "0") != "0":
        return GpuUtilSampler(None)
    given = torch.device(device) if device is not None else None
    index = torch.cuda.current_device()
    if given is not None and given.type == "cuda" and given.index is not None:
        index = given.index
    uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
    return GpuUtilSampler(gpu_selector(index, str(uuid) if uuid is not None else None))
