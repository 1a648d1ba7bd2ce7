"""What the Chat screen keeps besides widgets: the loaded models, text batching, settings parsing
and the lines that describe a model and an answer. No Textual here: the screen's workers call
these from threads, and the unit tests call them directly.

`ModelSlots` owns the models: a model is closed when it is replaced or when the screen goes,
but never while an answer is being generated with it (closing frees memory llama.cpp is
reading). `TextBatcher` turns a token stream into a few screen updates a second, never
dropping text.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workbench.chat.engine import AnswerDone, ChatModel, ChatSettings, TokenStreamed
    from workbench.config import ChatSection

SIDES = ("A", "B")
"""Side A is the model you chat with; side B is the second model in compare mode."""
BATCH_S = 0.03
"""The growing answer is sent to the screen at most this often (about 33 times a second)."""

STOP_NOTES = {
    "end": "",
    "length": "max tokens reached",
    "context": "context full",
    "cancelled": "stopped",
}


# --- models -----------------------------------------------------------------------------------


class ModelSlots:
    """The model loaded on each side; thread-safe.

    A model that is replaced or removed while an answer is running is closed when the answer
    ends; `close_all` (the screen going away) closes the rest the same way.
    """

    def __init__(self) -> None:
        self._models: list[ChatModel | None] = [None, None]
        self._tickets = [0, 0]
        self._retired: list[ChatModel] = []
        self._answering = False
        self._closed = False
        self._lock = threading.Lock()

    def get(self, side: int) -> ChatModel | None:
        return self._models[side]

    def ticket(self, side: int) -> int:
        """A number for a load about to start; only the newest load of a side is kept."""
        with self._lock:
            self._tickets[side] += 1
            return self._tickets[side]

    def ticket_now(self, side: int) -> int:
        """The ticket of the newest load of a side."""
        return self._tickets[side]

    def put(self, side: int, model: ChatModel, ticket: int) -> bool:
        """Install a freshly loaded model (from any thread); False when it arrived too late
        (a newer load started, or the screen is gone) and was closed instead."""
        with self._lock:
            if self._closed or ticket != self._tickets[side]:
                self._retired.append(model)
                accepted = False
            else:
                old, self._models[side] = self._models[side], model
                if old is not None:
                    self._retired.append(old)
                accepted = True
        self._close_retired()
        return accepted

    def remove(self, side: int) -> None:
        """Unload a side's model (closed now, or once the running answer ends)."""
        with self._lock:
            self._tickets[side] += 1  # a load still running for this side is dropped
            old, self._models[side] = self._models[side], None
            if old is not None:
                self._retired.append(old)
        self._close_retired()

    def start_answering(self) -> None:
        with self._lock:
            self._answering = True

    def stop_answering(self) -> None:
        """The answer ended: close what was retired meanwhile."""
        with self._lock:
            self._answering = False
        self._close_retired()

    def close_all(self) -> None:
        """The screen is going: close every model (after the running answer, if any)."""
        with self._lock:
            self._closed = True
            self._retired += [model for model in self._models if model is not None]
            self._models = [None, None]
        self._close_retired()

    def _close_retired(self) -> None:
        with self._lock:
            if self._answering:
                return
            retired, self._retired = self._retired, []
        for model in retired:
            model.close()


# --- streaming ----------------------------------------------------------------------------------


class TextBatcher:
    """Collects an answer's tokens and says when the text so far is due on screen."""

    def __init__(self, interval: float = BATCH_S, clock: Callable[[], float] = time.monotonic):
        self.interval = interval
        self.clock = clock
        self.pieces: list[str] = []
        self.tokens = 0
        self.first_token_s = 0.0
        self.elapsed_s = 0.0
        self._shown_at = 0.0

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    def add(self, event: TokenStreamed) -> bool:
        """Take one token; True when the screen should be updated now."""
        self.pieces.append(event.text)
        self.tokens = event.index
        self.elapsed_s = event.elapsed_s
        if event.index == 1:
            self.first_token_s = event.elapsed_s
        now = self.clock()
        if event.index == 1 or now - self._shown_at >= self.interval:
            self._shown_at = now
            return True
        return False


def skipped_answer() -> AnswerDone:
    """The answer of a model whose turn never came (stopped before it started)."""
    from workbench.chat.engine import AnswerDone

    return AnswerDone("", "cancelled", 0, 0, 0.0, 0.0, 0.0)


# --- what the screen says -----------------------------------------------------------------------


def model_line(model: ChatModel) -> str:
    """`M · llama f16 · 3.4 MB · context 2,048 · CPU, 2 threads · its own chat template`."""
    info, loaded = model.info, model.loaded
    where = (
        f"{loaded.gpu_layers} layers on the GPU"
        if loaded.gpu_layers
        else f"CPU, {loaded.threads} thread{'s' if loaded.threads != 1 else ''}"
    )
    template = {
        "gguf": "its own chat template",
        "given": "the given chat template",
    }.get(loaded.template_source, "no chat template in the file: ChatML")
    kind = " ".join(part for part in (info.architecture, info.quantization) if part)
    return (
        f"{info.name} · {kind or 'unknown architecture'} · {size_text(info.file_bytes)} · "
        f"context {loaded.context_size:,} · {where} · {template}"
    )


