"""Chat with a GGUF model: load it safely, stream answers token by token, stop on request.

The Chat screen (and `workbench chat`) use this module as follows::

    model = ChatModel.load(path, ChatSettings.from_config(workspace.config.chat))
    for event in model.stream(messages, settings, cancel):   # in a thread worker
        ...  # PromptReady, then TokenStreamed per token, then AnswerDone
    model.close()

Loading checks the file first without native code (`read_gguf_info`: not a GGUF, truncated,
too big for free memory), then, once per file, runs a short test prompt in a child process
(`probe.probe_gguf`) so that a file that would crash llama.cpp crashes that child, not the app.
The prompt is rendered with the GGUF's own chat template in a Jinja2 sandbox (`template`), so a
conversation becomes exactly the token ids training saw. Every failure is a :class:`ChatError`
with a one-line message.
"""

from __future__ import annotations

import codecs
import random
import threading
import time
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from workbench.chat import runtime
from workbench.chat.errors import ChatError
from workbench.chat.gguf_file import GGUFInfo, read_gguf_info
from workbench.chat.template import FALLBACK_TEMPLATE, ChatTemplate

if TYPE_CHECKING:
    from workbench.config import ChatSection

StopReason = Literal["end", "length", "context", "cancelled"]
TemplateSource = Literal["gguf", "given", "fallback"]
Message = Mapping[str, Any]

MEMORY_HEADROOM = 1.1
"""Weights and cache are multiplied by this, plus `MEMORY_SLACK_BYTES`, for the memory check."""
MEMORY_SLACK_BYTES = 64 * 2**20


class ModelLoadError(ChatError):
    """The GGUF cannot be loaded (damaged, unsupported, too big, crashed llama.cpp)."""


class ContextFullError(ChatError):
    """The conversation no longer fits in the context window."""


class ModelBusyError(ChatError):
    """The model is already answering (one answer at a time per model)."""


@dataclass(frozen=True)
class ChatSettings:
    """How to load a model and sample its answers (see `[chat]` in workbench.toml).

    `n_ctx`, `n_gpu_layers`, `threads` and `extra_buffers` apply when loading; the rest to each
    answer, so they can change between messages (`dataclasses.replace`).
    """

    n_ctx: int = 4096
    n_gpu_layers: int = -1
    """-1: every layer on the GPU when llama.cpp was built with GPU support, else 0."""
    threads: int = 0
    """0: one per physical core."""
    extra_buffers: bool | None = None
    """llama.cpp's extra CPU buffer types; None: on, except on AMX CPUs where they crash."""
    system_prompt: str = ""
    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    max_tokens: int = 512
    repeat_penalty: float = 1.1
    seed: int = -1
    """-1: a new seed for every answer."""

    @classmethod
    def from_config(cls, section: ChatSection, **changes: Any) -> ChatSettings:
        """Settings from the workspace's `[chat]` table, with `changes` on top."""
        fields = section.model_dump()
        known = {key: value for key, value in fields.items() if key in cls.__dataclass_fields__}
        return replace(cls(**known), **changes)


@dataclass(frozen=True)
class PromptReady:
    """The prompt is rendered and tokenized; evaluation starts."""

    type: ClassVar[str] = "prompt"
    prompt_tokens: int
    context_size: int
    max_new_tokens: int
    """Tokens the answer may use: `max_tokens`, or less when the context is nearly full."""


@dataclass(frozen=True)
class TokenStreamed:
    """One generated token; `text` may be '' while a multi-byte character is incomplete."""

    type: ClassVar[str] = "token"
    text: str
    token_id: int
    index: int
    """1 for the first token of the answer."""
    elapsed_s: float
    """Seconds since the request began."""


@dataclass(frozen=True)
class AnswerDone:
    """The answer is complete (or stopped), with its timings."""

    type: ClassVar[str] = "done"
    text: str
    stop_reason: StopReason
    prompt_tokens: int
    completion_tokens: int
    time_to_first_token_s: float
    """From the request to the first token: template, tokenization and prompt evaluation."""
    tokens_per_s: float
    """Generation speed after the first token (0 with fewer than two tokens)."""
    total_s: float


