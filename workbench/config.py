"""The workspace configuration: `workbench.toml`, validated by pydantic, written back with tomlkit.

Every field carries a docstring; the docstrings become the comments of a new `workbench.toml` and
the explanations in the UI. Unknown keys are errors that name the file, the line and the key.
"""

from __future__ import annotations

import os
import re
import tempfile
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import tomlkit
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import ErrorDetails

DEMO_MODEL = "workbench:demo-tiny"
"""The base-model name that stands for the tiny offline model (`workbench demo-model`)."""


class ConfigError(Exception):
    """A `workbench.toml` that cannot be used; `problems` holds one line per problem."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__("\n".join(problems))


class Section(BaseModel):
    """Base of every config table: unknown keys are errors, docstrings are descriptions."""

    model_config = ConfigDict(
        extra="forbid", use_attribute_docstrings=True, validate_assignment=True, frozen=False
    )


class WorkspaceSection(Section):
    name: str = ""
    """Shown in the header. Empty: the workspace directory's name."""
    description: str = ""
    """One line on what the model is for."""


class DataSection(Section):
    near_duplicate_threshold: float = Field(0.9, gt=0, le=1)
    """Similarity (0-1) above which two examples count as near duplicates."""
    val_fraction: float = Field(0.1, ge=0, lt=1)
    """Share of examples held out for validation when splitting (0: suggest a size)."""
    test_fraction: float = Field(0.1, ge=0, lt=1)
    """Share of examples held out for the final evaluation."""
    split_seed: int = 0
    """Seed of the deterministic train/val/test split."""


class TrainSection(Section):
    base_model: str = "unsloth/Llama-3.2-1B-Instruct"
    """Base model: a local directory or a hub id ("workbench:demo-tiny": the tiny offline one)."""
    backend: Literal["auto", "unsloth", "hf"] = "auto"
    """auto: Unsloth when CUDA is present, else transformers + peft + trl."""
    load_in_4bit: bool = True
    """QLoRA: load the base weights in 4 bits (needs CUDA; ignored on CPU)."""
    lora_r: int = Field(16, ge=1, le=1024)
    """LoRA rank: capacity of the adapter. 8-64 covers most tasks."""
    lora_alpha: int = Field(32, ge=1, le=4096)
    """LoRA scaling; usually r or 2r."""
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    """Dropout on the adapter inputs (0 is fastest with Unsloth)."""
    target_modules: list[str] = Field(
        default_factory=lambda: [
            "q_proj",
            "k_proj",
            "v_proj",
            "o_proj",
            "gate_proj",
            "up_proj",
            "down_proj",
        ],
        min_length=1,
    )
    """Layers that get an adapter: all linear layers train best."""
    learning_rate: float = Field(2e-4, gt=0, le=1)
    """Peak learning rate. 1e-4 to 3e-4 for LoRA."""
    epochs: float = Field(2.0, gt=0, le=100)
    """Passes over the training split (ignored when max_steps > 0)."""
    max_steps: int = Field(0, ge=0)
    """Stop after this many optimizer steps; 0: use epochs."""
    batch_size: int = Field(8, ge=1, le=4096)
    """Examples per device step."""
    gradient_accumulation_steps: int = Field(1, ge=1, le=1024)
    """Steps accumulated per optimizer update (effective batch = batch_size x this)."""
    max_seq_length: int = Field(2048, ge=16, le=262144)
    """Longest example in tokens; longer ones are flagged, and truncated in training."""
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    """Share of steps spent warming the learning rate up."""
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "cosine"
    """Learning-rate schedule after warmup."""
    weight_decay: float = Field(0.0, ge=0, le=1)
    """AdamW weight decay."""
    packing: bool = False
    """Pack several short examples into one sequence (faster on short data)."""
    completion_only_loss: bool = True
    """Learn only the assistant's answers: prompt tokens are masked out of the loss."""
    eval_steps: int = Field(50, ge=1)
    """Measure the validation loss every this many steps."""
    early_stopping_patience: int = Field(0, ge=0)
    """Stop after this many evaluations without a better eval loss; 0: never."""
    seed: int = 3407
    """Seed for weights init of the adapter, shuffling and dropout."""


class ChatSection(Section):
    n_ctx: int = Field(4096, ge=128, le=262144)
    """Context window in tokens."""
    n_gpu_layers: int = Field(-1, ge=-1)
    """Layers offloaded to the GPU; -1: all when CUDA is present."""
    system_prompt: str = ""
    """System prompt for new chats (empty: the one used in training, if any)."""
    temperature: float = Field(0.7, ge=0, le=5)
    """Sampling temperature; 0 is greedy."""
    top_p: float = Field(0.95, gt=0, le=1)
    """Nucleus sampling: keep the smallest set of tokens with this much probability."""
    max_tokens: int = Field(512, ge=1)
    """Longest answer in tokens."""
    repeat_penalty: float = Field(1.1, ge=0.5, le=3)
    """Penalty on repeated tokens (1: none)."""
    seed: int = Field(-1, ge=-1, le=2**32 - 2)
    """Sampling seed; -1: a new one for every answer (so regenerate gives a new answer)."""
    threads: int = Field(0, ge=0, le=1024)
    """CPU threads for generation; 0: one per physical core."""


