"""Validation: what is wrong with a training example, one `Problem` per finding.

`check_record` is pure (a record in, problems out); `make_validator(config)` wraps it for the
store, which runs it on every add and every edit. Checks across examples (exact and near
duplicates) need the whole dataset: `validate_files` and `validate_store` are jobs that stream
the input, yield progress events, and add those at the end.

Errors stop an example from being imported (it goes to the quarantine); warnings are kept with
the example.
"""

from __future__ import annotations

import threading
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.config import WorkbenchConfig
from workbench.data import heuristics
from workbench.data.dedupe import DuplicateGroup, ExactDuplicates, NearDuplicates, comparable_text
from workbench.data.formats import Columns, Detected, InputFormat, detect, read_records
from workbench.data.store import (
    FORMAT_KEY,
    ExampleStore,
    Problem,
    Validator,
    content_hash,
)
from workbench.data.tokens import TokenCounter, estimate_conversation, estimate_counter
from workbench.workspace import Workspace

ROLES = ("system", "user", "assistant", "tool")
RECORD_KEYS = frozenset({"messages", "tools", "parallel_tool_calls", "functions", FORMAT_KEY})
"""Top-level keys that training uses (OpenAI's fine-tuning format); others are kept, but warned."""
MESSAGE_KEYS = frozenset(
    {
        "role",
        "content",
        "name",
        "tool_calls",
        "tool_call_id",
        "function_call",
        "weight",
        "refusal",
        "reasoning_content",
        "thinking",
    }
)
DUPLICATE_CODES = ("duplicate", "near-duplicate")
BATCH_SECONDS = 0.25
"""Progress events come about this often."""


@dataclass(frozen=True)
class Rules:
    """What the checks compare against (from the workspace's config)."""

    max_seq_length: int = 2048
    near_duplicate_threshold: float = 0.9

    @classmethod
    def from_config(cls, config: WorkbenchConfig) -> Rules:
        return cls(config.train.max_seq_length, config.data.near_duplicate_threshold)


def _error(code: str, message: str) -> Problem:
    return Problem("error", code, message)


def _warning(code: str, message: str) -> Problem:
    return Problem("warning", code, message)


# --- one record --------------------------------------------------------------------------------


def check_record(
    record: Any, rules: Rules = Rules(), tokens: int | None = None, exact_tokens: bool = False
) -> list[Problem]:
    """Every problem of one OpenAI-chat record. `tokens`: its length if already counted
    (exactly when `exact_tokens`), else estimated."""
    if not isinstance(record, dict):
        if not isinstance(record, Mapping):
            return [_error("not-object", "not a JSON object")]
        record = dict(record)
    messages = record.get("messages")
    if not isinstance(messages, list) or not messages:
        what = "missing" if messages is None else "empty" if messages == [] else "not a list"
        return [_error("no-messages", f"'messages' is {what}"), *_unknown_keys(record)]
    problems = [p for i, m in enumerate(messages, 1) for p in check_message(m, i)]
    problems += _conversation_problems(messages)
    problems += _unknown_keys(record)
    if not any(p.severity == "error" for p in problems):
        problems += _length_problems(messages, rules, tokens, exact_tokens)
        problems += _content_warnings(messages)
    return problems


def check_message(message: Any, number: int) -> list[Problem]:
    """Problems of message `number` (1-based) of a conversation (a JSON object: a dict)."""
    if not isinstance(message, dict):
        return [_error("bad-message", f"message {number} is not an object")]
    role = message.get("role")
    where = f"message {number} ({role})" if isinstance(role, str) else f"message {number}"
    problems = []
    if role not in ROLES:
        shown = "missing" if role is None else repr(role)
        problems.append(_error("unknown-role", f"{where}: role {shown} (use {', '.join(ROLES)})"))
    problems += _content_problems(message, where)
    unknown = sorted(str(key) for key in message if key not in MESSAGE_KEYS)
    if unknown:
        problems.append(
            _warning("unknown-key", f"{where}: unknown key(s) {', '.join(unknown)} (kept)")
        )
    return problems


