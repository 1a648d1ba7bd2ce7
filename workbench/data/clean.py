"""Cleaning: strip the old pipeline's instructions, tag duplicates, normalize whitespace.

The old pipeline sent a long instruction with every request: a shared system message, or a
shared text before (prefix) or after (suffix) each input. A fine-tuned model learns the task
from the examples, so the instruction is dead weight in every training sequence.
`find_instructions` scans the examples and reports each shared instruction, its near variants
(an older version of the prompt) and the tokens stripping would save; `strip_instructions`
applies it as ONE undoable action. Dedupe and whitespace work the same way: preview, then apply.
"""

from __future__ import annotations

import difflib
import hashlib
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from workbench.data.dedupe import DuplicateGroup
from workbench.data.store import ExampleStore, estimate_tokens
from workbench.data.tokens import estimate_conversation
from workbench.data.validate import find_duplicates

Kind = Literal["system", "prefix", "suffix"]
Messages = list[dict[str, Any]]

MIN_SHARE = 0.2
"""A system message counts as shared when at least this share of the examples carry it."""
MIN_AFFIX_SHARE = 0.5
"""A prefix or suffix counts when at least this share of the first user messages carry it."""
MIN_AFFIX_CHARS = 40
"""Shorter shared prefixes are input labels ("Topic: "), not instructions."""
VARIANT_SIMILARITY = 0.8
"""Word-level similarity above which another text counts as a variant of an instruction."""
SAMPLE_SIZE = 5000
"""First user messages sampled to find a shared prefix or suffix."""
MAX_VARIANT_CHECKS = 2000
SAMPLES_SHOWN = 3


@dataclass(frozen=True)
class Variant:
    """A text close to an instruction (an older or edited version of it)."""

    text: str
    example_ids: tuple[int, ...]
    difference: str
    """What differs, in words: `'... under 25 words ...' instead of '... punctuation.'`."""


@dataclass(frozen=True)
class Instruction:
    """An instruction shared by many examples."""

    kind: Kind
    text: str
    example_ids: tuple[int, ...]
    """Examples that carry exactly this text."""
    variants: tuple[Variant, ...]
    tokens: int
    """Estimated tokens of the text (each example that carries it pays them)."""

    @property
    def count(self) -> int:
        return len(self.example_ids) + sum(len(v.example_ids) for v in self.variants)

    def describe(self) -> str:
        """`shared system message (3,120 characters, ~780 tokens) in 119 examples, + 1 variant
        in 2 examples`."""
        where = {"system": "system message", "prefix": "prompt prefix", "suffix": "prompt suffix"}
        text = (
            f"shared {where[self.kind]} ({len(self.text):,} characters, ~{self.tokens:,} tokens)"
            f" in {len(self.example_ids):,} examples"
        )
        for variant in self.variants:
            text += f"; a variant in {len(variant.example_ids):,} ({variant.difference})"
        return text


@dataclass(frozen=True)
class CleanPreview:
    """What stripping would change: the instructions found, the examples touched and the tokens
    saved, with a few examples before and after."""

    instructions: tuple[Instruction, ...]
    examples_changed: int
    tokens_before: int
    tokens_saved: int
    samples: tuple[tuple[int, Messages, Messages], ...] = ()
    """(example id, messages before, messages after) for a few examples."""


# --- finding shared instructions ------------------------------------------------------------------


@dataclass
class _Scan:
    """What one pass over the examples collects (hashes and ids, never all the texts)."""

    total: int = 0
    tokens: int = 0
    system_ids: dict[str, list[int]] = field(default_factory=dict)
    system_shape: dict[str, tuple[int, str, str]] = field(default_factory=dict)
    users: list[tuple[int, str]] = field(default_factory=list)


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def _system_text(messages: Sequence[Any]) -> str | None:
    first = messages[0] if messages else None
    if isinstance(first, dict) and first.get("role") == "system":
        content = first.get("content")
        return content if isinstance(content, str) else None
    return None


def _first_user(messages: Sequence[Any]) -> str | None:
    for message in messages:
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else None
    return None


