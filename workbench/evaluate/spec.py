"""An eval's settings (`spec.json` in its directory): what to compare, how to judge, what it costs.

The spec is frozen when the eval is created, so a resumed eval judges exactly what it started
with. It holds the *names* of the environment variables that carry API keys, never their values.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from workbench.config import WorkbenchConfig, atomic_write_text

BaselineKind = Literal["stored", "claude", "http", "cmd"]
SplitChoice = Literal["auto", "test", "val"]
BASELINE_KINDS: tuple[BaselineKind, ...] = ("stored", "claude", "http", "cmd")
SPEC_FILE = "spec.json"


class EvalError(Exception):
    """An eval that cannot be created or run as asked; the message says what to do."""


@dataclass(frozen=True)
class EvalSpec:
    """Everything an eval needs besides its items; defaults come from `[eval]` in the config."""

    model: str
    """The fine-tuned GGUF (absolute path)."""
    baseline: BaselineKind = "stored"
    judge_model: str = "claude-sonnet-5-5"
    judge_criteria: str = ""
    verdict_format: Literal["auto", "tool", "json"] = "auto"
    limit: int = 200
    split: SplitChoice = "auto"
    filter_text: str = ""
    """Full-text filter on the eval split (empty: every example)."""
    tag: str = ""
    """Only examples with this tag (empty: any)."""
    concurrency: int = 8
    batch: bool = False
    batch_poll_s: float = 30.0
    max_retries: int = 4
    request_timeout_s: float = 120.0
    max_tokens: int = 1024
    temperature: float = 0.0
    repeat_penalty: float = 1.1
    n_ctx: int = 4096
    n_gpu_layers: int = -1
    threads: int = 0
    seed: int = 0
    baseline_prompt: str = ""
    baseline_model: str = "claude-sonnet-5-5"
    baseline_url: str = ""
    baseline_api_key_env: str = "OPENAI_API_KEY"
    baseline_command: str = ""
    api_key_env: str = "ANTHROPIC_API_KEY"
    prices: dict[str, list[float]] = field(default_factory=dict)

    def with_changes(self, **changes: Any) -> EvalSpec:
        """A copy with some settings changed; unknown names are an EvalError."""
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise EvalError(f"unknown eval setting(s): {', '.join(sorted(unknown))}")
        return replace(self, **changes)


def spec_from_config(config: WorkbenchConfig, model: Path, **overrides: Any) -> EvalSpec:
    """The spec for evaluating `model` with the workspace's `[eval]` and `[chat]` settings."""
    ev, chat = config.eval, config.chat
    spec = EvalSpec(
        model=str(Path(model).expanduser().resolve()),
        baseline=ev.baseline,
        judge_model=ev.judge_model,
        judge_criteria=ev.judge_criteria,
        verdict_format=ev.verdict_format,
        limit=ev.max_examples,
        split=ev.split,
        concurrency=ev.concurrency,
        batch=ev.batch,
        batch_poll_s=ev.batch_poll_s,
        max_retries=ev.max_retries,
        request_timeout_s=ev.request_timeout_s,
        max_tokens=ev.max_tokens,
        temperature=ev.temperature,
        repeat_penalty=chat.repeat_penalty,
        n_ctx=chat.n_ctx,
        n_gpu_layers=chat.n_gpu_layers,
        threads=ev.threads or int(getattr(chat, "threads", 0)),
        seed=config.data.split_seed,
        baseline_prompt=ev.baseline_prompt,
        baseline_model=ev.baseline_model,
        baseline_url=ev.baseline_url,
        baseline_api_key_env=ev.baseline_api_key_env,
        baseline_command=ev.baseline_command,
        api_key_env=ev.api_key_env,
        prices={name: list(pair) for name, pair in ev.prices.items()},
    )
    given = {key: value for key, value in overrides.items() if value is not None}
    return spec.with_changes(**given)


def save_spec(eval_dir: Path, spec: EvalSpec) -> None:
    """Write `spec.json` atomically."""
    atomic_write_text(eval_dir / SPEC_FILE, json.dumps(asdict(spec), indent=2) + "\n")


def load_spec(eval_dir: Path) -> EvalSpec:
    """Read `spec.json`; EvalError when it is missing or unreadable."""
    path = eval_dir / SPEC_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EvalError(f"{path}: cannot read the eval's settings ({exc})") from exc
    known = {f.name for f in fields(EvalSpec)}
    try:
        return EvalSpec(**{key: value for key, value in raw.items() if key in known})
    except TypeError as exc:
        raise EvalError(f"{path}: incomplete eval settings ({exc})") from exc