ChatEvent = PromptReady | TokenStreamed | AnswerDone


@dataclass(frozen=True)
class LoadedInfo:
    """How a model ended up loaded, for the screen's status line."""

    gpu_layers: int
    threads: int
    context_size: int
    extra_buffers: bool
    template_source: TemplateSource
    load_s: float


class ChatModel:
    """A GGUF loaded in llama.cpp, ready to answer; close it when done (or use `with`)."""

    def __init__(
        self, info: GGUFInfo, llm: Any, template: ChatTemplate, loaded: LoadedInfo
    ) -> None:
        self.info = info
        self.path = info.path
        self.template = template
        self.loaded = loaded
        self._llm = llm
        self._lock = threading.Lock()
        self._vocab = llm._model.vocab
        self._is_eog = runtime.llama().llama_vocab_is_eog

    # --- loading ---------------------------------------------------------------------------

    @classmethod
    def load(
        cls,
        path: Path | str,
        settings: ChatSettings | None = None,
        *,
        chat_template: str | None = None,
        check_memory: bool = True,
        probe: bool = True,
    ) -> ChatModel:
        """Check, probe and load the GGUF at `path`.

        Args:
            settings: Context size, GPU layers, threads (defaults: `ChatSettings()`).
            chat_template: Use this template instead of the file's own.
            check_memory: Refuse a model that does not fit in free (GPU) memory.
            probe: Run a test prompt in a child process first (once per file and settings);
                a file that crashes llama.cpp is then reported instead of killing this process.

        Raises:
            ChatError: `GGUFFileError`, `ChatTemplateError` or `ModelLoadError`, one line each.
        """
        settings = settings or ChatSettings()
        started = time.perf_counter()
        info = read_gguf_info(Path(path))
        template_source: TemplateSource = "given" if chat_template else "gguf"
        if not (chat_template or info.chat_template):
            template_source = "fallback"
        source = chat_template or info.chat_template or FALLBACK_TEMPLATE
        ChatTemplate(source)  # a broken template fails here, before any loading
        gpu_layers = resolve_gpu_layers(settings.n_gpu_layers, info)
        if check_memory:
            check_fits_in_memory(info, settings.n_ctx, gpu_layers)
        extra = (
            runtime.extra_buffers_default()
            if settings.extra_buffers is None
            else settings.extra_buffers
        )
        if probe:
            from workbench.chat.probe import ensure_probed

            ensure_probed(info.path, gpu_layers=gpu_layers, extra_buffers=extra)
        llm = _open(info, settings, gpu_layers, extra)
        template = ChatTemplate(source, _special_tokens(llm))
        loaded = LoadedInfo(
            gpu_layers=gpu_layers,
            threads=settings.threads or runtime.physical_cores(),
            context_size=int(llm.n_ctx()),
            extra_buffers=extra,
            template_source=template_source,
            load_s=time.perf_counter() - started,
        )
        return cls(info, llm, template, loaded)

    def close(self) -> None:
        """Free the model (llama-cpp-python prints tracebacks at exit for unclosed ones)."""
        llm, self._llm = self._llm, None
        if llm is not None:
            llm.close()

    def __enter__(self) -> ChatModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def llm(self) -> Any:
        """The underlying `llama_cpp.Llama` (for benchmarks and tests)."""
        if self._llm is None:
            raise ChatError(f"{self.path.name} is closed; load it again")
        return self._llm

    @property
    def context_size(self) -> int:
        return self.loaded.context_size

    # --- prompts ---------------------------------------------------------------------------

    def render_prompt(self, messages: Sequence[Message], add_generation_prompt: bool = True) -> str:
        """The conversation as the model's chat template writes it."""
        return self.template.render(messages, add_generation_prompt=add_generation_prompt)

    def tokenize(self, text: str) -> list[int]:
        """Token ids of rendered prompt `text`, special tokens parsed, as training made them.

        Training tokenizes the rendered chat template without adding special tokens (the
        template writes any BOS itself), so no BOS is added here either; only with the
        fallback template (a GGUF without one) is BOS added as the file asks.
        """
        add_bos = self.loaded.template_source == "fallback"
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True))

    def prompt_tokens(
        self, messages: Sequence[Message], add_generation_prompt: bool = True
    ) -> list[int]:
        """Token ids the model sees for `messages`."""
        return self.tokenize(self.render_prompt(messages, add_generation_prompt))

    # --- answering -------------------------------------------------------------------------

    def stream(
        self,
        messages: Sequence[Message],
        settings: ChatSettings | None = None,
        cancel: threading.Event | None = None,
    ) -> Generator[ChatEvent, None, None]:
        """Answer the conversation `messages`, one event per token.

        Yields `PromptReady`, a `TokenStreamed` per token, and always a final `AnswerDone`
        (`stop_reason` "cancelled" once `cancel` is set). A multi-turn chat passes the whole
        conversation each time; the prompt prefix already in the cache is not evaluated again.

        Raises:
            ChatTemplateError: the template failed on this conversation.
            ContextFullError: the conversation leaves no room for an answer.
            ModelBusyError: another answer is being generated by this model.
        """
        settings = settings or ChatSettings()
        started = time.perf_counter()
        tokens = self.prompt_tokens(messages)
        budget = self._answer_budget(len(tokens), settings.max_tokens)
        if not self._lock.acquire(blocking=False):
            raise ModelBusyError(f"{self.path.name} is still answering; stop that answer first")
        try:
            yield PromptReady(len(tokens), self.context_size, budget)
            yield from self._generate(tokens, budget, settings, cancel, started)
        finally:
            self._lock.release()

    def answer(
        self,
        messages: Sequence[Message],
        settings: ChatSettings | None = None,
        cancel: threading.Event | None = None,
    ) -> AnswerDone:
        """Run `stream` to the end and return its `AnswerDone`."""
        done: AnswerDone | None = None
        for event in self.stream(messages, settings, cancel):
            if isinstance(event, AnswerDone):
                done = event
        assert done is not None
        return done

    def _answer_budget(self, prompt_tokens: int, max_tokens: int) -> int:
        room = self.context_size - prompt_tokens
        if room < 1:
            raise ContextFullError(
                f"the conversation is {prompt_tokens} tokens and the context holds "
                f"{self.context_size}: clear the chat (or drop early turns), or load the model "
                "with a larger n_ctx"
            )
        return min(max_tokens, room)

    def _generate(
        self,
        tokens: list[int],
        budget: int,
        settings: ChatSettings,
        cancel: threading.Event | None,
        started: float,
    ) -> Iterator[ChatEvent]:
        """The token loop: sample, decode to text, stop on end-of-turn, budget or cancel."""
        llm, vocab, is_eog = self.llm, self._vocab, self._is_eog
        llm.set_seed(settings.seed if settings.seed >= 0 else random.randrange(2**31))
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        pieces: list[str] = []
        reason: StopReason = "length" if budget == settings.max_tokens else "context"
        first = last = 0.0
        count = 0
        generator = llm.generate(
            tokens,
            top_k=settings.top_k,
            top_p=settings.top_p,
            min_p=settings.min_p,
            temp=settings.temperature,
            repeat_penalty=settings.repeat_penalty,
        )
        try:
            for token in generator:
                if is_eog(vocab, token):
                    reason = "end"
                    break
                last = time.perf_counter()
                count += 1
                first = first or last
                text = decoder.decode(llm.detokenize([token]))
                pieces.append(text)
                yield TokenStreamed(text, token, count, last - started)
                if cancel is not None and cancel.is_set():
                    reason = "cancelled"
                    break
                if count >= budget:
                    break
        finally:
            generator.close()
        pieces.append(decoder.decode(b"", final=True))
        yield _done(pieces, reason, len(tokens), count, started, first, last)


