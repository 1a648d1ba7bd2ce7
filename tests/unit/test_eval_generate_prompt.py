"""Eval answers the prompt chat would send: the same template, the same tokens, one BOS at most.

The candidate generator used to render prompts through llama-cpp-python's own chat completion
(which, for a GGUF without a chat template, falls back to Llama 2's `[INST]` format where chat
uses ChatML); it now goes through the chat engine.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_anthropic import demo_gguf

from workbench.chat.engine import ChatModel, ChatSettings
from workbench.evaluate.generate import LlamaCppGenerator
from workbench.train.data import chat_ids

CONVERSATION = [
    {"role": "system", "content": "You write SEO titles."},
    {"role": "user", "content": "A page about cast-iron pans: care, seasoning, recipes."},
]


@pytest.fixture(scope="module")
def gguf(tmp_path_factory: pytest.TempPathFactory, demo_model_dir: Path) -> Path:
    return demo_gguf(tmp_path_factory, demo_model_dir)


@pytest.fixture(scope="module")
def untemplated(gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo GGUF without its chat template (chat then uses its fallback template)."""
    out = tmp_path_factory.mktemp("untemplated") / "demo-no-template.gguf"
    command = [sys.executable, "-m", "gguf.scripts.gguf_new_metadata", str(gguf), str(out)]
    subprocess.run(
        [*command, "--remove-metadata", "tokenizer.chat_template", "--force"],
        check=True,
        capture_output=True,
    )
    return out


@pytest.fixture
def generator(gguf: Path) -> Iterator[LlamaCppGenerator]:
    model = LlamaCppGenerator(gguf, n_ctx=512, max_tokens=4, threads=1)
    yield model
    model.close()


def chat_prompt_and_answer(path: Path) -> tuple[list[int], Any, int]:
    """What chat sends for CONVERSATION, its greedy answer, and the file's BOS token."""
    settings = ChatSettings(n_ctx=512, threads=1, temperature=0.0, max_tokens=4, seed=0)
    with ChatModel.load(path, settings, probe=False) as chat:
        return (
            chat.prompt_tokens(CONVERSATION),
            chat.answer(CONVERSATION, settings),
            chat.llm.token_bos(),
        )


def record_prompts(generator: LlamaCppGenerator) -> list[list[int]]:
    """The token lists the generator hands to llama.cpp, recorded as it generates."""
    assert generator.model is not None
    llm = generator.model.llm
    original = llm.generate
    seen: list[list[int]] = []

    def recording(tokens: Any, **kwargs: Any) -> Any:
        seen.append(list(tokens))
        return original(tokens, **kwargs)

    llm.generate = recording
    return seen


def test_eval_prompts_with_the_tokens_chat_renders(
    generator: LlamaCppGenerator, gguf: Path, demo_model_dir: Path
) -> None:
    from transformers import AutoTokenizer

    seen = record_prompts(generator)
    answer = generator.generate(CONVERSATION)
    chat_tokens, chat_answer, bos = chat_prompt_and_answer(gguf)
    assert seen == [chat_tokens]
    assert chat_tokens.count(bos) <= 1
    assert chat_tokens == chat_ids(
        AutoTokenizer.from_pretrained(demo_model_dir), CONVERSATION, True
    )
    assert answer.ok and answer.input_tokens == len(chat_tokens)
    assert (answer.text, answer.output_tokens) == (chat_answer.text, chat_answer.completion_tokens)


def test_a_file_without_a_template_gets_the_chat_fallback(untemplated: Path) -> None:
    generator = LlamaCppGenerator(untemplated, n_ctx=512, max_tokens=4, threads=1)
    seen = record_prompts(generator)
    answer = generator.generate(CONVERSATION)
    generator.close()
    chat_tokens, chat_answer, bos = chat_prompt_and_answer(untemplated)
    assert seen == [chat_tokens] and chat_tokens.count(bos) <= 1
    assert answer.text == chat_answer.text


def test_a_missing_file_is_a_one_line_load_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no such GGUF file"):
        LlamaCppGenerator(tmp_path / "gone.gguf")


def test_a_closed_generator_answers_with_an_error(generator: LlamaCppGenerator) -> None:
    generator.close()
    answer = generator.generate(CONVERSATION)
    assert not answer.ok and "closed" in answer.error
