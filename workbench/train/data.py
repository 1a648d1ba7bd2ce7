"""A run's data: frozen from the examples database into the run, and tokenized for training.

A run trains on the `train` split and evaluates on `val`, less the examples flagged `bad` and the
candidates still waiting for review (captured or synthetic, flagged `needs-review`: they are not
data until accepted). Starting a run copies those examples into `runs/<id>/train.jsonl` and
`val.jsonl` with a content hash, so later edits to the database never change what a run was
trained on (and a resume trains on the same data).

Tokenization renders each conversation with the tokenizer's chat template and masks everything
but the assistant turns out of the loss (`completion_only_loss`): labels are -100 there.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TRAIN_FILE = "train.jsonl"
VAL_FILE = "val.jsonl"
DATA_FILE = "data.json"
IGNORE_INDEX = -100

Messages = list[dict[str, Any]]

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
"""Used for a base model whose tokenizer has no chat template (a warning says so)."""


class DataError(Exception):
    """Data that cannot start a run; the message says what to do."""


@dataclass(frozen=True)
class FrozenData:
    """The conversations a run trains and evaluates on, and their content hash."""

    train: tuple[Messages, ...]
    val: tuple[Messages, ...]
    train_ids: tuple[int, ...] = ()
    val_ids: tuple[int, ...] = ()

    @property
    def hash(self) -> str:
        return data_hash(_lines(self.train, self.train_ids), _lines(self.val, self.val_ids))


def collect_examples(db_path: Path) -> FrozenData:
    """The `train` and `val` splits of the workspace database, without examples flagged bad or
    candidates waiting for review (a candidate moved into a split by hand is not data yet)."""
    from workbench.data.store import ExampleStore

    if not db_path.exists():
        raise DataError(
            f"{db_path} does not exist: import examples first (`workbench data import`)"
        )
    with ExampleStore(db_path) as store:
        train = list(store.iter_examples(split="train", include_candidates=False))
        val = list(store.iter_examples(split="val", include_candidates=False))
    if not train:
        raise DataError(
            "the train split is empty: import examples and assign splits (S on the Data "
            "screen, or `workbench data split --val N`)"
        )
    if not val:
        raise DataError(
            "the validation split is empty, so eval loss and the best checkpoint cannot be "
            "measured: hold some examples out (S on the Data screen, or "
            "`workbench data split --val N`)"
        )
    return FrozenData(
        train=tuple(example.messages for example in train),
        val=tuple(example.messages for example in val),
        train_ids=tuple(example.id for example in train),
        val_ids=tuple(example.id for example in val),
    )


def _lines(conversations: Sequence[Messages], ids: Sequence[int]) -> list[str]:
    if len(ids) != len(conversations):
        ids = range(1, len(conversations) + 1)
    return [
        json.dumps({"id": id_, "messages": messages}, ensure_ascii=False, sort_keys=True)
        for id_, messages in zip(ids, conversations, strict=True)
    ]


def data_hash(train_lines: Iterable[str], val_lines: Iterable[str]) -> str:
    """sha256 of the frozen files' contents: equal data, equal hash."""
    digest = hashlib.sha256()
    for name, lines in (("train", train_lines), ("val", val_lines)):
        digest.update(name.encode() + b"\0")
        for line in lines:
            digest.update(line.encode("utf-8") + b"\n")
    return digest.hexdigest()


def write_frozen(run_dir: Path, data: FrozenData) -> dict[str, Any]:
    """Write train.jsonl, val.jsonl and data.json (counts and hash) into `run_dir`."""
    train_lines = _lines(data.train, data.train_ids)
    val_lines = _lines(data.val, data.val_ids)
    (run_dir / TRAIN_FILE).write_text("".join(f"{line}\n" for line in train_lines), "utf-8")
    (run_dir / VAL_FILE).write_text("".join(f"{line}\n" for line in val_lines), "utf-8")
    manifest = {
        "hash": data_hash(train_lines, val_lines),
        "train_examples": len(train_lines),
        "val_examples": len(val_lines),
    }
    (run_dir / DATA_FILE).write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")
    return manifest


def read_frozen(run_dir: Path) -> FrozenData:
    """The data a run froze; DataError if a file is missing or was changed since."""
    train, train_ids = _read_jsonl(run_dir / TRAIN_FILE)
    val, val_ids = _read_jsonl(run_dir / VAL_FILE)
    data = FrozenData(train=train, val=val, train_ids=train_ids, val_ids=val_ids)
    try:
        manifest = json.loads((run_dir / DATA_FILE).read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{run_dir / DATA_FILE}: unreadable ({exc})") from exc
    if manifest.get("hash") != data.hash:
        raise DataError(f"{run_dir}: train.jsonl or val.jsonl changed since the run started")
    return data


def _read_jsonl(path: Path) -> tuple[tuple[Messages, ...], tuple[int, ...]]:
    try:
        records = [json.loads(line) for line in path.read_text("utf-8").splitlines() if line]
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable ({exc})") from exc
    return (
        tuple(record["messages"] for record in records),
        tuple(int(record.get("id", 0)) for record in records),
    )


# --- tokenization ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tokenized:
    """One conversation as training input: ids, labels (-100 where not learned)."""

    input_ids: list[int]
    labels: list[int]
    prompt_tokens: int
    """Tokens before the first learned one (the prompt)."""
    full_tokens: int
    """Length before truncation."""

    @property
    def truncated(self) -> bool:
        return self.full_tokens > len(self.input_ids)

    @property
    def learned_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE_INDEX)


