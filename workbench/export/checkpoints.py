"""Which adapter an export takes from a run, on which base model, with which chat template.

A training run (`workbench.train`) leaves in `runs/<id>/`:

* `config.json` — the run's `[train]` settings (`base_model` as the user gave it);
* `run.json` — `model`: the base model as loaded (a local directory or a hub id);
* `best/` — the adapter with the lowest eval loss (peft files, the tokenizer as training used
  it, `workbench.json` with `step` and `eval_loss`);
* `checkpoints/checkpoint-<step>/` — the last few trainer checkpoints (peft files inside).

Only these files are read here: nothing is imported from the training engine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.config import DEMO_MODEL

BEST_DIR = "best"
CHECKPOINTS_DIR = "checkpoints"
BEST_META = "workbench.json"
RUN_CONFIG = "config.json"
RUN_RECORD = "run.json"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")

#: What training uses when the base model has no chat template (`workbench.train.data`).
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


class ExportInputError(Exception):
    """The run, checkpoint or base model cannot be exported; the message says what to do."""


@dataclass(frozen=True)
class Checkpoint:
    """An adapter directory of a run."""

    label: str
    """`best`, `last` or `step-<N>`: used in file names."""
    path: Path
    step: int | None = None
    eval_loss: float | None = None


def resolve_checkpoint(run_dir: Path, which: str | int = "best") -> Checkpoint:
    """The adapter `which` names: `best`, `last` (the newest checkpoint) or a step number.

    Raises:
        ExportInputError: no such run, or no such checkpoint (the message lists what exists).
    """
    if not run_dir.is_dir():
        raise ExportInputError(f"no run directory {run_dir}; see `workbench runs list`")
    choice = str(which).strip().lower()
    if choice == "best":
        return _best(run_dir)
    steps = checkpoint_steps(run_dir)
    if choice == "last":
        if not steps:
            return _no_checkpoints(run_dir)
        return _step(run_dir, max(steps), "last")
    if choice.isdigit():
        if int(choice) not in steps:
            listed = ", ".join(map(str, sorted(steps))) or "none"
            raise ExportInputError(
                f"run {run_dir.name} has no checkpoint at step {choice} (saved steps: {listed}); "
                "use --checkpoint best, last or one of those steps"
            )
        return _step(run_dir, int(choice), f"step-{choice}")
    raise ExportInputError(
        f"--checkpoint {which!r}: expected best, last or a step number (e.g. 200)"
    )


def checkpoint_steps(run_dir: Path) -> list[int]:
    """Steps of the run's checkpoints that hold an adapter, ascending."""
    steps = []
    for path in (run_dir / CHECKPOINTS_DIR).glob("checkpoint-*"):
        step = path.name.rsplit("-", 1)[-1]
        if step.isdigit() and has_adapter(path):
            steps.append(int(step))
    return sorted(steps)


def has_adapter(path: Path) -> bool:
    """Whether `path` holds a peft adapter (config and weights)."""
    return (path / ADAPTER_CONFIG).is_file() and any(
        (path / name).is_file() for name in ADAPTER_WEIGHTS
    )


def _best(run_dir: Path) -> Checkpoint:
    path = run_dir / BEST_DIR
    if not has_adapter(path):
        steps = checkpoint_steps(run_dir)
        hint = " or --checkpoint last" if steps else ""
        raise ExportInputError(
            f"run {run_dir.name} has no best adapter yet (best/ is written at the first "
            f"evaluation); wait for it{hint}"
        )
    meta = _read_json(path / BEST_META)
    step = meta.get("step")
    loss = meta.get("eval_loss")
    return Checkpoint(
        "best",
        path,
        step if isinstance(step, int) else None,
        float(loss) if isinstance(loss, int | float) else None,
    )


def _step(run_dir: Path, step: int, label: str) -> Checkpoint:
    return Checkpoint(label, run_dir / CHECKPOINTS_DIR / f"checkpoint-{step}", step)


def _no_checkpoints(run_dir: Path) -> Checkpoint:
    hint = "; --checkpoint best exports the best adapter" if has_adapter(run_dir / BEST_DIR) else ""
    raise ExportInputError(f"run {run_dir.name} has saved no checkpoint yet{hint}")


def run_base_model(run_dir: Path) -> tuple[str, str]:
    """(the base model as the user named it, where to load it from) for the run.

    Raises:
        ExportInputError: the run does not say, or its local base model directory has gone.
    """
    record = _read_json(run_dir / RUN_RECORD)
    config = _read_json(run_dir / RUN_CONFIG)
    named = str(record.get("base_model") or config.get("base_model") or "")
    model = str(record.get("model") or "")
    if not named and not model:
        raise ExportInputError(
            f"run {run_dir.name} does not say which base model it trained "
            f"({RUN_RECORD} and {RUN_CONFIG} are missing or have no base model)"
        )
    if named == DEMO_MODEL and not (model and Path(model).is_dir()):
        from workbench.demo_model import ensure_demo_model

        return named, str(ensure_demo_model())
    model = model or named
    if _looks_local(model) and not Path(model).expanduser().is_dir():
        raise ExportInputError(
            f"the base model of run {run_dir.name} is gone: {model} is not a directory; "
            "put the model back there to export"
        )
    return named or model, model


def _looks_local(model: str) -> bool:
    return model.startswith(("/", ".", "~")) or model.count("/") != 1


def local_model_dir(model: str) -> Path:
    """A directory holding `model`'s files: itself, or the hub cache's snapshot (no download
    when offline).

    Raises:
        ExportInputError: a hub model that is neither cached nor downloadable.
    """
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(model))
    except Exception as exc:  # offline and not cached, gated, or no such repo
        raise ExportInputError(
            f"cannot get the base model {model!r} from the hub cache or the hub ({exc}); "
            "download it once on a connected machine, or set train.base_model to a local path"
        ) from exc


def training_chat_template(adapter_dir: Path, base_dir: Path) -> tuple[str, str]:
    """(template, where it came from) as training used it.

    Training saves its tokenizer next to the adapter, template included (ChatML when the base
    model had none); older or hand-made adapter folders fall back to the base model's template,
    then to ChatML, which is what training would have used.
    """
    for source, directory in (("adapter", adapter_dir), ("base model", base_dir)):
        if template := read_chat_template(directory):
            return template, source
    return CHATML_TEMPLATE, "chatml (the base model has none)"


def read_chat_template(directory: Path) -> str:
    """The chat template saved in a tokenizer directory, or ''."""
    jinja = directory / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    for name, key in (
        ("tokenizer_config.json", "chat_template"),
        ("chat_template.json", "chat_template"),
    ):
        value = _read_json(directory / name).get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