def _scan(store: ExampleStore) -> _Scan:
    scan = _Scan()
    step = max(1, store.count() // SAMPLE_SIZE)
    for number, (example_id, messages) in enumerate(store.iter_messages()):
        scan.total += 1
        scan.tokens += estimate_conversation(messages)
        system = _system_text(messages)
        if system is not None:
            digest = _digest(system)
            scan.system_ids.setdefault(digest, []).append(example_id)
            scan.system_shape.setdefault(digest, (len(system), system[:60], system[-60:]))
        user = _first_user(messages)
        if user is not None and number % step == 0:
            scan.users.append((example_id, user))
    return scan


def find_instructions(store: ExampleStore) -> CleanPreview:
    """Shared system messages, prompt prefixes and suffixes, with their variants, and what
    stripping them would save (token counts estimated)."""
    scan = _scan(store)
    found = [*_shared_systems(store, scan), *_shared_affixes(store, scan)]
    return _preview(store, tuple(found), scan)


def _shared_systems(store: ExampleStore, scan: _Scan) -> list[Instruction]:
    """System messages shared by at least MIN_SHARE of the examples, each with the less common
    system messages that are close variants of it."""
    mains: list[tuple[str, str]] = []
    variants: dict[str, list[Variant]] = {}
    checks = 0
    for digest, ids in sorted(scan.system_ids.items(), key=lambda item: -len(item[1])):
        text: str | None = None
        for main_digest, main_text in mains:
            if checks >= MAX_VARIANT_CHECKS or not _may_be_variant(scan, main_digest, digest):
                continue
            checks += 1
            text = text if text is not None else _text_of(store, ids[0], "system")
            difference = describe_difference(main_text, text)
            if difference is not None:
                variants.setdefault(main_digest, []).append(Variant(text, tuple(ids), difference))
                break
        else:
            if len(ids) >= max(2, MIN_SHARE * scan.total):
                mains.append((digest, text or _text_of(store, ids[0], "system")))
    return [
        Instruction(
            "system",
            text,
            tuple(scan.system_ids[digest]),
            tuple(variants.get(digest, ())),
            estimate_tokens(text),
        )
        for digest, text in mains
    ]


def _may_be_variant(scan: _Scan, main: str, other: str) -> bool:
    """Cheap filter before the word diff: similar length, same start or same end."""
    length, head, tail = scan.system_shape[main]
    other_length, other_head, other_tail = scan.system_shape[other]
    return abs(length - other_length) <= 0.3 * length and (head == other_head or tail == other_tail)


def _text_of(store: ExampleStore, example_id: int, kind: str) -> str:
    messages = store.get(example_id).messages
    text = _system_text(messages) if kind == "system" else _first_user(messages)
    return text or ""


_SENTENCE = re.compile(r"(?<=[.!?:])\s+|\n+")


def describe_difference(main: str, other: str) -> str | None:
    """What differs between an instruction and a close variant (the first differing sentence),
    or None when they are not close (word-level similarity below VARIANT_SIMILARITY)."""
    words = difflib.SequenceMatcher(None, main.split(), other.split(), autojunk=False)
    if words.ratio() < VARIANT_SIMILARITY:
        return None
    a = [s.strip() for s in _SENTENCE.split(main) if s.strip()]
    b = [s.strip() for s in _SENTENCE.split(other) if s.strip()]
    changes = [op for op in difflib.SequenceMatcher(None, a, b).get_opcodes() if op[0] != "equal"]
    if not changes:
        return "only whitespace differs"
    _, i1, i2, j1, j2 = changes[0]
    old, new = " ".join(a[i1:i2]), " ".join(b[j1:j2])
    more = f", and {len(changes) - 1} more difference(s)" if len(changes) > 1 else ""
    if not old:
        return f"adds '{_clip(new)}'{more}"
    if not new:
        return f"lacks '{_clip(old)}'{more}"
    return f"'{_clip(new)}' instead of '{_clip(old)}'{more}"


def _clip(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- prefixes and suffixes -----------------------------------------------------------------------


def _shared_affixes(store: ExampleStore, scan: _Scan) -> list[Instruction]:
    texts = [text for _, text in scan.users]
    kinds: tuple[Kind, ...] = ("prefix", "suffix")
    affixes = [(kind, shared_affix(texts, kind)) for kind in kinds]
    return [_affix_instruction(store, kind, affix) for kind, affix in affixes if affix]


def shared_affix(texts: Sequence[str], kind: Kind) -> str:
    """The longest prefix (or suffix) that at least MIN_AFFIX_SHARE of the texts start (end)
    with, cut back to a word boundary; empty when shorter than MIN_AFFIX_CHARS."""
    if len(texts) < 2:
        return ""
    flip: Callable[[str], str] = (lambda t: t[::-1]) if kind == "suffix" else (lambda t: t)
    ordered = sorted(flip(text) for text in texts)
    window = max(2, math.ceil(len(ordered) * MIN_AFFIX_SHARE))
    common = [_common_length(ordered[i], ordered[i + 1]) for i in range(len(ordered) - 1)]
    best, where = 0, 0
    for start in range(len(ordered) - window + 1):
        length = min(common[start : start + window - 1])
        if length > best:
            best, where = length, start
    affix = _to_boundary(ordered[where][:best])
    affix = flip(affix)
    return affix if len(affix.strip()) >= MIN_AFFIX_CHARS else ""


def _common_length(a: str, b: str) -> int:
    limit = min(len(a), len(b))
    low, high = 0, limit
    while low < high:
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def _to_boundary(text: str) -> str:
    """Cut a shared start back to its last line break (templates put the input on its own
    line, and inputs often share a first word or two), else to its last whitespace."""
    cut = text.rfind("\n")
    if cut < 0:
        cut = max(text.rfind(" "), text.rfind("\t"))
    return text[: cut + 1] if cut >= 0 else ""


def _affix_instruction(store: ExampleStore, kind: Kind, affix: str) -> Instruction:
    exact: list[int] = []
    variants: dict[str, tuple[str, list[int]]] = {}
    anchor = affix.strip()[-30:] if kind == "prefix" else affix.strip()[:30]
    for example_id, messages in store.iter_messages():
        user = _first_user(messages)
        if user is None:
            continue
        if (user.startswith(affix) if kind == "prefix" else user.endswith(affix)) and user != affix:
            exact.append(example_id)
        elif len(variants) < MAX_VARIANT_CHECKS:
            part = _variant_part(user, affix, anchor, kind)
            if part is not None:
                variants.setdefault(part, (part, []))[1].append(example_id)
    return Instruction(
        kind,
        affix,
        tuple(exact),
        tuple(
            Variant(text, tuple(ids), describe_difference(affix, text) or "")
            for text, ids in variants.values()
        ),
        estimate_tokens(affix),
    )


def _variant_part(user: str, affix: str, anchor: str, kind: Kind) -> str | None:
    """The part of `user` that is a variant of the prefix (suffix), ending (starting) at the
    same anchor text, or None."""
    if kind == "prefix":
        end = user.find(anchor, 0, int(len(affix) * 1.5) + len(anchor))
        if end < 0:
            return None
        part = user[: end + len(anchor)]
        part += user[len(part) :][: len(user[len(part) :]) - len(user[len(part) :].lstrip())]
    else:
        start = user.rfind(anchor, max(0, len(user) - int(len(affix) * 1.5) - len(anchor)))
        if start < 0:
            return None
        before = user[:start]
        part = before[len(before.rstrip()) :] + user[start:]
    if part == user or describe_difference(affix, part) is None:
        return None
    return part


# --- stripping ---------------------------------------------------------------------------------


def strip_messages(
    messages: Messages, instructions: Sequence[Instruction], include_variants: bool = True
) -> Messages | None:
    """The messages without the instructions, or None when nothing changes (or when stripping
    would leave an empty prompt)."""
    changed = False
    result = [dict(m) if isinstance(m, dict) else m for m in messages]
    for instruction in instructions:
        texts = [instruction.text]
        if include_variants:
            texts += [variant.text for variant in instruction.variants]
        stripped = _strip_one(result, instruction.kind, texts)
        if stripped is not None:
            result, changed = stripped, True
    return result if changed else None


def _strip_one(messages: Messages, kind: Kind, texts: Sequence[str]) -> Messages | None:
    if kind == "system":
        system = _system_text(messages)
        return messages[1:] if system is not None and system in texts else None
    for index, message in enumerate(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if not isinstance(content, str):
                return None
            for text in texts:
                if kind == "prefix" and content.startswith(text):
                    rest = content[len(text) :].lstrip()
                elif kind == "suffix" and content.endswith(text):
                    rest = content[: len(content) - len(text)].rstrip()
                else:
                    continue
                if not rest:
                    return None
                return [*messages[:index], {**message, "content": rest}, *messages[index + 1 :]]
            return None
    return None


def _preview(store: ExampleStore, found: tuple[Instruction, ...], scan: _Scan) -> CleanPreview:
    changed = saved = 0
    samples: list[tuple[int, Messages, Messages]] = []
    for example_id, messages in store.iter_messages():
        after = strip_messages(messages, found)
        if after is None:
            continue
        changed += 1
        saved += estimate_conversation(messages) - estimate_conversation(after)
        if len(samples) < SAMPLES_SHOWN:
            samples.append((example_id, messages, after))
    return CleanPreview(found, changed, scan.tokens, saved, tuple(samples))


def strip_instructions(
    store: ExampleStore,
    instructions: Sequence[Instruction],
    include_variants: bool = True,
) -> int:
    """Strip the instructions from every example that carries them, as ONE undoable action;
    returns how many examples changed."""
    if not instructions:
        return 0

    def changes() -> Iterator[tuple[int, Messages]]:
        for example_id, messages in store.iter_messages():
            after = strip_messages(messages, instructions, include_variants)
            if after is not None:
                yield example_id, after

    kinds = ", ".join(sorted({instruction.kind for instruction in instructions}))
    return store.update_messages_many(changes(), f"strip instructions ({kinds})")


# --- duplicates ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DedupePlan:
    """Groups of duplicates: the first of each is kept, the others get tagged."""

    exact: tuple[DuplicateGroup, ...]
    near: tuple[DuplicateGroup, ...]

    @property
    def copies(self) -> int:
        return sum(len(group.copies) for group in (*self.exact, *self.near))


DUPLICATE_TAG = "duplicate"
NEAR_DUPLICATE_TAG = "near-duplicate"


def plan_dedupe(store: ExampleStore, threshold: float = 0.9) -> DedupePlan:
    """Find exact and near duplicates among the live examples."""
    exact, near = find_duplicates(store, threshold=threshold)
    return DedupePlan(tuple(exact), tuple(near))


def apply_dedupe(store: ExampleStore, plan: DedupePlan, delete: bool = False) -> int:
    """Tag every copy (`duplicate` / `near-duplicate`), keeping the first of each group, as one
    undoable action; `delete` deletes the copies instead. Returns how many examples changed."""
    tags: dict[int, list[str]] = {}
    for groups, tag in ((plan.exact, DUPLICATE_TAG), (plan.near, NEAR_DUPLICATE_TAG)):
        for group in groups:
            for key, _ in group.copies:
                tags.setdefault(key, []).append(tag)
    if delete:
        return store.delete(sorted(tags))
    return store.add_tags(tags, "duplicates")


# --- whitespace ----------------------------------------------------------------------------------


_FENCE = re.compile(r"^\s*(```|~~~)")
_SPACES = re.compile(r"(?<=\S)[ \t\u00a0]{2,}(?=\S)")


def normalize_text(text: str) -> str:
    """Tidy whitespace: CRLF to LF, no trailing spaces, no runs of spaces inside prose lines
    (code blocks and indentation are kept), at most one blank line, no blank start or end."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    out, in_code = [], False
    for line in lines:
        if _FENCE.match(line):
            in_code = not in_code
        line = line.rstrip()
        if not in_code and not line.startswith(("    ", "\t")):
            line = _SPACES.sub(" ", line.replace("\u00a0", " "))
        out.append(line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip()


def normalize_messages(messages: Messages) -> Messages | None:
    """The messages with tidy whitespace, or None when nothing changes."""
    result = []
    changed = False
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str) and normalize_text(content) != content and content.strip():
            result.append({**message, "content": normalize_text(content)})
            changed = True
        else:
            result.append(message)
    return result if changed else None


@dataclass(frozen=True)
class WhitespacePreview:
    examples_changed: int
    samples: tuple[tuple[int, Messages, Messages], ...]


def preview_whitespace(store: ExampleStore) -> WhitespacePreview:
    """How many examples `normalize_whitespace` would change, with a few before and after."""
    changed = 0
    samples: list[tuple[int, Messages, Messages]] = []
    for example_id, messages in store.iter_messages():
        after = normalize_messages(messages)
        if after is not None:
            changed += 1
            if len(samples) < SAMPLES_SHOWN:
                samples.append((example_id, messages, after))
    return WhitespacePreview(changed, tuple(samples))


def normalize_whitespace(store: ExampleStore) -> int:
    """Tidy the whitespace of every example, as one undoable action; returns how many changed."""

    def changes() -> Iterable[tuple[int, Messages]]:
        for example_id, messages in store.iter_messages():
            after = normalize_messages(messages)
            if after is not None:
                yield example_id, after

    return store.update_messages_many(changes(), "normalize whitespace")
