"""Import and export formats: detect a file's format, read it as OpenAI-chat records, write them.

A *container* (JSON Lines, a JSON array, CSV, Parquet, a Hugging Face `save_to_disk` folder) holds
records of one *shape* (OpenAI chat, ShareGPT, Alpaca, prompt/completion, or CSV columns). Every
record becomes an OpenAI-chat record (`{"messages": [...], ...}`); its other fields are kept, and
how the file spelled it (ShareGPT role names, where an Alpaca instruction ends, the key order...)
is kept under `FORMAT_KEY`, so that exporting to the same format gives the input back.

Reading streams (`read_records`); nothing here loads a whole file. pyarrow and datasets are
imported inside the functions that need them.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast, get_args

from workbench.data import readers
from workbench.data.readers import RawItem
from workbench.data.store import FORMAT_KEY, Example, ExampleStore, Problem, Split

Shape = Literal["openai", "sharegpt", "alpaca", "prompt-completion", "columns"]
Container = Literal["jsonl", "json", "csv", "parquet", "hf"]
InputFormat = Literal[
    "auto", "openai", "sharegpt", "alpaca", "prompt-completion", "csv", "parquet", "hf"
]
OutputFormat = Literal["openai", "sharegpt", "alpaca", "prompt-completion", "csv", "parquet", "hf"]
INPUT_FORMATS: tuple[str, ...] = get_args(InputFormat)
OUTPUT_FORMATS: tuple[str, ...] = get_args(OutputFormat)
SHAPES: tuple[str, ...] = ("openai", "sharegpt", "alpaca", "prompt-completion")

SHAPE_NAMES = {
    "openai": "OpenAI chat",
    "sharegpt": "ShareGPT",
    "alpaca": "Alpaca",
    "prompt-completion": "prompt/completion",
    "columns": "prompt and answer columns",
}
CONTAINER_NAMES = {
    "jsonl": "JSON Lines",
    "json": "JSON array",
    "csv": "CSV",
    "parquet": "Parquet",
    "hf": "Hugging Face dataset folder",
}
SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bing": "assistant",
    "bard": "assistant",
    "model": "assistant",
    "function_call": "assistant",
    "system": "system",
    "observation": "tool",
    "tool": "tool",
}
"""ShareGPT `from` names and the role each becomes; other names are kept as the role."""
SHAREGPT_NAMES = {"user": "human", "assistant": "gpt", "system": "system", "tool": "observation"}
"""The `from` name written for each role."""
CSV_COLUMN_PAIRS = (
    ("prompt", "completion"),
    ("question", "answer"),
    ("input", "output"),
    ("query", "response"),
    ("user", "assistant"),
)
"""Header names that tell a CSV file's prompt and answer columns without flags."""


class FormatError(Exception):
    """A file whose format cannot be used as given; the message says what to do."""


@dataclass(frozen=True)
class Columns:
    """Which CSV columns hold the prompt, the answer and (optionally) the system message."""

    prompt: str
    completion: str
    system: str | None = None


@dataclass(frozen=True)
class Detected:
    """A file's format: its container, the shape of its records, and how that was decided."""

    container: Container
    shape: Shape
    how: str
    columns: Columns | None = None

    def describe(self) -> str:
        """`OpenAI chat, JSON Lines (detected: line 1 has "messages")`."""
        shape = SHAPE_NAMES[self.shape]
        if self.columns is not None:
            shape = f"columns {self.columns.prompt!r} -> {self.columns.completion!r}"
            if self.columns.system:
                shape += f" (system: {self.columns.system!r})"
        return f"{shape}, {CONTAINER_NAMES[self.container]} ({self.how})"


@dataclass(frozen=True)
class InputRecord:
    """One input record converted to OpenAI chat, or why it could not be."""

    source: str
    """`file:line` (or `folder/split:row`)."""
    line: int | None
    record: dict[str, Any] | None
    """The OpenAI-chat record (with FORMAT_KEY when the shape needs it); None if unreadable."""
    problems: tuple[Problem, ...]
    """Errors found while reading or converting (validation adds its own)."""
    raw_text: str | None
    original: Any
    position: int
    """How far into the input this record ends (see `input_size`)."""
    part: str = ""

    def raw(self) -> str:
        """The input as text, for the quarantine: the line itself, or the row as JSON."""
        if self.raw_text is not None:
            return self.raw_text
        return json.dumps(self.original, ensure_ascii=False, default=str)


# --- detection -------------------------------------------------------------------------------


