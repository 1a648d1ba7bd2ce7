"""Merge a LoRA adapter into 16-bit base weights and write a Hugging Face model directory.

The base model is loaded in 16 bits (bf16 when it was saved in bf16, else f16; never 4-bit,
even after QLoRA training), the adapter applied with peft and folded into the weights
(`merge_and_unload`), and the result saved as safetensors.

The tokenizer is *copied* from the base model's directory, not re-saved: transformers 5 writes
a `tokenizer.json` but drops `tokenizer.model`, `add_bos_token` and `added_tokens_decoder` on a
re-save, and the GGUF converter would then produce a vocabulary that tokenizes differently from
training (an extra BOS on every prompt, for one). Only the chat template is set, to the one
training used, so llama.cpp formats a conversation into the same token ids.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

TOKENIZER_FILES = (
    "tokenizer.model",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "vocab.txt",
    "spiece.model",
    "tiktoken.model",
    "generation_config.json",
)
"""Files copied from the base model (those present)."""
STALE_TEMPLATE_FILES = ("chat_template.jinja", "chat_template.json")


class MergeError(Exception):
    """The adapter cannot be merged; the message says why and what to do."""


def merge_adapter(
    base_dir: Path,
    adapter_dir: Path,
    out_dir: Path,
    chat_template: str,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Write `out_dir`: `base_dir` with the adapter in `adapter_dir` merged, in 16 bits.

    Args:
        base_dir: The base model's directory (weights, config, tokenizer files).
        adapter_dir: A peft adapter (`adapter_config.json` + weights).
        out_dir: Created (or emptied) and filled with the merged model.
        chat_template: Written into the merged tokenizer config.
        progress: Called with a short note before each slow step.

    Raises:
        MergeError: the base model or the adapter cannot be loaded, or they do not fit together.
    """
    note = progress or (lambda message: None)
    import torch

    dtype = merge_dtype(base_dir)
    note(f"loading the base model in {str(dtype).removeprefix('torch.')}")
    model = _load_base(base_dir, dtype)
    note("applying and merging the adapter")
    merged = _merge(model, adapter_dir)
    note("saving the merged weights")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    merged.save_pretrained(str(out_dir), safe_serialization=True)
    copy_tokenizer(base_dir, out_dir, chat_template)
    _readable(out_dir)
    del merged, model
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return out_dir


def _readable(out_dir: Path) -> None:
    """Give the saved files the usual permissions (some are written private)."""
    umask = os.umask(0)
    os.umask(umask)
    for path in out_dir.iterdir():
        if path.is_file():
            path.chmod(0o666 & ~umask)


def merge_dtype(base_dir: Path) -> Any:
    """bf16 when the base model was saved in bf16, else f16 (what GGUF f16 holds)."""
    import torch

    config = _read_json(base_dir / "config.json")
    saved = str(config.get("dtype") or config.get("torch_dtype") or "")
    return torch.bfloat16 if saved == "bfloat16" else torch.float16


def _load_base(base_dir: Path, dtype: Any) -> Any:
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    device_map = {"": 0} if torch.cuda.is_available() else None
    try:
        return AutoModelForCausalLM.from_pretrained(
            str(base_dir), dtype=dtype, device_map=device_map, low_cpu_mem_usage=True
        )
    except Exception as exc:  # transformers raises many kinds for a bad model directory
        raise MergeError(f"cannot load the base model from {base_dir}: {_short(exc)}") from exc


def _merge(model: Any, adapter_dir: Path) -> Any:
    from peft import PeftModel

    try:
        with_adapter = PeftModel.from_pretrained(model, str(adapter_dir))
        return with_adapter.merge_and_unload()
    except Exception as exc:  # peft: shape mismatches, missing modules, bad files
        raise MergeError(
            f"cannot merge the adapter in {adapter_dir} into this base model: {_short(exc)}; "
            "was it trained on a different base model?"
        ) from exc


def copy_tokenizer(base_dir: Path, out_dir: Path, chat_template: str) -> None:
    """Copy the base model's tokenizer files into `out_dir`; set `chat_template` in its config."""
    for name in STALE_TEMPLATE_FILES:
        (out_dir / name).unlink(missing_ok=True)
    for name in TOKENIZER_FILES:
        source = base_dir / name
        if source.is_file():
            shutil.copyfile(source, out_dir / name)
    config_path = out_dir / "tokenizer_config.json"
    config = _read_json(config_path)
    config["chat_template"] = chat_template
    config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", "utf-8")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 240 else text[:237] + "..."