def _content_problems(message: Mapping[str, Any], where: str) -> list[Problem]:
    calls = message.get("tool_calls") or message.get("function_call")
    if "content" not in message:
        return [] if calls else [_error("missing-content", f"{where}: no 'content'")]
    content = message["content"]
    if content is None and calls:
        return []
    if not isinstance(content, str):
        kind = "null" if content is None else type(content).__name__
        return [_error("non-string-content", f"{where}: content is {kind}, not text")]
    if not content.strip() and not calls:
        return [_error("empty-content", f"{where}: empty content")]
    return []


def _conversation_problems(messages: Sequence[Any]) -> list[Problem]:
    roles = [m.get("role") for m in messages if isinstance(m, dict)]
    if "assistant" not in roles:
        return [_error("no-assistant", "no assistant message: nothing to learn")]
    if roles and roles[-1] != "assistant":
        return [
            _error(
                "last-not-assistant", f"the last message is from {roles[-1]!r}, not the assistant"
            )
        ]
    return []


def _unknown_keys(record: Mapping[str, Any]) -> list[Problem]:
    unknown = sorted(str(key) for key in record if key not in RECORD_KEYS)
    if not unknown:
        return []
    return [_warning("unknown-key", f"unknown key(s) {', '.join(unknown)} (kept, not trained on)")]


def _length_problems(
    messages: Sequence[Mapping[str, Any]], rules: Rules, tokens: int | None, exact: bool
) -> list[Problem]:
    if tokens is None:
        tokens, exact = estimate_conversation(messages), False
    if tokens <= rules.max_seq_length:
        return []
    count = f"{tokens:,} tokens" if exact else f"about {tokens:,} tokens (estimated)"
    return [
        _warning(
            "too-long",
            f"{count}, longer than train.max_seq_length {rules.max_seq_length:,}: "
            "training cuts it off",
        )
    ]


def _content_warnings(messages: Sequence[Mapping[str, Any]]) -> list[Problem]:
    answer = str(messages[-1].get("content") or "")
    problems = []
    cut = heuristics.ends_mid_sentence(answer)
    if cut is not None:
        problems.append(_warning("truncated", f"the answer may be cut off: it ends '...{cut}'"))
    answered = heuristics.guess_language(answer)
    asked = _prompt_language(messages[:-1]) if answered else None
    if asked and answered and asked != answered:
        problems.append(_warning("language", f"the answer looks {answered}, the prompt {asked}"))
    return problems


def _prompt_language(messages: Sequence[Mapping[str, Any]]) -> str | None:
    """The language of the user's turns, else of the system message (cached: it repeats)."""
    users = "\n".join(str(m.get("content") or "") for m in messages if m.get("role") == "user")
    asked = heuristics.guess_language(users)
    if asked is None:
        system = [m.get("content") for m in messages if m.get("role") == "system"]
        if system and isinstance(system[0], str):
            asked = heuristics.guess_language_cached(system[0])
    return asked


def make_validator(config: WorkbenchConfig, counter: TokenCounter | None = None) -> Validator:
    """The store's validator for this workspace: `check_record` with its limits. Token lengths
    are estimated unless a counter is given (the store calls this on every edit: keep it fast)."""
    rules = Rules.from_config(config)

    def validator(record: Mapping[str, Any]) -> list[Problem]:
        messages = record.get("messages") if isinstance(record, Mapping) else None
        tokens = None
        if counter is not None and isinstance(messages, list) and messages:
            tokens = counter.count(messages)
        exact = counter is not None and counter.exact
        return check_record(record, rules, tokens, exact)

    return validator


def open_store(workspace: Workspace) -> ExampleStore:
    """The workspace's examples, checked with its settings on every add and every edit."""
    return ExampleStore(workspace.db_path, validator=make_validator(workspace.config))


# --- events ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One problem with where it is: `file:line` (files) or an example id (the workspace)."""

    where: str
    problem: Problem
    example_id: int | None = None

    def line(self) -> str:
        """`imports/pairs.jsonl:75: error: message 3 (assistant): empty content`."""
        return f"{self.where}: {self.problem.severity}: {self.problem.message}"

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "where": self.where,
            "severity": self.problem.severity,
            "code": self.problem.code,
            "message": self.problem.message,
        }
        if self.example_id is not None:
            data["example_id"] = self.example_id
        return data


@dataclass(frozen=True)
class ValidateProgress:
    """Findings since the last event, and how far the job is."""

    findings: tuple[Finding, ...]
    done: int
    total: int
    """Units of `done` (bytes of the input, or examples); 0 if unknown."""


