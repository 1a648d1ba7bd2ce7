"""Import and export formats: detection, and import-then-export giving the input back."""

from __future__ import annotations

import csv
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from workbench.data.formats import Columns, FormatError, detect, export_examples
from workbench.data.importer import FileImported, ImportFinished, import_files
from workbench.data.store import ExampleStore

FIXTURES = Path(__file__).parent / "fixtures" / "data" / "formats"


@pytest.fixture
def store(tmp_path: Path) -> ExampleStore:
    with ExampleStore(tmp_path / "examples.db") as opened:
        yield opened


def import_one(store: ExampleStore, path: Path, **options: Any) -> FileImported:
    events = list(import_files(store, [path], cancel=threading.Event(), **options))
    finished = events[-1]
    assert isinstance(finished, ImportFinished)
    (result,) = finished.files
    assert isinstance(result, FileImported), result
    return result


def json_records(path: Path) -> list[Any]:
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        delimiter = "\t" if path.suffix == ".tsv" else ","
        return list(csv.DictReader(handle, delimiter=delimiter))


@pytest.mark.parametrize(
    ("name", "fmt", "described"),
    [
        ("openai.jsonl", "openai", "OpenAI chat, JSON Lines"),
        ("sharegpt.jsonl", "sharegpt", "ShareGPT, JSON Lines"),
        ("sharegpt_factory.json", "sharegpt", "ShareGPT, JSON array"),
        ("alpaca.json", "alpaca", "Alpaca, JSON array"),
        ("alpaca_no_input.jsonl", "alpaca", "Alpaca, JSON Lines"),
        ("prompt_completion.jsonl", "prompt-completion", "prompt/completion, JSON Lines"),
    ],
)
def test_json_formats_round_trip(
    store: ExampleStore, tmp_path: Path, name: str, fmt: str, described: str
) -> None:
    source = FIXTURES / name
    result = import_one(store, source)
    assert result.format.startswith(described) and "detected" in result.format
    assert result.imported == len(json_records(source)) and result.quarantined == 0
    out = tmp_path / f"out{source.suffix}"
    assert export_examples(store, out, fmt) == result.imported  # type: ignore[arg-type]
    assert json_records(out) == json_records(source)


def test_openai_keeps_tool_calls_and_extra_fields(store: ExampleStore) -> None:
    import_one(store, FIXTURES / "openai.jsonl")
    first, tools, _ = store.iter_examples()
    assert first.record()["meta"] == {"source": "crm", "score": 0.9}
    calls = tools.messages[2]["tool_calls"]
    assert calls[0]["function"]["name"] == "weather" and tools.messages[2]["content"] is None
    assert tools.record()["tools"][0]["function"]["name"] == "weather"


def test_sharegpt_becomes_chat_roles(store: ExampleStore) -> None:
    import_one(store, FIXTURES / "sharegpt_factory.json")
    (example,) = store.iter_examples()
    roles = [m["role"] for m in example.messages]
    assert roles == ["system", "user", "assistant", "tool", "assistant"]


def test_alpaca_joins_instruction_and_input(store: ExampleStore) -> None:
    import_one(store, FIXTURES / "alpaca.json")
    translate, colours, summary = store.iter_examples()
    assert translate.messages[0] == {
        "role": "user",
        "content": "Translate to German.\n\nGood morning",
    }
    assert colours.messages[0]["content"] == "Name three primary colours."
    assert [m["role"] for m in summary.messages] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
    ]


@pytest.mark.parametrize("name", ["pairs.csv", "pairs.tsv"])
def test_csv_round_trip_with_detected_columns(
    store: ExampleStore, tmp_path: Path, name: str
) -> None:
    source = FIXTURES / name
    result = import_one(store, source)
    assert "detected from the header" in result.format or "detected:" in result.format
    out = tmp_path / f"out{source.suffix}"
    export_examples(store, out, "csv")
    assert csv_rows(out) == csv_rows(source)


def test_csv_quoted_cells_span_lines(store: ExampleStore) -> None:
    import_one(store, FIXTURES / "pairs.csv", root=FIXTURES)
    _, haiku, polite = store.iter_examples()
    assert haiku.messages[1]["content"].count("\n") == 2
    assert haiku.source == "pairs.csv:3" and polite.source == "pairs.csv:6"
    assert polite.messages[0]["content"] == 'Say "hello", politely.'