def detect(path: Path, fmt: InputFormat = "auto", columns: Columns | None = None) -> Detected:
    """The container and record shape of `path`; `fmt` names one of them (or auto)."""
    if not path.exists():
        raise FormatError(f"{path}: no such file or folder")
    container = _container(path, fmt)
    if container == "csv":
        return _detect_csv(path, columns, fmt)
    if fmt in SHAPES:
        return Detected(container, cast(Shape, fmt), "given with --format")
    keys, where = _first_keys(path, container)
    shape = shape_of_keys(keys)
    if shape is None:
        if keys is None:
            return Detected(container, "openai", "no record could be read; assumed")
        found = ", ".join(repr(key) for key in keys) or "no keys"
        raise FormatError(
            f"{path}: cannot tell the format ({where} has {found}); "
            "pass --format openai|sharegpt|alpaca|prompt-completion"
        )
    key = _telling_key(shape, keys or [])
    return Detected(container, shape, f"detected: {where} has {key!r}")


def _container(path: Path, fmt: InputFormat) -> Container:
    if path.is_dir():
        if not readers.is_hf_dataset(path):
            raise FormatError(f"{path}: a folder, but not one written by `datasets` (save_to_disk)")
        return "hf"
    suffix = path.suffix.lower()
    if fmt == "parquet" or (fmt not in ("csv", "hf") and suffix in (".parquet", ".pq")):
        return "parquet"
    if fmt == "csv" or (fmt == "auto" and suffix in (".csv", ".tsv")):
        return "csv"
    if fmt == "hf":
        raise FormatError(f"{path}: --format hf needs a folder written by save_to_disk")
    return "json" if readers.is_json_array(path) else "jsonl"


def shape_of_keys(keys: Iterable[str] | None) -> Shape | None:
    """The record shape its keys tell, or None."""
    if keys is None:
        return None
    names = set(keys)
    if "conversations" in names or "conversation" in names:
        return "sharegpt"
    if "messages" in names:
        return "openai"
    if {"instruction", "output"} <= names:
        return "alpaca"
    if {"prompt", "completion"} <= names:
        return "prompt-completion"
    return None


def shape_of(value: Any) -> Shape | None:
    """The shape of one parsed record (ShareGPT turns under "messages" count as ShareGPT)."""
    if not isinstance(value, dict):
        return None
    shape = shape_of_keys(value)
    messages = value.get("messages")
    if shape == "openai" and isinstance(messages, list) and messages:
        first = messages[0]
        if isinstance(first, dict) and "from" in first and "role" not in first:
            return "sharegpt"
    return shape


def _telling_key(shape: Shape, keys: Sequence[str]) -> str:
    for key in ("conversations", "conversation", "messages", "instruction", "prompt"):
        if key in keys:
            return key
    return shape


def _first_keys(path: Path, container: Container) -> tuple[list[str] | None, str]:
    """The keys of the first record that is a JSON object (within the first 100), and where."""
    if container == "parquet":
        return readers.parquet_columns(path), "the table"
    if container == "hf":
        return readers.hf_columns(path), "the dataset"
    items = readers.iter_json_array(path) if container == "json" else readers.iter_jsonl(path)
    for count, item in enumerate(items):
        if isinstance(item.value, dict):
            if "messages" in item.value and shape_of(item.value) == "sharegpt":
                return ["conversations"], f"line {item.line}"
            return list(item.value), f"line {item.line}"
        if count >= 100:
            break
    return None, "no line"


def _detect_csv(path: Path, columns: Columns | None, fmt: InputFormat) -> Detected:
    header = readers.csv_header(path)
    if columns is not None:
        missing = [c for c in (columns.prompt, columns.completion, columns.system) if c]
        missing = [c for c in missing if c not in header]
        if missing:
            raise FormatError(f"{path}: no column {missing[0]!r} (columns: {', '.join(header)})")
        return Detected("csv", "columns", "columns given with flags", columns)
    shape = shape_of_keys(header)
    if shape in ("alpaca", "prompt-completion"):
        return Detected("csv", shape, f"detected: the header has {_telling_key(shape, header)!r}")
    lower = {name.lower(): name for name in header}
    for prompt, completion in CSV_COLUMN_PAIRS:
        if prompt in lower and completion in lower:
            system = lower.get("system")
            found = Columns(lower[prompt], lower[completion], system)
            return Detected("csv", "columns", "detected from the header", found)
    raise FormatError(
        f"{path}: cannot tell which columns hold the prompt and the answer "
        f"(columns: {', '.join(header) or 'none'}); "
        "pass --prompt-column NAME --completion-column NAME"
    )