@dataclass(frozen=True)
class ValidateFinished:
    """The summary: examples checked, problems by severity and code, duplicates."""

    checked: int
    errors: int
    warnings: int
    by_code: dict[str, int]
    exact_duplicates: int
    near_duplicates: int
    token_note: str
    formats: tuple[str, ...] = ()
    """`FILE: format description` per file (file validation)."""
    cancelled: bool = False
    quarantined: int = 0
    problem_examples: int = 0
    examples_with_errors: int = 0


ValidateEvent = ValidateProgress | ValidateFinished


@dataclass
class _Tally:
    """Counts as the job goes, and the findings not reported yet."""

    checked: int = 0
    by_code: Counter[str] = field(default_factory=Counter)
    severities: Counter[str] = field(default_factory=Counter)
    pending: list[Finding] = field(default_factory=list)
    last: float = field(default_factory=time.monotonic)
    with_errors: int = 0
    with_problems: int = 0

    def add(self, findings: Iterable[Finding]) -> None:
        for finding in findings:
            self.by_code[finding.problem.code] += 1
            self.severities[finding.problem.severity] += 1
            self.pending.append(finding)

    def due(self) -> bool:
        return time.monotonic() - self.last >= BATCH_SECONDS

    def progress(self, done: int, total: int) -> ValidateProgress:
        event = ValidateProgress(tuple(self.pending), done, total)
        self.pending, self.last = [], time.monotonic()
        return event


def _count_record(tally: _Tally, problems: Sequence[Problem]) -> None:
    tally.checked += 1
    tally.with_problems += bool(problems)
    tally.with_errors += any(p.severity == "error" for p in problems)


# --- files -------------------------------------------------------------------------------------


@dataclass
class _FileIndex:
    """Where each checked record is (file number, line), for naming duplicates afterwards."""

    files: list[str] = field(default_factory=list)
    file_of: array[int] = field(default_factory=lambda: array("i"))
    line_of: array[int] = field(default_factory=lambda: array("q"))
    parts: dict[int, str] = field(default_factory=dict)

    def add(self, file: int, line: int | None, part: str) -> int:
        key = len(self.file_of)
        self.file_of.append(file)
        self.line_of.append(line or 0)
        if part:
            self.parts[key] = part
        return key

    def where(self, key: int) -> str:
        name = self.files[self.file_of[key]]
        part = self.parts.get(key)
        return f"{name}/{part}:{self.line_of[key]}" if part else f"{name}:{self.line_of[key]}"


def validate_files(
    paths: Sequence[Path],
    config: WorkbenchConfig,
    cancel: threading.Event,
    fmt: InputFormat = "auto",
    columns: Columns | None = None,
    counter: TokenCounter | None = None,
    names: Sequence[str] | None = None,
) -> Iterator[ValidateEvent]:
    """Check files without importing them: every record, then duplicates across all files.

    Raises FormatError (or ReadError) for a file whose format cannot be told.
    """
    rules, counter = Rules.from_config(config), counter or estimate_counter()
    detected = [detect(path, fmt, columns) for path in paths]
    index = _FileIndex(list(names or [str(path) for path in paths]))
    exact, near = ExactDuplicates(), NearDuplicates(rules.near_duplicate_threshold)
    tally, total = _Tally(), sum(_size(path) for path in paths)
    done = 0
    for number, (path, found) in enumerate(zip(paths, detected, strict=True)):
        for batch in _batches(read_records(path, found, index.files[number])):
            if cancel.is_set():
                yield _finished(tally, exact, near, counter, detected, index, cancelled=True)
                return
            _check_batch(batch, number, rules, counter, tally, index, exact, near)
            if tally.due():
                yield tally.progress(done + batch[-1].position, total)
        done += _size(path)
    yield from _file_duplicates(paths, detected, index, exact, near, tally, done, total)
    yield _finished(tally, exact, near, counter, detected, index)


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else 0


