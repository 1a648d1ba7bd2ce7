"""Cleaning: the old pipeline's instructions found and stripped in one undoable step, duplicates
tagged, whitespace normalized."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from workbench.data import clean
from workbench.data.importer import import_pending
from workbench.data.store import ExampleStore, Query
from workbench.data.validate import open_store
from workbench.workspace import open_workspace

INSTRUCTION = (
    "You are a support agent for an online garden shop. Read the customer's message below and "
    "write a friendly reply of two or three sentences. Never promise refunds; point to the "
    "returns page instead.\n\nCustomer message:\n"
)
OLD_INSTRUCTION = INSTRUCTION.replace("two or three sentences", "at most three sentences")


@pytest.fixture
def sample(sample_workspace: Path) -> ExampleStore:
    workspace = open_workspace(sample_workspace)
    import_pending(workspace)
    with open_store(workspace) as store:
        yield store


def pair(user: str, answer: str, system: str | None = None) -> dict[str, Any]:
    messages = [{"role": "system", "content": system}] if system else []
    messages += [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
    return {"messages": messages}


def test_the_sample_system_prompt_and_its_older_variant_are_found(sample: ExampleStore) -> None:
    preview = clean.find_instructions(sample)
    (system,) = preview.instructions
    assert system.kind == "system" and len(system.example_ids) == 118
    (variant,) = system.variants
    sources = sample.sources(variant.example_ids)
    assert sorted(sources.values()) == ["imports/seo_pairs.jsonl:105", "imports/seo_pairs.jsonl:47"]
    assert "under 25 words" in variant.difference and "punctuation" in variant.difference
    assert preview.examples_changed == 120
    assert preview.tokens_saved > 0.5 * preview.tokens_before
    _, before, after = preview.samples[0]
    assert before[0]["role"] == "system" and after == before[1:]


def test_stripping_is_one_undoable_step(sample: ExampleStore) -> None:
    preview = clean.find_instructions(sample)
    assert clean.strip_instructions(sample, preview.instructions) == 120
    assert all(m["role"] != "system" for e in sample.iter_examples() for m in e.messages)
    assert sample.undo() == "strip instructions (system)"
    assert all(e.messages[0]["role"] == "system" for e in sample.iter_examples())


def test_variants_can_be_left_alone(sample: ExampleStore) -> None:
    preview = clean.find_instructions(sample)
    assert clean.strip_instructions(sample, preview.instructions, include_variants=False) == 118
    kept = [e for e in sample.iter_examples() if e.messages[0]["role"] == "system"]
    assert len(kept) == 2


def test_a_shared_prompt_prefix_and_its_variant(tmp_path: Path) -> None:
    messages = [f"My order #{n} arrived with a broken pot." for n in range(30)]
    with ExampleStore(tmp_path / "examples.db") as store:
        store.add_examples(
            [
                pair(INSTRUCTION + m, "Sorry to hear that! Here is what to do.")
                for m in messages[:28]
            ]
            + [pair(OLD_INSTRUCTION + m, "Sorry! See the returns page.") for m in messages[28:]]
            + [pair("Topic: roses\nKeywords: pruning", "Prune in late winter.")]
        )
        preview = clean.find_instructions(store)
        (prefix,) = preview.instructions
        assert prefix.kind == "prefix" and prefix.text == INSTRUCTION
        assert len(prefix.example_ids) == 28 and len(prefix.variants[0].example_ids) == 2
        assert clean.strip_instructions(store, preview.instructions) == 30
        users = [e.messages[0]["content"] for e in store.iter_examples()]
        assert users[:30] == messages and users[30].startswith("Topic: roses")


def test_a_shared_suffix(tmp_path: Path) -> None:
    suffix = "\n\nAnswer in plain English, in at most two sentences, and do not use any lists."
    with ExampleStore(tmp_path / "examples.db") as store:
        store.add_examples(
            [pair(f"Why is sky {n} blue?{suffix}", "Scattering.") for n in range(10)]
        )
        (found,) = clean.find_instructions(store).instructions
        assert found.kind == "suffix" and found.text == suffix
        clean.strip_instructions(store, [found])
        assert next(store.iter_examples()).messages[0]["content"] == "Why is sky 0 blue?"


def test_short_shared_labels_are_inputs_not_instructions(tmp_path: Path) -> None:
    with ExampleStore(tmp_path / "examples.db") as store:
        store.add_examples(
            [pair(f"Topic: plant {n}\nTone: warm", f"About plant {n}.") for n in range(10)]
        )
        assert clean.find_instructions(store).instructions == ()


def test_dedupe_tags_copies_and_keeps_the_first(sample: ExampleStore) -> None:
    plan = clean.plan_dedupe(sample)
    assert plan.copies == 6
    assert clean.apply_dedupe(sample, plan) == 6
    tagged = {
        t: sorted(sample.sources(sample.ids(Query(tag=t))).values()) for t, _ in sample.all_tags()
    }
    assert tagged == {
        "duplicate": [f"imports/seo_pairs.jsonl:{n}" for n in (56, 92, 99)],
        "near-duplicate": [f"imports/seo_pairs.jsonl:{n}" for n in (113, 60, 64)],
    }
    assert sample.undo() == "tag duplicates" and sample.all_tags() == []


def test_whitespace_is_normalized_on_request(tmp_path: Path) -> None:
    messy = "Hello  there,\r\nfriend.   \r\n\r\n\r\n\r\nBye\u00a0 now.\n\n```\nx  =  1\n```\n"
    with ExampleStore(tmp_path / "examples.db") as store:
        store.add_examples([pair("  Hi  ", messy), pair("Tidy", "Already tidy.")])
        preview = clean.preview_whitespace(store)
        assert preview.examples_changed == 1
        assert clean.normalize_whitespace(store) == 1
        first = next(store.iter_examples())
        assert first.messages[0]["content"] == "Hi"
        assert (
            first.messages[1]["content"] == "Hello there,\nfriend.\n\nBye now.\n\n```\nx  =  1\n```"
        )
        assert store.undo() == "normalize whitespace"