DEFAULT_PRICES: dict[str, list[float]] = {
    "claude-haiku-4-5": [1.0, 5.0],
    "claude-sonnet-4-5": [3.0, 15.0],
    "claude-sonnet-5-5": [2.0, 10.0],
    "claude-opus-5-5": [4.0, 20.0],
}
"""USD per million tokens [input, output] of a few Claude models (check your current prices)."""

_BASELINE_ALIASES = {"openai": "http", "command": "cmd"}


class EvalSection(Section):
    judge_model: str = "claude-sonnet-5-5"
    """The Claude model that judges each pair."""
    judge_criteria: str = ""
    """What a good answer does on this task, in your words; added to the judge's default rubric."""
    verdict_format: Literal["auto", "tool", "json"] = "auto"
    """How the judge returns its verdict: tool (a forced tool call), json (structured output,
    for models that refuse forced tool use such as Claude Sonnet 5.5), or auto (by model)."""
    concurrency: int = Field(8, ge=1, le=256)
    """Judge calls (and fresh baseline calls) in flight at once."""
    batch: bool = False
    """Judge through the Message Batches API: half the price, but results can take hours."""
    batch_poll_s: float = Field(30.0, gt=0, le=3600)
    """Seconds between two checks on a running batch."""
    max_retries: int = Field(4, ge=0, le=20)
    """Retries of a failed API call (rate limits, server errors, timeouts), honouring
    retry-after."""
    request_timeout_s: float = Field(120.0, gt=0, le=3600)
    """Seconds before one API call counts as timed out (and is retried)."""
    split: Literal["auto", "test", "val"] = "auto"
    """Eval inputs: the test split, the validation split, or auto (test, else val)."""
    max_examples: int = Field(200, ge=1)
    """Largest eval set."""
    max_tokens: int = Field(1024, ge=1)
    """Longest answer in tokens, for the fine-tuned model and for fresh baseline calls."""
    temperature: float = Field(0.0, ge=0, le=5)
    """Sampling temperature of the fine-tuned model; 0 (greedy) makes a repeated eval reuse
    its cached judgments."""
    threads: int = Field(0, ge=0, le=1024)
    """CPU threads for the fine-tuned model (0: as chat.threads; 1 on a busy shared CPU)."""
    baseline: Literal["stored", "claude", "http", "cmd"] = "stored"
    """Old-pipeline outputs: stored (the examples' answers), or fresh calls: claude (Claude with
    baseline_prompt), http (an OpenAI-compatible endpoint) or cmd (a shell command)."""
    baseline_prompt: str = ""
    """The old pipeline's full instruction prompt, for fresh baseline calls (empty: each
    example's own system message)."""
    baseline_model: str = "claude-sonnet-5-5"
    """The old pipeline's model: called by the claude and http baselines, priced for all."""
    baseline_url: str = ""
    """Base URL of the OpenAI-compatible endpoint for baseline = "http" (e.g.
    http://localhost:8000/v1)."""
    baseline_api_key_env: str = "OPENAI_API_KEY"
    """Environment variable holding the HTTP endpoint's key (unset: no key is sent)."""
    baseline_command: str = ""
    """Shell command for baseline = "cmd": reads the input on stdin, writes the answer on stdout."""
    api_key_env: str = "ANTHROPIC_API_KEY"
    """Environment variable that holds the Anthropic API key (never written to disk)."""
    gpu_hourly_usd: float = Field(0.0, ge=0)
    """Hourly price in USD of the GPU serving the fine-tuned model, for the cost table."""
    gpu_parallel_requests: int = Field(1, ge=1, le=4096)
    """Requests that GPU serves at once in production; divides its cost per request."""
    monthly_requests: int = Field(100_000, ge=0)
    """Request volume for the projected monthly cost of both pipelines."""
    prices: dict[str, list[float]] = Field(default_factory=lambda: dict(DEFAULT_PRICES))
    """API prices in USD per million tokens, [input, output], by model name (a name also
    prices its dated versions)."""

    @field_validator("baseline", mode="before")
    @classmethod
    def _baseline_alias(cls, value: Any) -> Any:
        """Accept the older names `openai` and `command`."""
        return _BASELINE_ALIASES.get(value, value) if isinstance(value, str) else value

    @field_validator("prices")
    @classmethod
    def _two_prices(cls, value: dict[str, list[float]]) -> dict[str, list[float]]:
        """Each model's price is [input, output], both zero or more."""
        for model, pair in value.items():
            if len(pair) != 2 or min(pair) < 0:
                raise ValueError(f"{model}: expected [input, output] USD per million tokens")
        return value