def _done(
    pieces: list[str],
    reason: StopReason,
    prompt_tokens: int,
    count: int,
    started: float,
    first: float,
    last: float,
) -> AnswerDone:
    """The closing event with its timings."""
    now = time.perf_counter()
    return AnswerDone(
        text="".join(pieces),
        stop_reason=reason,
        prompt_tokens=prompt_tokens,
        completion_tokens=count,
        time_to_first_token_s=(first - started) if count else now - started,
        tokens_per_s=(count - 1) / (last - first) if count > 1 and last > first else 0.0,
        total_s=now - started,
    )


# --- loading helpers -------------------------------------------------------------------------


def resolve_gpu_layers(requested: int, info: GGUFInfo) -> int:
    """-1 means every layer when llama.cpp can offload to a GPU, else none."""
    if requested == 0 or not runtime.gpu_offload_supported():
        return 0
    layers = info.block_count + 1  # the output layer counts too
    return layers if requested < 0 else min(requested, layers)


def memory_needed(info: GGUFInfo, n_ctx: int) -> int:
    """Bytes the model needs: weights and key/value cache, with headroom."""
    return int((info.weights_bytes + info.kv_cache_bytes(n_ctx)) * MEMORY_HEADROOM) + (
        MEMORY_SLACK_BYTES
    )


