"""Candidate outputs: the fine-tuned GGUF answering each eval input, timed.

Behind a small interface (`Generator.generate(messages) -> Generation`). The llama.cpp part is
the chat engine's (`workbench.chat.engine.ChatModel`): the same AMX-safe loading, the same probe
of a new file in a child process, and the same prompt, rendered with the GGUF's chat template and
tokenized as training did, so an eval answers exactly the prompt a chat would send (no second
BOS). llama_cpp is imported only when a model is loaded.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from workbench.chat.engine import ChatModel, ChatSettings


@dataclass(frozen=True)
class Generation:
    """One answer, with what it cost to produce. `error` set: no usable answer."""

    text: str = ""
    latency_s: float | None = None
    """Wall time of the request (None: not measured, e.g. stored answers)."""
    input_tokens: int = 0
    output_tokens: int = 0
    estimated: bool = False
    """Token counts estimated from the text (no tokenizer or usage report)."""
    cached: bool = False
    """Reused from the cache: paid by an earlier eval."""
    error: str = ""

    @property
    def tokens_per_s(self) -> float | None:
        """Output tokens per second of wall time, when measured."""
        if not self.latency_s or self.estimated or not self.output_tokens:
            return None
        return self.output_tokens / self.latency_s

    @property
    def ok(self) -> bool:
        return not self.error


class Generator(Protocol):
    """Anything that answers a conversation (blocking; called from one thread at a time)."""

    def generate(self, messages: Sequence[Mapping[str, Any]]) -> Generation:
        """The answer to `messages` (the conversation so far, without the answer)."""
        ...

    def close(self) -> None:
        """Free the model."""
        ...


class LlamaCppGenerator:
    """A GGUF run by llama.cpp through the chat engine, with the chat template in the file.

    One answer is one blocking call (a cancelled eval stops between answers, not within one).
    """

    def __init__(
        self,
        path: Path,
        *,
        n_ctx: int = 4096,
        n_gpu_layers: int = -1,
        max_tokens: int = 1024,
        temperature: float = 0.0,
        repeat_penalty: float = 1.1,
        seed: int = 0,
        threads: int = 0,
        repack: bool | None = None,
        probe: bool = True,
    ) -> None:
        """`repack`: llama.cpp's extra buffer types (None: on, except on AMX CPUs where they
        crash quantized models). `probe`: try a new file in a child process first."""
        from workbench.chat.engine import ChatSettings

        self.path = Path(path)
        self.settings: ChatSettings = ChatSettings(
            n_ctx=n_ctx,
            n_gpu_layers=n_gpu_layers,
            threads=threads,
            extra_buffers=repack,
            max_tokens=max_tokens,
            temperature=temperature,
            repeat_penalty=repeat_penalty,
            seed=seed,
        )
        self.model: ChatModel | None = self._load(probe)

    def _load(self, probe: bool) -> ChatModel:
        """Load the model; ValueError with a one-line reason when the file is not usable (what
        the eval engine reports as the eval's failure)."""
        from workbench.chat.engine import ChatModel
        from workbench.chat.errors import ChatError

        if not self.path.is_file():
            raise ValueError(f"{self.path}: no such GGUF file (export one first)")
        try:
            return ChatModel.load(self.path, self.settings, probe=probe)
        except ChatError as exc:
            raise ValueError(str(exc)) from exc

    def prompt_tokens(self, messages: Sequence[Mapping[str, Any]]) -> list[int]:
        """The token ids the model is given for `messages` (the chat engine's rendering)."""
        return self._model().prompt_tokens(messages)

    def generate(self, messages: Sequence[Mapping[str, Any]]) -> Generation:
        """Answer greedily (or at the configured temperature); errors become `error`."""
        from workbench.chat.errors import ChatError

        started = time.perf_counter()
        try:
            done = self._model().answer(messages, self.settings)
        except (ChatError, ValueError, RuntimeError) as exc:
            return Generation(error=f"fine-tuned model: {exc}")
        return Generation(
            text=done.text,
            latency_s=time.perf_counter() - started,
            input_tokens=done.prompt_tokens,
            output_tokens=done.completion_tokens,
        )

    def _model(self) -> ChatModel:
        from workbench.chat.errors import ChatError

        if self.model is None:
            raise ChatError(f"{self.path.name} is closed")
        return self.model

    def close(self) -> None:
        model, self.model = self.model, None
        if model is not None:
            model.close()
