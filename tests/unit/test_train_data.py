"""A run's data: frozen from the database with a hash, and tokenized with the prompt masked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.data.store import ExampleStore
from workbench.train.data import (
    IGNORE_INDEX,
    DataError,
    FrozenData,
    check_lengths,
    collect_examples,
    length_problem,
    read_frozen,
    tokenize_conversation,
    write_frozen,
)
from workbench.workspace import Workspace


def chat(user: str, answer: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    from workbench.demo_model import build_demo_model

    return AutoTokenizer.from_pretrained(build_demo_model(tmp_path_factory.mktemp("tok")))


def fill(workspace: Workspace, train: int, val: int, bad: int = 0) -> None:
    records = [{"messages": chat(f"question {n}", f"answer {n}")} for n in range(train + val)]
    with ExampleStore(workspace.db_path) as store:
        ids = store.add_examples(records, source="test")
        store.set_split(ids[:train], "train")
        store.set_split(ids[train:], "val")
        store.set_flag(ids[:bad], "bad")


def test_a_run_freezes_the_train_and_val_splits_without_bad_examples(workspace: Workspace) -> None:
    fill(workspace, train=6, val=2, bad=1)
    data = collect_examples(workspace.db_path)
    assert len(data.train) == 5 and len(data.val) == 2
    assert data.train[0][0]["content"] == "question 1"  # question 0 is flagged bad
    assert len(data.hash) == 64


def test_no_validation_split_is_refused_with_the_command_that_makes_one(
    workspace: Workspace,
) -> None:
    fill(workspace, train=6, val=0)
    with pytest.raises(DataError, match=r"workbench data split --val N"):
        collect_examples(workspace.db_path)


def test_no_training_examples_is_refused(workspace: Workspace) -> None:
    with pytest.raises(DataError, match="train split is empty"):
        collect_examples(workspace.db_path)


def test_frozen_files_round_trip_and_their_hash_follows_the_content(tmp_path: Path) -> None:
    data = FrozenData(train=(chat("a", "b"),), val=(chat("c", "d"),), train_ids=(1,), val_ids=(2,))
    manifest = write_frozen(tmp_path, data)
    assert manifest == {"hash": data.hash, "train_examples": 1, "val_examples": 1}
    assert read_frozen(tmp_path) == data
    edited = FrozenData(train=(chat("a", "B"),), val=data.val, train_ids=(1,), val_ids=(2,))
    assert edited.hash != data.hash
    (tmp_path / "train.jsonl").write_text(json.dumps({"id": 1, "messages": chat("x", "y")}) + "\n")
    with pytest.raises(DataError, match="changed since the run started"):
        read_frozen(tmp_path)


def test_only_the_answer_is_learned_the_prompt_tokens_are_masked(tokenizer) -> None:  # type: ignore[no-untyped-def]
    messages = [
        {"role": "system", "content": "You write short answers."},
        *chat("What is the capital of France?", "Paris is the capital."),
    ]
    example = tokenize_conversation(tokenizer, messages, max_length=512, completion_only=True)
    learned = [label for label in example.labels if label != IGNORE_INDEX]
    assert tokenizer.decode(learned) == "Paris is the capital.<|im_end|>\n"
    prompt = example.input_ids[: example.prompt_tokens]
    assert tokenizer.decode(prompt).endswith("<|im_start|>assistant\n")
    assert all(label == IGNORE_INDEX for label in example.labels[: example.prompt_tokens])
    assert example.labels[example.prompt_tokens :] == example.input_ids[example.prompt_tokens :]


def test_every_assistant_turn_is_learned_and_every_user_turn_masked(tokenizer) -> None:  # type: ignore[no-untyped-def]
    messages = [*chat("one", "first reply"), *chat("two", "second reply")]
    example = tokenize_conversation(tokenizer, messages, max_length=512, completion_only=True)
    spans, current = [], []
    for token, label in zip(example.input_ids, example.labels, strict=True):
        if label != IGNORE_INDEX:
            current.append(token)
        elif current:
            spans.append(tokenizer.decode(current))
            current = []
    spans.append(tokenizer.decode(current))
    assert spans == ["first reply<|im_end|>\n", "second reply<|im_end|>\n"]


def test_without_completion_only_loss_every_token_is_learned(tokenizer) -> None:  # type: ignore[no-untyped-def]
    example = tokenize_conversation(
        tokenizer, chat("q", "a"), max_length=512, completion_only=False
    )
    assert example.labels == example.input_ids and example.prompt_tokens == 0


def test_truncation_keeps_the_start_and_says_so(tokenizer) -> None:  # type: ignore[no-untyped-def]
    example = tokenize_conversation(tokenizer, chat("q", "word " * 200), 32, completion_only=True)
    assert len(example.input_ids) == len(example.labels) == 32
    assert example.truncated and example.full_tokens > 32


def test_a_max_length_below_the_prompt_length_is_refused_with_the_length_needed(tokenizer) -> None:  # type: ignore[no-untyped-def]
    long_prompt = chat("Topic: " + "gardening tools and soil " * 20, "Short answer.")
    data = FrozenData(train=(long_prompt, chat("q", "a")), val=(chat("q", "a"),))
    check = check_lengths(tokenizer, data, max_length=64)
    assert check.too_long_prompts == 1 and check.longest_prompt > 64
    problem = length_problem(check, 64)
    assert problem is not None
    assert problem.startswith("train.max_seq_length = 64 is below the prompt length of 1 of 3")
    assert f"raise train.max_seq_length above {check.longest_prompt}" in problem
    assert length_problem(check_lengths(tokenizer, data, 4096), 4096) is None