def _batches(records: Iterable[Any], size: int = 256) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for record in records:
        batch.append(record)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _check_batch(
    batch: Sequence[Any],
    file: int,
    rules: Rules,
    counter: TokenCounter,
    tally: _Tally,
    index: _FileIndex,
    exact: ExactDuplicates,
    near: NearDuplicates,
) -> None:
    """Check a batch of InputRecords (tokens counted together), remembering the importable ones
    (no errors) for the duplicate checks."""
    readable = [r for r in batch if r.record is not None and _has_messages(r.record)]
    counts = dict(
        zip(
            (id(r) for r in readable),
            counter.count_many([r.record["messages"] for r in readable]),
            strict=True,
        )
    )
    for item in batch:
        problems = list(item.problems)
        if item.record is not None:
            problems += check_record(item.record, rules, counts.get(id(item)), counter.exact)
        _count_record(tally, problems)
        tally.add(Finding(item.source, p) for p in problems)
        if item.record is not None and not any(p.severity == "error" for p in problems):
            key = index.add(file, item.line, item.part)
            messages = item.record["messages"]
            exact.add(key, content_hash(messages))
            near.add(key, comparable_text(messages))


def _has_messages(record: Mapping[str, Any]) -> bool:
    messages = record.get("messages")
    return isinstance(messages, list) and bool(messages)


def _file_duplicates(
    paths: Sequence[Path],
    detected: Sequence[Detected],
    index: _FileIndex,
    exact: ExactDuplicates,
    near: NearDuplicates,
    tally: _Tally,
    done: int,
    total: int,
) -> Iterator[ValidateEvent]:
    exact_groups = exact.groups()
    copy_of = {key: group.keep for group in exact_groups for key, _ in group.copies}

    def same(a: int, b: int) -> bool:
        return copy_of.get(b, b) == copy_of.get(a, a)

    def text_of(keys: Iterable[int]) -> dict[int, str]:
        return _reread_texts(paths, detected, index, set(keys))

    near_groups = near.groups(text_of, same)
    tally.add(_duplicate_findings(exact_groups, near_groups, index.where))
    yield tally.progress(done, total)


def _reread_texts(
    paths: Sequence[Path], detected: Sequence[Detected], index: _FileIndex, keys: set[int]
) -> dict[int, str]:
    """The comparable texts of these records, read again from the files (a second pass)."""
    wanted = {(index.file_of[k], index.line_of[k], index.parts.get(k, "")): k for k in keys}
    files = sorted({file for file, _, _ in wanted})
    texts: dict[int, str] = {}
    for file in files:
        for item in read_records(paths[file], detected[file]):
            key = wanted.get((file, item.line or 0, item.part))
            if key is not None and item.record is not None:
                texts[key] = comparable_text(item.record["messages"])
    return texts


def _duplicate_findings(
    exact_groups: Sequence[DuplicateGroup],
    near_groups: Sequence[DuplicateGroup],
    where: Callable[[int], str],
    example_ids: bool = False,
) -> list[Finding]:
    """One finding per copy: `exact duplicate of FILE:LINE` / `near duplicate of ... (0.95)`."""
    findings = []
    for group in [*exact_groups, *near_groups]:
        for key, similarity in group.copies:
            findings.append(
                Finding(
                    where(key),
                    duplicate_problem(group, where(group.keep), similarity),
                    key if example_ids else None,
                )
            )
    return sorted(findings, key=lambda f: (f.example_id or 0, f.where))


def duplicate_problem(group: DuplicateGroup, original: str, similarity: float) -> Problem:
    """The warning a copy carries."""
    if group.exact:
        return _warning("duplicate", f"exact duplicate of {original}")
    return _warning("near-duplicate", f"near duplicate of {original} (similarity {similarity:.2f})")


def _finished(
    tally: _Tally,
    exact: ExactDuplicates,
    near: NearDuplicates,
    counter: TokenCounter,
    detected: Sequence[Detected],
    index: _FileIndex,
    cancelled: bool = False,
) -> ValidateFinished:
    return ValidateFinished(
        checked=tally.checked,
        errors=tally.severities["error"],
        warnings=tally.severities["warning"],
        by_code=dict(tally.by_code.most_common()),
        exact_duplicates=tally.by_code["duplicate"],
        near_duplicates=tally.by_code["near-duplicate"],
        token_note=counter.note,
        formats=tuple(
            f"{name}: {found.describe()}" for name, found in zip(index.files, detected, strict=True)
        ),
        cancelled=cancelled,
        problem_examples=tally.with_problems,
        examples_with_errors=tally.with_errors,
    )


# --- the workspace's examples --------------------------------------------------------------------


