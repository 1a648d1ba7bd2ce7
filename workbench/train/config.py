"""A run's settings, checked before anything starts: overrides, backend and base model.

The settings are the workspace's `[train]` table (`workbench.config.TrainSection`) with this run's
overrides on top; each run saves its own copy. Nothing here imports torch: the checks run in the
CLI and the app before a run is launched, and every refusal says what to change.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from workbench.config import DEMO_MODEL, TrainSection

Backend = Literal["unsloth", "hf"]

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_WEIGHT_FILES = ("*.safetensors", "*.bin", "*.safetensors.index.json")


class TrainConfigError(Exception):
    """Settings that cannot start a run; `problems` holds one line per problem, each saying why."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def run_config(base: TrainSection, overrides: Mapping[str, Any] | None = None) -> TrainSection:
    """`base` with `overrides` (keys `lora_r` or `train.lora_r`) applied and validated."""
    changes = {_train_key(key): value for key, value in (overrides or {}).items()}
    unknown = sorted(key for key in changes if key not in TrainSection.model_fields)
    if unknown:
        allowed = ", ".join(TrainSection.model_fields)
        raise TrainConfigError(
            [f"unknown setting train.{key} (allowed: {allowed})" for key in unknown]
        )
    try:
        return TrainSection.model_validate({**base.model_dump(), **changes})
    except ValidationError as exc:
        raise TrainConfigError([_describe(error) for error in exc.errors()]) from exc


def _train_key(key: str) -> str:
    key = key.strip()
    return key.removeprefix("train.")


def _describe(error: Any) -> str:
    key = ".".join(str(part) for part in error["loc"])
    value = repr(error.get("input"))
    value = value if len(value) <= 40 else value[:37] + "..."
    return f"train.{key} = {value}: {error['msg']}"


def config_from_file(path: Path) -> TrainSection:
    """The settings a run saved (`config.json`)."""
    return TrainSection.model_validate(json.loads(path.read_text(encoding="utf-8")))


# --- device and backend ----------------------------------------------------------------------


@dataclass(frozen=True)
class Device:
    """What this machine can train on, found without importing torch."""

    gpus: int = 0
    name: str = "CPU"
    unsloth_installed: bool = False

    @property
    def cuda(self) -> bool:
        return self.gpus > 0


def probe_device() -> Device:
    """GPUs through nvidia-smi (`CUDA_VISIBLE_DEVICES` respected); whether Unsloth is installed."""
    from workbench.accelerator import detect_accelerator

    gpus = detect_accelerator().gpus
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    count = len(gpus)
    if visible is not None:
        count = min(count, len([part for part in visible.split(",") if part.strip()]))
    name = gpus[0].name if gpus and count else "CPU"
    return Device(gpus=count, name=name, unsloth_installed=_installed("unsloth"))


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def choose_backend(config: TrainSection, device: Device) -> tuple[Backend, str]:
    """The backend a run uses and, when auto fell back, a note saying why."""
    if config.backend == "hf":
        return "hf", ""
    if config.backend == "unsloth":
        if not device.cuda:
            raise TrainConfigError(
                [
                    'train.backend = "unsloth" needs a CUDA GPU and none was found; '
                    'set train.backend = "auto" (or "hf") to train on this machine'
                ]
            )
        if not device.unsloth_installed:
            raise TrainConfigError(
                [
                    'train.backend = "unsloth" but Unsloth is not installed; install the GPU '
                    'extras (pip install -e ".[gpu]") or set train.backend = "auto"'
                ]
            )
        return "unsloth", ""
    if not device.cuda:
        return "hf", ""
    if device.gpus > 1:
        return "hf", f"{device.gpus} GPUs: transformers + peft + trl through accelerate launch"
    if not device.unsloth_installed:
        return "hf", 'Unsloth is not installed (pip install -e ".[gpu]"): using transformers'
    return "unsloth", ""


# --- base model --------------------------------------------------------------------------------


def resolve_model(base_model: str, root: Path | None = None) -> str:
    """A loadable model: a local directory (checked) or a hub id; the demo name is built."""
    if base_model == DEMO_MODEL:
        from workbench.demo_model import ensure_demo_model

        return str(ensure_demo_model())
    path = Path(base_model).expanduser()
    if not path.is_absolute() and root is not None and (root / path).exists():
        path = root / path
    if path.exists() or _looks_like_path(base_model):
        check_model_dir(path, base_model)
        return str(path.resolve())
    if _HUB_ID.match(base_model):
        _check_hub_reachable(base_model)
        return base_model
    raise TrainConfigError(
        [
            f"train.base_model = {base_model!r}: neither a local model directory nor a hub id "
            f"(org/name); give a path, a hub id, or {DEMO_MODEL!r}"
        ]
    )


def _looks_like_path(text: str) -> bool:
    """A path, not a hub id (`org/name`): absolute, relative with a dot, or deeper than one `/`."""
    return text.startswith(("/", ".", "~")) or text.count("/") > 1 or "\\" in text


def check_model_dir(path: Path, given: str) -> None:
    """Refuse a directory that does not hold a readable Hugging Face model."""
    where = f"train.base_model = {given!r}"
    if not path.exists():
        raise TrainConfigError([f"{where}: no such directory ({path})"])
    if not path.is_dir():
        raise TrainConfigError([f"{where}: {path} is a file; give the model's directory"])
    config = path / "config.json"
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TrainConfigError(
            [f"{where}: {path} is not a model directory (no config.json)"]
        ) from None
    except (OSError, ValueError) as exc:
        raise TrainConfigError([f"{where}: cannot read {config}: {exc}"]) from exc
    if not isinstance(data, dict) or "model_type" not in data:
        raise TrainConfigError([f"{where}: {config} does not describe a model (no model_type)"])
    if not any(any(path.glob(pattern)) for pattern in _WEIGHT_FILES):
        raise TrainConfigError([f"{where}: {path} holds no weights (*.safetensors or *.bin)"])


def _check_hub_reachable(repo_id: str) -> None:
    """Offline (HF_HUB_OFFLINE=1), a hub id must already be in the local cache."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() not in {"1", "true", "yes", "on"}:
        return
    from huggingface_hub import try_to_load_from_cache

    if not isinstance(try_to_load_from_cache(repo_id, "config.json"), str):
        raise TrainConfigError(
            [
                f"train.base_model = {repo_id!r}: not in the local Hugging Face cache and the hub "
                "is offline (HF_HUB_OFFLINE=1); download it first or give a local directory"
            ]
        )