# --- reading ---------------------------------------------------------------------------------


def input_size(path: Path, detected: Detected) -> int:
    """The total that `InputRecord.position` counts towards: bytes, or rows of a table."""
    if detected.container == "parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    if detected.container == "hf":
        return readers.hf_rows(path)
    return path.stat().st_size


def read_records(path: Path, detected: Detected, name: str | None = None) -> Iterator[InputRecord]:
    """Every record of `path` as OpenAI chat, in file order; `name` is how sources show the file."""
    shown = name or str(path)
    for item in _raw_items(path, detected.container):
        source = f"{shown}/{item.part}:{item.line}" if item.part else f"{shown}:{item.line}"
        if item.error is not None:
            record, problems = None, [item.error]
        else:
            record, problems = convert(item.value, detected)
        yield InputRecord(
            source,
            item.line,
            record,
            tuple(problems),
            item.text,
            item.value,
            item.position,
            item.part,
        )


def _raw_items(path: Path, container: Container) -> Iterator[RawItem]:
    if container == "jsonl":
        return readers.iter_jsonl(path)
    if container == "json":
        return readers.iter_json_array(path)
    if container == "csv":
        return readers.iter_csv(path)
    if container == "parquet":
        return readers.iter_parquet(path)
    return readers.iter_hf_dataset(path)


def convert(value: Any, detected: Detected) -> tuple[dict[str, Any] | None, list[Problem]]:
    """One parsed record to OpenAI chat, with the problems that stop it."""
    if not isinstance(value, dict):
        kind = type(value).__name__ if value is not None else "null"
        return None, [_error("not-object", f"not a JSON object (a {_json_kind(kind)})")]
    shape: Shape | None = detected.shape
    if shape != "columns":
        shape = shape_of(value) or shape
    if shape == "sharegpt":
        return from_sharegpt(value)
    if shape == "alpaca":
        return from_alpaca(value)
    if shape == "prompt-completion":
        return from_prompt_completion(value)
    if shape == "columns" and detected.columns is not None:
        return from_columns(value, detected.columns)
    return dict(value), []


def _json_kind(python_type: str) -> str:
    return {"list": "list", "str": "string", "int": "number", "float": "number"}.get(
        python_type, python_type
    )


def _error(code: str, message: str) -> Problem:
    return Problem("error", code, message)


def _hint(shape: str, value: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"shape": shape, "keys": list(value), **{k: v for k, v in more.items() if v}}


def _rest(value: dict[str, Any], used: Iterable[str]) -> dict[str, Any]:
    skip = set(used)
    return {key: item for key, item in value.items() if key not in skip}


# --- ShareGPT --------------------------------------------------------------------------------


def from_sharegpt(value: dict[str, Any]) -> tuple[dict[str, Any] | None, list[Problem]]:
    """`{"conversations": [{"from": "human", "value": ...}, ...]}` (a top-level "system" too)."""
    key = next((k for k in ("conversations", "conversation", "messages") if k in value), "")
    turns = value.get(key)
    if not isinstance(turns, list):
        return None, [_error("no-messages", "no 'conversations' list (ShareGPT)")]
    messages: list[Any] = []
    system = value.get("system")
    if isinstance(system, str) and system:
        messages.append({"role": "system", "content": system})
    names: list[Any] = []
    for turn in turns:
        if not isinstance(turn, dict):
            messages.append(turn)
            names.append(None)
            continue
        name = turn.get("from")
        message: dict[str, Any] = {"role": SHAREGPT_ROLES.get(str(name), name)}
        if "value" in turn:
            message["content"] = turn["value"]
        message.update(_rest(turn, ("from", "value")))
        messages.append(message)
        names.append(name)
    default = [_sharegpt_name(m) for m in messages[len(messages) - len(turns) :]]
    hint = _hint("sharegpt", value, **{"from": names if names != default else None})
    rest = _rest(value, (key, "system"))
    return {**rest, "messages": messages, FORMAT_KEY: hint}, []


def _sharegpt_name(message: Any) -> Any:
    if not isinstance(message, dict):
        return None
    role = message.get("role")
    return SHAREGPT_NAMES.get(str(role), role)