def test_csv_columns_chosen_by_flags(store: ExampleStore, tmp_path: Path) -> None:
    source = FIXTURES / "tickets.csv"
    with pytest.raises(FormatError, match="--prompt-column"):
        detect(source)
    import_one(store, source, columns=Columns("body", "reply"))
    first = next(store.iter_examples())
    assert first.messages == [
        {"role": "user", "content": "My order has not arrived."},
        {"role": "assistant", "content": "Sorry about that: it ships today."},
    ]
    assert first.record()["ticket_id"] == "T-1"
    out = tmp_path / "out.csv"
    export_examples(store, out, "csv")
    assert csv_rows(out) == csv_rows(source)


def test_parquet_round_trip(store: ExampleStore, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = json_records(FIXTURES / "openai.jsonl")
    source = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pylist(rows), source)
    result = import_one(store, source)
    assert result.format.startswith("OpenAI chat, Parquet") and result.imported == 3
    out = tmp_path / "out.parquet"
    export_examples(store, out, "parquet")
    assert pq.read_table(out).to_pylist() == pq.read_table(source).to_pylist()


def test_parquet_of_alpaca_rows_round_trips(store: ExampleStore, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = tmp_path / "alpaca.parquet"
    rows = json_records(FIXTURES / "alpaca.json")[:2]
    pq.write_table(pa.Table.from_pylist(rows), source)
    assert import_one(store, source).format.startswith("Alpaca, Parquet")
    out = tmp_path / "out.parquet"
    export_examples(store, out, "parquet")
    assert pq.read_table(out).to_pylist() == rows


def test_hf_dataset_folder_round_trip(store: ExampleStore, tmp_path: Path) -> None:
    import datasets

    rows = json_records(FIXTURES / "sharegpt.jsonl")
    source = tmp_path / "dataset"
    datasets.Dataset.from_list(rows).save_to_disk(str(source))
    result = import_one(store, source)
    assert result.format.startswith("ShareGPT, Hugging Face dataset folder")
    out = tmp_path / "exported"
    export_examples(store, out, "hf")
    assert (
        datasets.load_from_disk(str(out)).to_list()
        == datasets.load_from_disk(str(source)).to_list()
    )


def test_hf_dataset_dict_keeps_its_splits(store: ExampleStore, tmp_path: Path) -> None:
    import datasets

    rows = json_records(FIXTURES / "openai.jsonl")
    source = tmp_path / "dataset_dict"
    datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_list(rows[:2]),
            "test": datasets.Dataset.from_list(rows[2:]),
        }
    ).save_to_disk(str(source))
    import_one(store, source, root=tmp_path)
    sources = [e.source for e in store.iter_examples()]
    assert sources == ["dataset_dict/train:1", "dataset_dict/train:2", "dataset_dict/test:1"]


def test_detect_reports_why(tmp_path: Path) -> None:
    found = detect(FIXTURES / "openai.jsonl")
    assert found.describe() == "OpenAI chat, JSON Lines (detected: line 1 has 'messages')"
    given = detect(FIXTURES / "sharegpt.jsonl", "sharegpt")
    assert given.how == "given with --format"
    odd = tmp_path / "odd.jsonl"
    odd.write_text('{"question": "a", "reply": "b"}\n')
    with pytest.raises(FormatError, match="pass --format"):
        detect(odd)


def test_json_array_export_when_the_target_ends_in_json(
    store: ExampleStore, tmp_path: Path
) -> None:
    import_one(store, FIXTURES / "openai.jsonl")
    out = tmp_path / "all.json"
    export_examples(store, out, "openai")
    assert out.read_text().startswith("[") and len(json.loads(out.read_text())) == 3


def test_export_leaves_out_bad_examples_and_other_splits(
    store: ExampleStore, tmp_path: Path
) -> None:
    import_one(store, FIXTURES / "openai.jsonl")
    ids = store.ids()
    store.set_flag([ids[0]], "bad")
    store.set_split([ids[1]], "val")
    out = tmp_path / "out.jsonl"
    assert export_examples(store, out, "openai") == 2
    assert export_examples(store, out, "openai", split="val") == 1
    assert export_examples(store, out, "openai", include_bad=True) == 3
