"""Streaming readers: JSONL, JSON arrays, CSV, Parquet and Hugging Face `save_to_disk` folders.

Each yields `RawItem`s one at a time, so a file of any size is read in constant memory (a single
huge line is held once, never the whole file). A line that cannot be read becomes an item with an
`error`, and reading goes on with the next line. pyarrow is imported inside the functions.
"""

from __future__ import annotations

import codecs
import csv
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.data.store import Problem

_ARRAY_CHUNK = 1 << 20
"""Characters read at a time from a JSON array file."""
_ROW_BATCH = 1000
_KEEP_TEXT = 1 << 20
"""A valid line longer than this is not kept as text beside its parsed value (the quarantine
gets it re-encoded from the value instead)."""
"""Rows converted at a time from Parquet and Arrow files."""
HF_SPLITS = {"train": "train", "validation": "val", "valid": "val", "val": "val", "dev": "val"}
"""Hugging Face split names and the workspace split they become (`test` stays `test`)."""


class ReadError(Exception):
    """A whole file cannot be read (not Parquet, no Arrow files...); the message says why."""


@dataclass(frozen=True)
class RawItem:
    """One record as read from a file, before any conversion."""

    line: int | None
    """1-based line (JSONL, JSON, CSV: where the record starts) or row (Parquet, Arrow)."""
    value: Any
    """The parsed value (a dict for CSV and table rows); None when `error` is set."""
    text: str | None
    """The line's text (JSONL), for quarantine; None for rows of tables and huge valid lines."""
    error: Problem | None
    position: int
    """How far into the input this item ends (bytes, characters or rows; see `size`)."""
    part: str = ""
    """The split folder of a Hugging Face DatasetDict (`train`, `test`...), else empty."""


def _error(code: str, message: str) -> Problem:
    return Problem("error", code, message)


# --- JSON Lines --------------------------------------------------------------------------------


def iter_jsonl(path: Path) -> Iterator[RawItem]:
    """One item per non-blank line. A BOM, CRLF endings and blank lines are accepted. A line
    is held once (its bytes are dropped once decoded), so a 50 MB line costs about 100 MB."""
    position = number = 0
    with path.open("rb") as handle:
        while raw := handle.readline():
            number += 1
            position += len(raw)
            item = _jsonl_item(raw, number, position)
            del raw
            if item is not None:
                yield item


def _jsonl_item(raw: bytes, number: int, position: int) -> RawItem | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        shown = raw.decode("utf-8", "replace").rstrip("\r\n")
        problem = _error("invalid-utf8", f"invalid UTF-8 (byte {exc.start + 1} of the line)")
        return RawItem(number, None, shown, problem, position)
    if number == 1 and text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        return None
    text = text.rstrip("\r\n")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        problem = _error("not-json", f"not JSON: {exc.msg} (column {exc.colno})")
        return RawItem(number, None, text, problem, position)
    except RecursionError:
        return RawItem(
            number, None, text, _error("not-json", "not JSON: nested too deeply"), position
        )
    return RawItem(number, value, text if len(text) <= _KEEP_TEXT else None, None, position)


# --- a JSON array of records ------------------------------------------------------------------


def is_json_array(path: Path) -> bool:
    """Whether the file's first non-blank character is `[` (a JSON array, not JSON Lines)."""
    with path.open("rb") as handle:
        head = handle.read(4096).lstrip(codecs.BOM_UTF8 + b" \t\r\n")
    return head.startswith(b"[")