def to_sharegpt(example: Example) -> dict[str, Any]:
    """An example as a ShareGPT record; exactly the input when it was imported from ShareGPT."""
    hint = _hint_of(example, "sharegpt")
    keys = hint.get("keys") or ["conversations"]
    key = next((k for k in ("conversations", "conversation", "messages") if k in keys), "")
    messages = list(example.messages)
    out: dict[str, Any] = {}
    if "system" in keys:
        first = messages[0] if messages else {}
        has_system = first.get("role") == "system" and isinstance(first.get("content"), str)
        out["system"] = first["content"] if has_system else ""
        messages = messages[1:] if has_system else messages
    names = hint.get("from")
    if not isinstance(names, list) or len(names) != len(messages):
        names = [_sharegpt_name(m) for m in messages]
    turns = []
    for name, message in zip(names, messages, strict=True):
        turn = {"from": name}
        if "content" in message:
            turn["value"] = message["content"]
        turns.append({**turn, **_rest(message, ("role", "content"))})
    out[key or "conversations"] = turns
    return _ordered(example, out, keys)


# --- Alpaca ----------------------------------------------------------------------------------


def from_alpaca(value: dict[str, Any]) -> tuple[dict[str, Any] | None, list[Problem]]:
    """`{"instruction", "input", "output"}` (and "system", "history"): the user message is the
    instruction, a blank line, then the input."""
    problems = [
        _error("alpaca", f"{key!r} is not a string (Alpaca)")
        for key in ("instruction", "input", "output", "system")
        if key in value and value[key] is not None and not isinstance(value[key], str)
    ]
    missing = [key for key in ("instruction", "output") if key not in value]
    if missing:
        problems.append(_error("alpaca", f"no {missing[0]!r} (Alpaca)"))
    if problems:
        return None, problems
    messages: list[dict[str, Any]] = []
    if value.get("system"):
        messages.append({"role": "system", "content": value["system"]})
    messages += _history_messages(value.get("history"))
    instruction, given = value["instruction"] or "", value.get("input") or ""
    separator = "\n\n" if instruction and given else ""
    user = instruction + separator + given
    messages.append({"role": "user", "content": user})
    messages.append({"role": "assistant", "content": value["output"]})
    split = [len(instruction), separator, _digest(instruction)] if given else None
    hint = _hint("alpaca", value, split=split)
    rest = _rest(value, ("instruction", "input", "output", "system", "history"))
    return {**rest, "messages": messages, FORMAT_KEY: hint}, []


def _history_messages(history: Any) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if isinstance(history, list):
        for pair in history:
            if isinstance(pair, list | tuple) and len(pair) == 2:
                messages.append({"role": "user", "content": pair[0]})
                messages.append({"role": "assistant", "content": pair[1]})
    return messages


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def to_alpaca(example: Example) -> dict[str, Any]:
    """An example as an Alpaca record: the last user message is split back into instruction and
    input where the import joined them; earlier turns become "history"."""
    hint = _hint_of(example, "alpaca")
    keys = hint.get("keys") or ["instruction", "input", "output"]
    messages = list(example.messages)
    out: dict[str, Any] = {}
    if messages and messages[0].get("role") == "system":
        out["system"] = messages[0].get("content")
        messages = messages[1:]
    elif "system" in keys:
        out["system"] = ""
    answer = (
        messages.pop().get("content") if messages and _role(messages[-1]) == "assistant" else ""
    )
    user = messages.pop().get("content") if messages and _role(messages[-1]) == "user" else ""
    out["instruction"], out["input"] = _split_instruction(str(user or ""), hint.get("split"))
    out["output"] = answer
    history = [
        [messages[i].get("content"), messages[i + 1].get("content")]
        for i in range(0, len(messages) - 1, 2)
    ]
    if history or "history" in keys:
        out["history"] = history
    if "input" not in keys and not out["input"]:
        del out["input"]
    return _ordered(example, out, [*keys, *[key for key in ("system", "history") if key in out]])


def _role(message: Any) -> Any:
    return message.get("role") if isinstance(message, dict) else None


def _split_instruction(user: str, split: Any) -> tuple[str, str]:
    """(instruction, input) of a user message the import joined (checked against the digest)."""
    if isinstance(split, list) and len(split) == 3:
        length, separator, digest = split
        head = user[:length]
        if _digest(head) == digest and user[length : length + len(separator)] == separator:
            return head, user[length + len(separator) :]
    return user, ""


# --- prompt / completion ---------------------------------------------------------------------