def available_memory() -> int:
    """Bytes of RAM available to a new allocation (`MemAvailable`), or 0 when unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def check_fits_in_memory(
    info: GGUFInfo,
    n_ctx: int,
    gpu_layers: int,
    available: int | None = None,
    gpu_free: int | None = None,
) -> None:
    """Raise ModelLoadError when the model will not fit in free RAM (or GPU memory).

    `available` and `gpu_free` default to what this machine has free now.
    """
    needed = memory_needed(info, n_ctx)
    if gpu_layers > 0:
        free = _gpu_free_bytes() if gpu_free is None else gpu_free
        where, advice = "GPU memory", "offload fewer layers (n_gpu_layers)"
    else:
        free = available_memory() if available is None else available
        where, advice = "memory", "close other programs"
    if free and needed > free:
        raise ModelLoadError(
            f"{info.path.name} needs about {_gib(needed)} of {where} with n_ctx={n_ctx}, and "
            f"{_gib(free)} is free: pick a smaller quantization (q4_k_m), lower n_ctx, or "
            f"{advice}"
        )


def _gpu_free_bytes() -> int:
    from workbench.accelerator import detect_accelerator

    gpus = detect_accelerator().gpus
    return gpus[0].free_mib * 2**20 if gpus else 0


def _gib(count: int) -> str:
    return f"{count / 2**30:.1f} GiB" if count >= 2**30 else f"{count / 2**20:.0f} MiB"


def _open(info: GGUFInfo, settings: ChatSettings, gpu_layers: int, extra: bool) -> Any:
    """`Llama()` with every failure turned into one line."""
    try:
        return runtime.open_llama(
            info.path,
            n_ctx=settings.n_ctx,
            n_gpu_layers=gpu_layers,
            n_threads=settings.threads,
            extra_buffers=extra,
        )
    except Exception as exc:  # llama-cpp-python raises ValueError/RuntimeError, or Jinja errors
        reason = runtime.last_native_error() or str(exc)
        raise ModelLoadError(
            f"llama.cpp cannot load {info.path.name} ({info.architecture or 'unknown'} "
            f"architecture): {reason}"
        ) from exc


def _special_tokens(llm: Any) -> dict[str, str]:
    """`bos_token` and `eos_token` as text, for templates that write them."""
    tokens = {}
    for name, token_id in (("bos_token", llm.token_bos()), ("eos_token", llm.token_eos())):
        if token_id >= 0:
            tokens[name] = llm.detokenize([token_id], special=True).decode("utf-8", "replace")
    return tokens