class WorkbenchConfig(Section):
    """The whole `workbench.toml`."""

    workspace: WorkspaceSection = Field(default_factory=WorkspaceSection)
    """About this workspace."""
    data: DataSection = Field(default_factory=DataSection)
    """Examples: validation, duplicates and splits."""
    train: TrainSection = Field(default_factory=TrainSection)
    """QLoRA training runs (each run saves a copy of these settings)."""
    chat: ChatSection = Field(default_factory=ChatSection)
    """Local chat with an exported GGUF."""
    eval: EvalSection = Field(default_factory=EvalSection)
    """Head-to-head evaluation against the old pipeline."""


def load_config(path: Path) -> WorkbenchConfig:
    """Read and validate `path`; raise ConfigError with one line per problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(path, [f"{path}: cannot read: {exc.strerror}"]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(path, [f"{path}: not UTF-8 text ({exc.reason})"]) from exc
    return parse_config(text, path)


def parse_config(text: str, path: Path) -> WorkbenchConfig:
    """Validate TOML `text` (read from `path`, named in errors)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, [f"{path}: invalid TOML: {exc}"]) from exc
    try:
        return WorkbenchConfig.model_validate(raw)
    except ValidationError as exc:
        problems = [_describe(error, text, path) for error in exc.errors()]
        raise ConfigError(path, problems) from exc


def _describe(error: ErrorDetails, text: str, path: Path) -> str:
    """One line for one validation error: file, line, dotted key and what is allowed."""
    loc = [str(part) for part in error["loc"]]
    key = ".".join(loc)
    line = _line_of(text, loc)
    where = f"{path}:{line}" if line else str(path)
    if error["type"] == "extra_forbidden":
        allowed = ", ".join(_allowed_keys(loc[:-1]))
        return f"{where}: unknown key '{key}' (allowed here: {allowed})"
    if error["type"] == "missing":
        return f"{where}: '{key}' is required"
    return f"{where}: {key} = {_short(error.get('input'))}: {error['msg']}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _allowed_keys(loc: list[str]) -> list[str]:
    """The field names of the table at `loc` (a path of table names)."""
    model: type[BaseModel] = WorkbenchConfig
    for part in loc:
        annotation = model.model_fields[part].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


_HEADER = re.compile(r"^\s*\[([^\[\]]+)\]\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"']+)\s*=")


def _line_of(text: str, loc: list[str]) -> int | None:
    """1-based line where the key at `loc` is set, or where its table starts; None if absent."""
    table, key = ".".join(loc[:-1]), loc[-1] if loc else ""
    current = ""
    table_line = None
    for number, line in enumerate(text.splitlines(), start=1):
        if header := _HEADER.match(line):
            current = header.group(1).strip()
            if current == ".".join(loc):
                table_line = number
            continue
        if (match := _KEY.match(line)) and current == table and match.group(1).strip("\"'") == key:
            return number
    return table_line


def default_config_text(name: str = "") -> str:
    """A new `workbench.toml`: every setting at its default, each explained by a comment."""
    doc = tomlkit.document()
    doc.add(tomlkit.comment("workbench workspace settings. Every key is optional; these are the"))
    doc.add(tomlkit.comment("defaults. `workbench --help` and the app's help (F1) explain more."))
    config = WorkbenchConfig(workspace=WorkspaceSection(name=name))
    for section_name, field in WorkbenchConfig.model_fields.items():
        doc.add(tomlkit.nl())
        section: Section = getattr(config, section_name)
        doc.add(section_name, _commented_table(section, field.description or ""))
    return tomlkit.dumps(doc)


def _commented_table(section: Section, description: str) -> Any:
    table = tomlkit.table()
    table.comment(description)
    for key, field in type(section).model_fields.items():
        for line in (field.description or "").splitlines():
            table.add(tomlkit.comment(line.strip()))
        table.add(key, getattr(section, key))
    return table


def update_config(path: Path, changes: Mapping[str, Any]) -> WorkbenchConfig:
    """Set dotted keys (`train.lora_r`) in `path`, keeping the file's comments and layout.

    The result is validated before anything is written; on error the file is untouched.
    """
    text = path.read_text(encoding="utf-8")
    doc = tomlkit.parse(text)
    for dotted, value in changes.items():
        *tables, key = dotted.split(".")
        node: Any = doc
        for table in tables:
            if table not in node:
                node.add(table, tomlkit.table())
            node = node[table]
        node[key] = value
    new_text = tomlkit.dumps(doc)
    config = parse_config(new_text, path)
    atomic_write_text(path, new_text)
    return config


def parse_assignment(assignment: str) -> tuple[str, Any]:
    """`KEY=VALUE` from the command line: VALUE is read as TOML, else taken as a string."""
    key, sep, value = assignment.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"expected KEY=VALUE, got {assignment!r}")
    try:
        parsed = tomllib.loads(f"v = {value.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value.strip()
    return key.strip(), parsed


def iter_fields(model: type[BaseModel] = WorkbenchConfig) -> Iterator[tuple[str, str]]:
    """(dotted key, description) for every setting: for help screens and `--help`."""
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            for sub, description in iter_fields(annotation):
                yield f"{name}.{sub}", description
        else:
            yield name, field.description or ""


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to `path` so that a crash leaves either the old file or the new one."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