def from_prompt_completion(value: dict[str, Any]) -> tuple[dict[str, Any] | None, list[Problem]]:
    """`{"prompt": str, "completion": str}`, or TRL's conversational form with message lists."""
    prompt, completion = value.get("prompt"), value.get("completion")
    rest = _rest(value, ("prompt", "completion"))
    if isinstance(prompt, list) and isinstance(completion, list):
        hint = _hint("prompt-completion", value, conversational=len(prompt) or -1)
        return {**rest, "messages": [*prompt, *completion], FORMAT_KEY: hint}, []
    wrong = [
        k for k, v in (("prompt", prompt), ("completion", completion)) if not isinstance(v, str)
    ]
    if wrong:
        return None, [_error("prompt-completion", f"{wrong[0]!r} is missing or not a string")]
    messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": completion}]
    return {**rest, "messages": messages, FORMAT_KEY: _hint("prompt-completion", value)}, []


def to_prompt_completion(example: Example) -> dict[str, Any]:
    """An example as prompt/completion: plain strings for one user turn and one answer, else
    TRL's conversational form (lists of messages)."""
    hint = _hint_of(example, "prompt-completion")
    keys = hint.get("keys") or ["prompt", "completion"]
    messages = list(example.messages)
    split = hint.get("conversational")
    if isinstance(split, int) and 0 < split < len(messages):
        out: dict[str, Any] = {"prompt": messages[:split], "completion": messages[split:]}
    elif [_role(m) for m in messages] == ["user", "assistant"]:
        out = {"prompt": messages[0].get("content"), "completion": messages[1].get("content")}
    else:
        out = {"prompt": messages[:-1], "completion": messages[-1:]}
    return _ordered(example, out, keys)


# --- CSV columns ----------------------------------------------------------------------------


def from_columns(
    value: dict[str, Any], columns: Columns
) -> tuple[dict[str, Any] | None, list[Problem]]:
    """A CSV row: the prompt column becomes the user message, the answer column the assistant's,
    the system column (if any and not empty) the system message; other columns are kept."""
    messages = []
    if columns.system and value.get(columns.system):
        messages.append({"role": "system", "content": value[columns.system]})
    messages.append({"role": "user", "content": value.get(columns.prompt)})
    messages.append({"role": "assistant", "content": value.get(columns.completion)})
    used = [name for name in (columns.prompt, columns.completion, columns.system) if name]
    hint = _hint("columns", value, names=[columns.prompt, columns.completion, columns.system])
    return {**_rest(value, used), "messages": messages, FORMAT_KEY: hint}, []


def to_columns(example: Example) -> dict[str, Any]:
    """An example as a CSV row: the columns it came from, else system / prompt / completion."""
    hint = _hint_of(example, "columns")
    names = hint.get("names") or ["prompt", "completion", "system"]
    prompt, completion, system = [*names, None, None, None][:3]
    messages = example.messages
    out: dict[str, Any] = {}
    if system or any(_role(m) == "system" for m in messages):
        out[system or "system"] = next(
            (m.get("content") for m in messages if _role(m) == "system"), ""
        )
    out[prompt] = next((m.get("content") for m in reversed(messages) if _role(m) == "user"), "")
    out[completion] = next(
        (m.get("content") for m in reversed(messages) if _role(m) == "assistant"), ""
    )
    keys = hint.get("keys") or [name for name in (system, prompt, completion) if name in out]
    return _ordered(example, out, keys)


# --- writing ---------------------------------------------------------------------------------


def _hint_of(example: Example, shape: str) -> dict[str, Any]:
    hint = example.format_hint
    return hint if hint.get("shape") == shape else {}