def size_text(count: int) -> str:
    """`1.2 GB`, `3.4 MB`, `900 KB`."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} B"


def streaming_line(tokens: int, first_token_s: float, elapsed_s: float) -> str:
    """`40 tokens · first token 0.21 s · 37.5 tokens/s …` while the answer grows."""
    rate = (tokens - 1) / (elapsed_s - first_token_s) if elapsed_s > first_token_s else 0.0
    parts = [f"{tokens:,} token{'s' if tokens != 1 else ''}", f"first token {first_token_s:.2f} s"]
    if rate:
        parts.append(f"{rate:.1f} tokens/s")
    return " · ".join(parts) + " …"


def done_line(done: AnswerDone) -> str:
    """`42 tokens · first token 0.21 s · 37.5 tokens/s · max tokens reached`."""
    if done.completion_tokens == 0:
        return "stopped before the first token" if done.stop_reason == "cancelled" else "no tokens"
    parts = [
        f"{done.completion_tokens:,} token{'s' if done.completion_tokens != 1 else ''}",
        f"first token {done.time_to_first_token_s:.2f} s",
    ]
    if done.tokens_per_s:
        parts.append(f"{done.tokens_per_s:.1f} tokens/s")
    note = STOP_NOTES.get(done.stop_reason, done.stop_reason)
    if note:
        parts.append(note)
    return " · ".join(parts)


# --- settings -----------------------------------------------------------------------------------

SAMPLING_FIELDS: tuple[tuple[str, str], ...] = (
    ("temperature", "Temperature"),
    ("top_p", "Top-p"),
    ("max_tokens", "Max tokens"),
    ("repeat_penalty", "Repeat penalty"),
)
LOAD_FIELDS: tuple[tuple[str, str], ...] = (
    ("n_ctx", "Context size"),
    ("n_gpu_layers", "GPU layers"),
)


class SettingsError(ValueError):
    """A setting typed on the screen is out of range; the message names it and the range."""


def checked(section: ChatSection, typed: Mapping[str, str], labels: Mapping[str, str]) -> Any:
    """`section` with the typed values, validated by the `[chat]` rules of workbench.toml.

    Raises:
        SettingsError: `Temperature: input should be less than or equal to 5`.
    """
    from pydantic import ValidationError

    values = {key: text.strip() for key, text in typed.items()}
    try:
        return type(section).model_validate({**section.model_dump(), **values})
    except ValidationError as exc:
        error = exc.errors()[0]
        key = str(error["loc"][0]) if error["loc"] else ""
        raise SettingsError(f"{labels.get(key, key)}: {error['msg'].lower()}") from exc


def answer_settings(
    base: ChatSettings, section: ChatSection, typed: Mapping[str, str]
) -> ChatSettings:
    """The settings for the next answer: `base` with the typed sampling values."""
    valid = checked(section, typed, dict(SAMPLING_FIELDS))
    return replace(base, **{key: getattr(valid, key) for key, _ in SAMPLING_FIELDS})


@dataclass(frozen=True)
class ModelChoice:
    """A model to load, and how (context size, layers on the GPU)."""

    path: Path
    n_ctx: int
    n_gpu_layers: int


def model_choice(path: Path, section: ChatSection, typed: Mapping[str, str]) -> ModelChoice:
    """A choice from the picker's fields; SettingsError when one is out of range."""
    valid = checked(section, typed, dict(LOAD_FIELDS))
    return ModelChoice(path, valid.n_ctx, valid.n_gpu_layers)


def gpu_hint(gpu_name: str | None) -> str:
    """What -1 GPU layers means on this machine."""
    if gpu_name:
        return f"-1: every layer on the {gpu_name} (when llama.cpp was built with CUDA); 0: CPU"
    return "no GPU found: the model runs on the CPU (-1 offloads every layer where CUDA is)"


def peek_gguf(path: Path) -> str:
    """One line about a GGUF from its header (no native code), or why it cannot be used."""
    from workbench.chat.errors import ChatError
    from workbench.chat.gguf_file import read_gguf_info

    try:
        info = read_gguf_info(path)
    except ChatError as exc:
        return f"[b red]✗[/] {_escape(str(exc))}"
    kind = " ".join(part for part in (info.architecture, info.quantization) if part)
    trained = f"trained context {info.context_length:,}" if info.context_length else ""
    template = "chat template ✓" if info.chat_template else "no chat template (ChatML is used)"
    parts = [_escape(info.name), kind, size_text(info.file_bytes), trained, template]
    return "[b green]✓[/] " + " · ".join(part for part in parts if part)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def resolve_path(text: str, root: Path) -> Path:
    """A typed path: `~` expanded; relative to the current directory, else to the workspace."""
    path = Path(text).expanduser()
    if path.is_absolute() or path.exists():
        return path.resolve()
    return (root / path).resolve()