class _ArrayCursor:
    """A growing window on a JSON array file; counts lines as it moves."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self.buf = ""
        self.pos = 0
        self.line = 1
        self.read_chars = 0
        self.eof = False
        self.chunk = _ARRAY_CHUNK

    def more(self) -> bool:
        """Read another chunk (twice the last one, so a huge element costs linear time)."""
        if self.eof:
            return False
        data = self.handle.read(self.chunk)
        self.chunk *= 2
        if not data:
            self.eof = True
            return False
        self.read_chars += len(data)
        self.buf = self.buf[self.pos :] + data
        self.pos = 0
        return True

    def skip_space(self) -> str:
        """The next non-blank character (empty at the end of the file)."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in " \t\r\n":
                self.line += self.buf[self.pos] == "\n"
                self.pos += 1
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.more():
                return ""

    def decode(self, decoder: json.JSONDecoder) -> Any:
        """The JSON value at the cursor; reads on until it is complete."""
        while True:
            try:
                value, end = decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError:
                if self.more():
                    continue
                raise
            if end == len(self.buf) and self.more():
                continue
            self.line += self.buf.count("\n", self.pos, end)
            self.pos = end
            return value


def iter_json_array(path: Path) -> Iterator[RawItem]:
    """One item per element of a top-level JSON array, read incrementally."""
    decoder = json.JSONDecoder()
    with path.open("r", encoding="utf-8-sig", newline="") as handle:
        cursor = _ArrayCursor(handle)
        try:
            yield from _array_items(cursor, decoder)
        except UnicodeDecodeError as exc:
            problem = _error("invalid-utf8", f"invalid UTF-8 ({exc.reason}); the rest is skipped")
            yield RawItem(cursor.line, None, None, problem, cursor.read_chars)


def _array_items(cursor: _ArrayCursor, decoder: json.JSONDecoder) -> Iterator[RawItem]:
    if cursor.skip_space() != "[":
        yield RawItem(cursor.line, None, None, _error("not-json", "not a JSON array"), 0)
        return
    cursor.pos += 1
    if cursor.skip_space() == "]":
        return
    while True:
        line = cursor.line
        try:
            value = cursor.decode(decoder)
        except json.JSONDecodeError as exc:
            message = f"not JSON: {exc.msg}; the rest of the array is skipped"
            yield RawItem(line, None, None, _error("not-json", message), cursor.read_chars)
            return
        yield RawItem(line, value, None, None, cursor.read_chars)
        following = cursor.skip_space()
        cursor.pos += 1
        if following == "]":
            return
        if following != ",":
            problem = _error("not-json", "expected ',' or ']' between array elements")
            yield RawItem(cursor.line, None, None, problem, cursor.read_chars)
            return
        cursor.skip_space()


# --- CSV ---------------------------------------------------------------------------------------