def _ordered(example: Example, fields: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    """The example's extra fields with `fields` (the format's own), `keys` first in order."""
    record = {k: v for k, v in example.record().items() if k != "messages"} | fields
    first = {key: record[key] for key in keys if key in record}
    return first | record


def to_openai(example: Example) -> dict[str, Any]:
    return example.record()


TO_SHAPE = {
    "openai": to_openai,
    "sharegpt": to_sharegpt,
    "alpaca": to_alpaca,
    "prompt-completion": to_prompt_completion,
    "columns": to_columns,
}


def to_table_row(example: Example) -> dict[str, Any]:
    """A Parquet or dataset row: the shape the example came in (OpenAI chat if none)."""
    shape = example.format_hint.get("shape", "openai")
    return TO_SHAPE.get(shape if shape != "columns" else "openai", to_openai)(example)


def write_examples(
    examples: Iterable[Example], path: Path, fmt: OutputFormat, reread: Any = None
) -> int:
    """Write examples to `path` in `fmt`, atomically; returns how many.

    `reread` (a callable returning the examples again) lets CSV, Parquet and dataset exports
    learn every column before writing, without holding the examples in memory.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt in ("openai", "sharegpt", "alpaca", "prompt-completion"):
        convert_one = TO_SHAPE[fmt]
        return _atomic(path, lambda tmp: _write_json(tmp, map(convert_one, examples), path))
    if fmt == "csv":
        delimiter = readers.csv_delimiter(path)
        return _atomic(path, lambda tmp: _write_csv(tmp, examples, reread, delimiter))
    if fmt == "parquet":
        return _atomic(path, lambda tmp: _write_parquet(tmp, examples, reread))
    if fmt == "hf":
        return _write_hf(path, examples, reread)
    raise FormatError(f"unknown export format {fmt!r} (use one of {', '.join(OUTPUT_FORMATS)})")


def _atomic(path: Path, write: Any) -> int:
    """Write through a temporary file next to `path`, renamed into place when complete."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        count = int(write(Path(tmp)))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return count


def _write_json(tmp: Path, records: Iterable[dict[str, Any]], path: Path) -> int:
    """JSON Lines, or a JSON array when the target ends in `.json`."""
    array = path.suffix.lower() == ".json"
    count = 0
    with tmp.open("w", encoding="utf-8", newline="\n") as handle:
        if array:
            handle.write("[")
        for record in records:
            text = json.dumps(record, ensure_ascii=False)
            if array:
                handle.write(("\n" if count == 0 else ",\n") + text)
            else:
                handle.write(text + "\n")
            count += 1
        if array:
            handle.write("\n]\n" if count else "]\n")
    return count


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _write_csv(tmp: Path, examples: Iterable[Example], reread: Any, delimiter: str) -> int:
    rows: Iterable[dict[str, Any]] = (to_columns_or_shape(e) for e in examples)
    header: list[str] = []
    if reread is not None:
        for row in (to_columns_or_shape(e) for e in reread()):
            header += [key for key in row if key not in header]
    else:
        rows = list(rows)
        for row in rows:
            header += [key for key in row if key not in header]
    count = 0
    with tmp.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(header)
        for row in rows:
            writer.writerow([_csv_cell(row.get(name)) for name in header])
            count += 1
    return count


def to_columns_or_shape(example: Example) -> dict[str, Any]:
    """A CSV row: Alpaca and prompt/completion examples keep their columns, others get the
    prompt/completion columns."""
    shape = example.format_hint.get("shape")
    if shape in ("alpaca", "prompt-completion"):
        return TO_SHAPE[str(shape)](example)
    return to_columns(example)


def _table_schema(examples: Iterable[Example]) -> Any:
    """One Arrow schema for all rows (struct fields are the union over rows)."""
    import pyarrow as pa

    schemas = [
        pa.Table.from_pylist(batch).schema for batch in _batches(map(to_table_row, examples))
    ]
    if not schemas:
        return pa.schema([("messages", pa.list_(pa.struct([("role", pa.string())])))])
    return pa.unify_schemas(schemas, promote_options="permissive")


def _batches(rows: Iterable[dict[str, Any]], size: int = 2000) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _write_parquet(tmp: Path, examples: Iterable[Example], reread: Any) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if reread is None:
        examples = list(examples)
    schema = _table_schema(reread() if reread is not None else examples)
    count = 0
    with pq.ParquetWriter(tmp, schema) as writer:
        for batch in _batches(map(to_table_row, examples)):
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            count += len(batch)
    return count


def _write_hf(path: Path, examples: Iterable[Example], reread: Any) -> int:
    """A `save_to_disk` folder (through `datasets`, imported here)."""
    import datasets

    if path.exists():
        raise FormatError(f"{path} exists; choose a new folder for a dataset export")
    with tempfile.TemporaryDirectory(prefix=".export-", dir=path.parent) as tmp:
        parquet = Path(tmp) / "rows.parquet"
        count = _write_parquet(parquet, examples, reread)
        dataset = datasets.Dataset.from_parquet(str(parquet), cache_dir=str(Path(tmp) / "cache"))
        dataset.save_to_disk(str(path))
    return count


def export_examples(
    store: ExampleStore,
    path: Path,
    fmt: OutputFormat,
    split: Split | None = None,
    include_bad: bool = False,
) -> int:
    """Write the live examples (of one split; without those flagged bad unless asked) to
    `path` in `fmt`; returns how many. Importing the file again gives the same examples."""

    def examples() -> Iterator[Example]:
        return store.iter_examples(split=split, include_bad=include_bad)

    return write_examples(examples(), path, fmt, reread=examples)
