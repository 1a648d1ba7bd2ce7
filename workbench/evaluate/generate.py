"""Candidate outputs: the fine-tuned GGUF answering each eval input, timed.

Behind a small interface (`Generator.generate(messages) -> Generation`) so that the chat engine
(`workbench/chat`) can take over the llama.cpp part later. llama_cpp is imported only when a
model is loaded.

Quantized GGUFs (q8_0, q4_k_m) crash llama.cpp on CPUs with AMX when it repacks their weights
into its "extra buffer types"; :class:`LlamaCppGenerator` loads models with those disabled
(`repack=False`), which costs some CPU speed on quantized models and nothing on a GPU.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


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


_LOAD_LOCK = threading.Lock()


@contextlib.contextmanager
def _no_weight_repacking() -> Iterator[None]:
    """Load llama.cpp models without extra buffer types (the AMX int8 repacking that crashes
    quantized models on some CPUs). llama-cpp-python 0.3.36 has no argument for it, so its
    default-parameters function is wrapped while the model loads."""
    import llama_cpp.llama_cpp as lib

    original = lib.llama_model_default_params

    def params() -> Any:
        value = original()
        value.use_extra_bufts = False
        return value

    with _LOAD_LOCK:
        lib.llama_model_default_params = params
        try:
            yield
        finally:
            lib.llama_model_default_params = original


class LlamaCppGenerator:
    """A GGUF run by llama.cpp with the chat template stored in the file.

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
        repack: bool = False,
    ) -> None:
        self.path = Path(path)
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.repeat_penalty = repeat_penalty
        self.seed = seed
        self.llm = self._load(n_ctx, n_gpu_layers, threads, repack)

    def _load(self, n_ctx: int, n_gpu_layers: int, threads: int, repack: bool) -> Any:
        """Load the model; ValueError with a one-line reason when the file is not usable."""
        if not self.path.is_file():
            raise ValueError(f"{self.path}: no such GGUF file (export one first)")
        from llama_cpp import Llama

        guard = contextlib.nullcontext() if repack else _no_weight_repacking()
        with guard:
            return Llama(
                model_path=str(self.path),
                n_ctx=n_ctx,
                n_gpu_layers=n_gpu_layers,
                seed=self.seed,
                n_threads=threads or None,
                n_threads_batch=threads or None,
                verbose=False,
            )

    def generate(self, messages: Sequence[Mapping[str, Any]]) -> Generation:
        """Answer greedily (or at the configured temperature); errors become `error`."""
        started = time.perf_counter()
        try:
            result = self.llm.create_chat_completion(
                messages=[dict(m) for m in messages],
                max_tokens=self.max_tokens,
                temperature=self.temperature,
                repeat_penalty=self.repeat_penalty,
                seed=self.seed,
            )
        except (ValueError, RuntimeError) as exc:
            return Generation(error=f"fine-tuned model: {exc}")
        latency = time.perf_counter() - started
        usage = result.get("usage") or {}
        return Generation(
            text=str(result["choices"][0]["message"].get("content") or ""),
            latency_s=latency,
            input_tokens=int(usage.get("prompt_tokens", 0)),
            output_tokens=int(usage.get("completion_tokens", 0)),
        )

    def close(self) -> None:
        llm, self.llm = self.llm, None
        if llm is not None:
            llm.close()
