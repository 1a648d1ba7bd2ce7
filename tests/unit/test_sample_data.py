"""The bundled sample workspace: realistic pairs, with the flaws real data has (FLAWS.md)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from workbench.config import load_config

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"
PAIRS = SAMPLE / "imports" / "seo_pairs.jsonl"


@pytest.fixture(scope="module")
def lines() -> list[str]:
    return PAIRS.read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="module")
def records(lines: list[str]) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in lines]


def answer(record: dict) -> str:  # type: ignore[type-arg]
    return record["messages"][-1]["content"]


def test_about_120_chat_examples(records: list[dict]) -> None:  # type: ignore[type-arg]
    assert 110 <= len(records) <= 130
    for record in records:
        assert [m["role"] for m in record["messages"]] == ["system", "user", "assistant"]
        assert record["messages"][1]["content"].startswith("Topic: ")
        assert "\nKeywords: " in record["messages"][1]["content"]


def test_one_long_instruction_prompt_with_an_older_variant(records: list[dict]) -> None:  # type: ignore[type-arg]
    prompts = Counter(record["messages"][0]["content"] for record in records)
    (main, main_count), (_, old_count) = prompts.most_common(2)
    assert len(prompts) == 2 and old_count == 2
    assert len(main.split()) >= 300
    assert main_count == len(records) - 2


def test_typical_answers_are_three_or_four_paragraphs(records: list[dict]) -> None:  # type: ignore[type-arg]
    paragraphs = Counter(len(answer(record).split("\n\n")) for record in records)
    assert paragraphs[3] + paragraphs[4] >= 110


def test_flaws_for_the_data_screen_to_find(lines: list[str], records: list[dict]) -> None:  # type: ignore[type-arg]
    exact = [n for n, line in enumerate(lines, 1) if line in lines[: n - 1]]
    assert exact == [56, 92, 99]
    answers = {n: answer(record) for n, record in enumerate(records, 1)}
    assert [n for n, text in answers.items() if not text] == [75]
    assert max(answers, key=lambda n: len(answers[n].split())) == 95
    assert len(answers[95].split()) > 1500
    truncated = [n for n, text in answers.items() if text and text.rstrip()[-1] not in ".!?\"'"]
    assert truncated == [31, 97]
    assert " und " in answers[79] and " the " not in answers[79]
    for copy, original in ((60, 40), (64, 41), (113, 94)):
        assert records[copy - 1]["messages"][1] == records[original - 1]["messages"][1]
        assert answers[copy] != answers[original]


def test_sample_config_trains_the_tiny_model_on_cpu() -> None:
    config = load_config(SAMPLE / "workbench.toml")
    assert config.train.base_model == "workbench:demo-tiny"
    assert config.workspace.name == "seo-writer"