class _DecodedLines:
    """The lines of a file as text, remembering which ones were not valid UTF-8."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.bad: set[int] = set()
        self.position = 0

    def __iter__(self) -> Iterator[str]:
        with self.path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                self.position += len(raw)
                if number == 1:
                    raw = raw.removeprefix(codecs.BOM_UTF8)
                try:
                    yield raw.decode("utf-8")
                except UnicodeDecodeError:
                    self.bad.add(number)
                    yield raw.decode("utf-8", "replace")


def iter_csv(path: Path) -> Iterator[RawItem]:
    """One item per row: a dict from the header's column names to the row's cells.

    Quoted cells may span lines; the item's line is where its row starts. `.tsv`: tab-separated.
    """
    csv.field_size_limit(sys.maxsize)
    lines = _DecodedLines(path)
    reader = csv.reader(iter(lines), delimiter=csv_delimiter(path))
    header = next(reader, None)
    if header is None:
        return
    start = reader.line_num + 1
    for row in reader:
        first, last = start, reader.line_num
        start = last + 1
        if not any(cell.strip() for cell in row):
            continue
        yield _csv_item(header, row, first, last, lines)


def csv_header(path: Path) -> list[str]:
    """The column names of a CSV file (its first row)."""
    csv.field_size_limit(sys.maxsize)
    reader = csv.reader(iter(_DecodedLines(path)), delimiter=csv_delimiter(path))
    return next(reader, [])


def csv_delimiter(path: Path) -> str:
    """Tab for `.tsv` files, else comma."""
    return "\t" if path.suffix.lower() == ".tsv" else ","


def _csv_item(
    header: list[str], row: list[str], first: int, last: int, lines: _DecodedLines
) -> RawItem:
    text = json.dumps(dict(zip(header, row, strict=False)), ensure_ascii=False)
    if any(number in lines.bad for number in range(first, last + 1)):
        problem = _error("invalid-utf8", "invalid UTF-8 in this row")
        return RawItem(first, None, text, problem, lines.position)
    if len(row) != len(header):
        problem = _error("csv-columns", f"{len(row)} cells, but the header has {len(header)}")
        return RawItem(first, None, text, problem, lines.position)
    return RawItem(first, dict(zip(header, row, strict=True)), None, None, lines.position)


# --- Parquet and Arrow (Hugging Face datasets) -------------------------------------------------


def drop_nulls(value: Any, keep: frozenset[str] = frozenset({"content"})) -> Any:
    """Remove the None fields that a table adds for keys a row did not have (Parquet and Arrow
    columns are the union of all rows' keys); a message's `content` keeps its None."""
    if isinstance(value, dict):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None or k in keep}
    if isinstance(value, list):
        return [drop_nulls(v) for v in value]
    return value


def iter_parquet(path: Path) -> Iterator[RawItem]:
    """One item per row of a Parquet file."""
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
        raise ReadError(f"{path}: not a Parquet file ({exc})") from exc
    row = 0
    for batch in parquet.iter_batches(batch_size=_ROW_BATCH):
        for value in batch.to_pylist():
            row += 1
            yield RawItem(row, drop_nulls(value), None, None, row)


def parquet_columns(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    try:
        return list(pq.read_schema(path).names)
    except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
        raise ReadError(f"{path}: not a Parquet file ({exc})") from exc


def is_hf_dataset(path: Path) -> bool:
    """Whether `path` is a folder written by `datasets`' `save_to_disk`."""
    return path.is_dir() and (
        (path / "dataset_dict.json").is_file()
        or (path / "state.json").is_file()
        or any(path.glob("*.arrow"))
    )


def hf_parts(path: Path) -> list[tuple[str, list[Path]]]:
    """(split name or "", Arrow files) of a `save_to_disk` folder: a Dataset or a DatasetDict."""
    if (path / "dataset_dict.json").is_file():
        splits = json.loads((path / "dataset_dict.json").read_text(encoding="utf-8"))["splits"]
        return [(str(split), _arrow_files(path / str(split))) for split in splits]
    return [("", _arrow_files(path))]


def _arrow_files(folder: Path) -> list[Path]:
    state = folder / "state.json"
    if state.is_file():
        data = json.loads(state.read_text(encoding="utf-8"))
        return [folder / entry["filename"] for entry in data.get("_data_files", [])]
    files = sorted(folder.glob("*.arrow"))
    if not files:
        raise ReadError(f"{folder}: no .arrow files (not a `save_to_disk` folder)")
    return files


def hf_columns(path: Path) -> list[str]:
    import pyarrow as pa

    for _, files in hf_parts(path):
        for file in files:
            with pa.memory_map(str(file)) as source:
                return list(pa.ipc.open_stream(source).schema.names)
    return []


def hf_rows(path: Path) -> int:
    """How many rows the folder holds (for progress)."""
    import pyarrow as pa

    total = 0
    for _, files in hf_parts(path):
        for file in files:
            with pa.memory_map(str(file)) as source:
                total += sum(batch.num_rows for batch in pa.ipc.open_stream(source))
    return total


def iter_hf_dataset(path: Path) -> Iterator[RawItem]:
    """One item per row; rows of a DatasetDict carry their split in `part`."""
    import pyarrow as pa

    position = 0
    for part, files in hf_parts(path):
        row = 0
        for file in files:
            with pa.memory_map(str(file)) as source:
                for batch in pa.ipc.open_stream(source):
                    for value in batch.to_pylist():
                        row += 1
                        position += 1
                        yield RawItem(row, drop_nulls(value), None, None, position, part)
