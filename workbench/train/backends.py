"""Loading the base model with a LoRA adapter: Unsloth on CUDA, transformers + peft elsewhere.

Both return a PEFT model and its tokenizer; everything after (the trl SFTTrainer, callbacks,
events, checkpoints) is shared, so both backends produce the same events and outputs.
Heavy imports happen inside the functions. With Unsloth, `unsloth` is imported before
transformers, trl and peft, as it requires.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from workbench.config import TrainSection
from workbench.paths import cache_dir
from workbench.train.config import Backend


@dataclass
class Loaded:
    """A trainable model: the PEFT model, its tokenizer, and notes for the log."""

    model: Any
    tokenizer: Any
    device: str
    notes: list[str]


def load_model(backend: Backend, config: TrainSection, model: str) -> Loaded:
    """The base model `model` (a directory or hub id) with a fresh LoRA adapter."""
    if backend == "unsloth":
        return load_unsloth(config, model)
    return load_hf(config, model)


def prepare_unsloth() -> None:
    """Import Unsloth before anything imports transformers (its patches need to come first)."""
    os.environ.setdefault("UNSLOTH_COMPILE_LOCATION", str(cache_dir() / "unsloth_compiled_cache"))
    import unsloth  # noqa: F401


def load_unsloth(config: TrainSection, model: str) -> Loaded:
    """FastLanguageModel: 4-bit QLoRA kernels, Unsloth gradient checkpointing."""
    prepare_unsloth()
    from unsloth import FastLanguageModel

    base, tokenizer = FastLanguageModel.from_pretrained(
        model_name=model,
        max_seq_length=config.max_seq_length,
        dtype=None,
        load_in_4bit=config.load_in_4bit,
    )
    peft_model = FastLanguageModel.get_peft_model(
        base,
        r=config.lora_r,
        target_modules=list(config.target_modules),
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        bias="none",
        use_gradient_checkpointing="unsloth",
        random_state=config.seed,
    )
    return Loaded(peft_model, tokenizer, _cuda_device(), [])


def load_hf(config: TrainSection, model: str) -> Loaded:
    """transformers + peft: 4-bit through bitsandbytes on CUDA, float32 on CPU."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed

    cuda = torch.cuda.is_available()
    notes: list[str] = []
    if config.load_in_4bit and not cuda:
        notes.append("4-bit loading needs a CUDA GPU: training in 32-bit on the CPU")
    base = AutoModelForCausalLM.from_pretrained(model, **_hf_load_kwargs(config, cuda))
    base.config.use_cache = False
    if cuda:
        _prepare_for_gpu_training(base, quantized=config.load_in_4bit)
    set_seed(config.seed)
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(config.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )
    tokenizer = AutoTokenizer.from_pretrained(model)
    return Loaded(get_peft_model(base, lora), tokenizer, _cuda_device() if cuda else "cpu", notes)


def _hf_load_kwargs(config: TrainSection, cuda: bool) -> dict[str, Any]:
    import torch

    if not cuda:
        return {"dtype": torch.float32}
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    kwargs: dict[str, Any] = {
        "dtype": dtype,
        "device_map": {"": int(os.environ.get("LOCAL_RANK", "0"))},
    }
    if config.load_in_4bit:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype,
        )
    return kwargs


def _prepare_for_gpu_training(model: Any, quantized: bool) -> None:
    """Gradient checkpointing (and k-bit preparation) as in the standard QLoRA recipe."""
    if quantized:
        from peft import prepare_model_for_kbit_training

        prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=True,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()


def _cuda_device() -> str:
    import torch

    index = torch.cuda.current_device()
    return f"cuda:{index} {torch.cuda.get_device_name(index)}"
