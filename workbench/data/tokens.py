"""Token counts of conversations: exact with the base model's tokenizer, else estimated.

transformers is imported only inside `load_token_counter`, which validation and statistics jobs
call; when the tokenizer cannot be loaded (no network, unknown model) the counter falls back to
the estimate and says so in its `note`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.config import DEMO_MODEL
from workbench.data.store import estimate_tokens

Messages = Sequence[Mapping[str, Any]]
_PER_MESSAGE = 4
"""Tokens a chat template adds around each message (role markers), in the estimate."""
_BATCH = 256
EXACT_MAX_CHARS = 1_000_000


def estimate_conversation(messages: Messages) -> int:
    """About how many tokens the conversation takes (4 characters a token, plus markers)."""
    total = 0
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        total += estimate_tokens(content if isinstance(content, str) else str(content or ""))
        total += _PER_MESSAGE
    return total


@dataclass(frozen=True)
class TokenCounter:
    """Counts the tokens of whole conversations, as training sees them."""

    exact: bool
    """True: the base model's tokenizer and chat template; False: the estimate."""
    note: str
    """What the counts are, in one line (and why they are estimates, if they are)."""
    count_many: Callable[[Sequence[Messages]], list[int]]

    def count(self, messages: Messages) -> int:
        return self.count_many([messages])[0]


def estimate_counter(reason: str = "") -> TokenCounter:
    """The estimate (no tokenizer needed); `reason` says why no tokenizer was used."""
    note = "token counts are estimates (about 4 characters a token)"
    return TokenCounter(
        False,
        f"{note}: {reason}" if reason else note,
        lambda conversations: [estimate_conversation(m) for m in conversations],
    )


def load_token_counter(base_model: str) -> TokenCounter:
    """The base model's tokenizer as a counter; the estimate if it cannot be loaded."""
    try:
        tokenizer = _load_tokenizer(base_model)
    except Exception as exc:  # any failure to load (offline, missing files) means: estimate
        reason = f"the tokenizer of {base_model!r} could not be loaded ({_short(exc)})"
        return estimate_counter(reason)
    return TokenCounter(
        True,
        f"exact token counts (tokenizer of {base_model})",
        lambda conversations: _count_with(tokenizer, conversations),
    )


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _load_tokenizer(base_model: str) -> Any:
    source = base_model
    if base_model == DEMO_MODEL:
        from workbench.demo_model import ensure_demo_model

        source = str(ensure_demo_model())
    elif not Path(base_model).expanduser().is_dir():
        _check_reachable(base_model)
    from transformers import AutoTokenizer
    from transformers.utils import logging

    logging.set_verbosity_error()
    return AutoTokenizer.from_pretrained(source)


def _check_reachable(repo_id: str) -> None:
    """Fail fast (before importing transformers, seconds) when the hub is offline and the
    model's tokenizer is not in the local cache."""
    from huggingface_hub import constants, try_to_load_from_cache

    cached = try_to_load_from_cache(repo_id, "tokenizer_config.json")
    if constants.HF_HUB_OFFLINE and not isinstance(cached, str):
        raise LookupError("not in the local Hugging Face cache, and the hub is offline")


def _render(tokenizer: Any, messages: Messages) -> str:
    """The conversation as the chat template writes it (the plain contents if it cannot)."""
    if getattr(tokenizer, "chat_template", None):
        try:
            return str(tokenizer.apply_chat_template(list(messages), tokenize=False))
        except Exception:  # a malformed conversation: count its text instead
            pass
    return "\n".join(str(m.get("content") or "") for m in messages if isinstance(m, dict))


def _count_with(tokenizer: Any, conversations: Sequence[Messages]) -> list[int]:
    """Exact counts; a conversation of more than EXACT_MAX_CHARS is estimated (it is far over
    any sequence length, and tokenizing 50 MB would take seconds and gigabytes)."""
    counts: list[int] = []
    for start in range(0, len(conversations), _BATCH):
        batch = conversations[start : start + _BATCH]
        sizes = [estimate_conversation(m) * 4 for m in batch]
        texts = [
            _render(tokenizer, m)
            for m, size in zip(batch, sizes, strict=True)
            if size <= EXACT_MAX_CHARS
        ]
        encoded = iter(tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else [])
        counts += [
            len(next(encoded)) if size <= EXACT_MAX_CHARS else estimate_conversation(m)
            for m, size in zip(batch, sizes, strict=True)
        ]
    return counts