def ensure_chat_template(tokenizer: Any) -> bool:
    """Give a tokenizer without a chat template ChatML; True when that was needed."""
    if getattr(tokenizer, "chat_template", None):
        return False
    tokenizer.chat_template = CHATML_TEMPLATE
    return True


def chat_ids(
    tokenizer: Any, messages: Sequence[Mapping[str, Any]], prompt: bool = False
) -> list[int]:
    """Token ids of `messages` rendered by the chat template (`prompt`: plus the reply header)."""
    out = tokenizer.apply_chat_template(
        list(messages), tokenize=True, add_generation_prompt=prompt, return_dict=False
    )
    if isinstance(out, Mapping):
        out = out["input_ids"]
    return [int(token) for token in out]


def tokenize_conversation(
    tokenizer: Any, messages: Sequence[Mapping[str, Any]], max_length: int, completion_only: bool
) -> Tokenized:
    """Render, label and truncate one conversation.

    With `completion_only`, only the assistant turns (their text and end-of-turn token) are
    learned; the system and user turns and each reply header are masked.
    """
    full = chat_ids(tokenizer, messages)
    learned = [False] * len(full)
    for index, message in enumerate(messages):
        if message.get("role") != "assistant":
            continue
        start = _common_prefix(chat_ids(tokenizer, messages[:index], prompt=True), full)
        end = _common_prefix(chat_ids(tokenizer, messages[: index + 1]), full)
        learned[start:end] = [True] * max(0, end - start)
    if not completion_only:
        learned = [True] * len(full)
    labels = [token if keep else IGNORE_INDEX for token, keep in zip(full, learned, strict=True)]
    prompt = next((i for i, keep in enumerate(learned) if keep), len(full))
    return Tokenized(
        input_ids=full[:max_length],
        labels=labels[:max_length],
        prompt_tokens=prompt,
        full_tokens=len(full),
    )


def _common_prefix(prefix: Sequence[int], full: Sequence[int]) -> int:
    length = 0
    for a, b in zip(prefix, full, strict=False):
        if a != b:
            break
        length += 1
    return length


@dataclass(frozen=True)
class TokenizedSplit:
    """A split ready for the trainer, and what tokenization had to do to it."""

    examples: tuple[Tokenized, ...]
    dropped: int
    """Conversations with nothing left to learn after truncation (or no assistant turn)."""
    truncated: int

    @property
    def tokens(self) -> int:
        return sum(len(example.input_ids) for example in self.examples)

    def records(self) -> list[dict[str, list[int]]]:
        """Rows for `datasets.Dataset.from_list`: input_ids and labels."""
        return [{"input_ids": ex.input_ids, "labels": ex.labels} for ex in self.examples]


def tokenize_split(
    tokenizer: Any, conversations: Iterable[Messages], max_length: int, completion_only: bool
) -> TokenizedSplit:
    """Tokenize a split, leaving out conversations with no learned token left."""
    kept: list[Tokenized] = []
    dropped = truncated = 0
    for messages in conversations:
        example = tokenize_conversation(tokenizer, messages, max_length, completion_only)
        if example.learned_tokens == 0:
            dropped += 1
            continue
        truncated += example.truncated
        kept.append(example)
    return TokenizedSplit(examples=tuple(kept), dropped=dropped, truncated=truncated)


@dataclass(frozen=True)
class LengthCheck:
    """Prompt and example lengths of the frozen data, in the base model's tokens."""

    longest_prompt: int
    longest_example: int
    too_long_prompts: int
    """Examples whose prompt alone reaches max_seq_length (nothing left to learn)."""
    truncated: int
    examples: int


def check_lengths(tokenizer: Any, data: FrozenData, max_length: int) -> LengthCheck:
    """Measure every example's prompt against `max_length` (the assistant must fit after it)."""
    prompts, fulls = [], []
    for messages in (*data.train, *data.val):
        example = tokenize_conversation(tokenizer, messages, max_length, completion_only=True)
        prompts.append(example.prompt_tokens)
        fulls.append(example.full_tokens)
    return LengthCheck(
        longest_prompt=max(prompts, default=0),
        longest_example=max(fulls, default=0),
        too_long_prompts=sum(1 for length in prompts if length >= max_length),
        truncated=sum(1 for length in fulls if length > max_length),
        examples=len(prompts),
    )


def length_problem(check: LengthCheck, max_length: int) -> str | None:
    """The refusal for prompts that leave no room for the answer, or None."""
    if not check.too_long_prompts:
        return None
    return (
        f"train.max_seq_length = {max_length} is below the prompt length of "
        f"{check.too_long_prompts} of {check.examples} examples (longest prompt: "
        f"{check.longest_prompt} tokens), so their answers would be cut off entirely: raise "
        f"train.max_seq_length above {check.longest_prompt} or shorten the prompts "
        "(strip the long instructions)"
    )