def validate_store(
    store: ExampleStore,
    config: WorkbenchConfig,
    cancel: threading.Event,
    counter: TokenCounter | None = None,
) -> Iterator[ValidateEvent]:
    """Check every live example again (exact token counts if a counter is given), record the
    problems in the store, then find duplicates; findings name `file:line (example N)`."""
    rules, counter = Rules.from_config(config), counter or estimate_counter()
    total, tally = store.count(), _Tally()
    near = NearDuplicates(rules.near_duplicate_threshold)
    sources: dict[int, str] = {}
    for batch in _batches(store.iter_records(), size=512):
        if cancel.is_set():
            yield _store_finished(store, tally, counter, cancelled=True)
            return
        found = _check_examples(batch, rules, counter)
        store.set_problems(found)
        for example_id, record in batch:
            near.add(example_id, comparable_text(record["messages"]))
            _count_record(tally, found[example_id])
        sources.update(store.sources(i for i, problems in found.items() if problems))
        tally.add(
            Finding(_where(sources, i), p, i) for i, problems in found.items() for p in problems
        )
        if tally.due():
            yield tally.progress(tally.checked, total)
    tally.add(mark_duplicates(store, near))
    yield tally.progress(tally.checked, total)
    yield _store_finished(store, tally, counter)


def _where(sources: Mapping[int, str], example_id: int) -> str:
    source = sources.get(example_id)
    return f"{source} (example {example_id})" if source else f"example {example_id}"


def _check_examples(
    batch: Sequence[tuple[int, dict[str, Any]]], rules: Rules, counter: TokenCounter
) -> dict[int, list[Problem]]:
    counts = counter.count_many([record["messages"] for _, record in batch])
    return {
        example_id: check_record(record, rules, tokens, counter.exact)
        for (example_id, record), tokens in zip(batch, counts, strict=True)
    }


def find_duplicates(
    store: ExampleStore, near: NearDuplicates | None = None, threshold: float = 0.9
) -> tuple[list[DuplicateGroup], list[DuplicateGroup]]:
    """(exact groups, near groups) among the live examples; keys are example ids, the lowest id
    of a group is the one to keep. `near`: an index already filled, else one is built."""
    exact_groups = [
        DuplicateGroup(ids[0], tuple((i, 1.0) for i in ids[1:]), True)
        for ids in store.duplicate_groups()
    ]
    copy_of = {key: group.keep for group in exact_groups for key, _ in group.copies}
    if near is None:
        near = NearDuplicates(threshold)
        for example_id, messages in store.iter_messages():
            if example_id not in copy_of:
                near.add(example_id, comparable_text(messages))

    def same(a: int, b: int) -> bool:
        return copy_of.get(b, b) == copy_of.get(a, a)

    def text_of(keys: Iterable[int]) -> dict[int, str]:
        return {key: comparable_text(store.get(key).messages) for key in keys}

    return exact_groups, near.groups(text_of, same)


def mark_duplicates(
    store: ExampleStore, near: NearDuplicates | None = None, threshold: float = 0.9
) -> list[Finding]:
    """Record a `duplicate` / `near-duplicate` warning on every copy (replacing the old ones);
    returns them as findings."""
    exact_groups, near_groups = find_duplicates(store, near, threshold)
    ids = {g.keep for g in [*exact_groups, *near_groups]}
    ids |= {key for g in [*exact_groups, *near_groups] for key, _ in g.copies}
    sources = store.sources(ids)
    findings = _duplicate_findings(
        exact_groups, near_groups, lambda i: _where(sources, i), example_ids=True
    )
    problems: dict[int, list[Problem]] = {}
    for finding in findings:
        problems.setdefault(finding.example_id or 0, []).append(finding.problem)
    store.replace_problems(DUPLICATE_CODES, problems)
    return findings


def _store_finished(
    store: ExampleStore, tally: _Tally, counter: TokenCounter, cancelled: bool = False
) -> ValidateFinished:
    return ValidateFinished(
        checked=tally.checked,
        errors=tally.severities["error"],
        warnings=tally.severities["warning"],
        by_code=dict(tally.by_code.most_common()),
        exact_duplicates=tally.by_code["duplicate"],
        near_duplicates=tally.by_code["near-duplicate"],
        token_note=counter.note,
        cancelled=cancelled,
        quarantined=store.quarantine_count(),
        problem_examples=tally.with_problems,
        examples_with_errors=tally.with_errors,
    )
