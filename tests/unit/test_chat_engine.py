"""The chat engine on the tiny demo model in llama.cpp: f16, q8_0 and q4_k_m load and answer in
this process (the AMX crash is avoided), answers stream with timings, stop on request, and
multi-turn, regenerate and compare work; a file that would crash llama.cpp only crashes the
probe's child process."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from filelock import FileLock

from workbench.chat import runtime
from workbench.chat.compare import SideEvent, compare_answers, compare_stream
from workbench.chat.conversation import Conversation
from workbench.chat.engine import (
    AnswerDone,
    ChatModel,
    ChatSettings,
    ContextFullError,
    ModelBusyError,
    PromptReady,
    TokenStreamed,
)
from workbench.chat.probe import ProbeFailed, run_probe
from workbench.chat.template import ChatTemplateError
from workbench.export.convert import convert_to_gguf
from workbench.export.quantize import quantize_gguf

pytestmark = pytest.mark.slow

QUESTION = [{"role": "user", "content": "Write a title for a page about cafés."}]
GREEDY = ChatSettings(temperature=0.0, max_tokens=12, seed=1)


@pytest.fixture(scope="module")
def ggufs(demo_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The demo model as f16, q8_0 and q4_k_m GGUFs, built once for all xdist workers."""
    base = tmp_path_factory.getbasetemp()
    out = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "chat-ggufs"
    files = {quant: out / f"demo-{quant}.gguf" for quant in ("f16", "q8_0", "q4_k_m")}
    with FileLock(f"{out}.lock"):
        if not all(path.is_file() for path in files.values()):
            convert_to_gguf(demo_model_dir, files["f16"], "f16")
            for quant in ("q8_0", "q4_k_m"):
                quantize_gguf(files["f16"], files[quant], quant)
    return files


@pytest.fixture(scope="module")
def f16_model(ggufs: dict[str, Path]) -> Iterator[ChatModel]:
    with ChatModel.load(ggufs["f16"], ChatSettings(n_ctx=512)) as model:
        yield model


@pytest.mark.parametrize("quant", ["f16", "q8_0", "q4_k_m"])
def test_every_quantization_loads_and_answers_in_process(
    ggufs: dict[str, Path], quant: str
) -> None:
    with ChatModel.load(ggufs[quant], ChatSettings(n_ctx=256)) as model:
        assert model.info.quantization == quant
        assert model.loaded.template_source == "gguf"
        if runtime.cpu_has_amx():
            assert model.loaded.extra_buffers is False, "AMX kernels crash on quantized models"
        done = model.answer(QUESTION, GREEDY)
    assert done.prompt_tokens > 10, "a multi-token prompt is what used to crash on AMX CPUs"
    assert done.completion_tokens >= 1 and done.text


def test_the_unsafe_cpu_setting_crashes_only_the_probe_child(ggufs: dict[str, Path]) -> None:
    if not runtime.cpu_has_amx():
        report = run_probe(ggufs["q8_0"], gpu_layers=0, extra_buffers=True)
        assert report["ok"] and report["prompt_tokens"] > 1
        return
    with pytest.raises(ProbeFailed) as excinfo:
        run_probe(ggufs["q8_0"], gpu_layers=0, extra_buffers=True)
    message = str(excinfo.value)
    assert "llama.cpp crashed (SIGSEGV)" in message and "nothing was loaded into the app" in message
    assert run_probe(ggufs["q8_0"], gpu_layers=0, extra_buffers=False)["ok"]


def test_answers_stream_token_by_token_with_timings(f16_model: ChatModel) -> None:
    events = list(f16_model.stream(QUESTION, GREEDY))
    ready, *tokens, done = events
    assert isinstance(ready, PromptReady) and ready.context_size == 512
    assert ready.prompt_tokens == len(f16_model.prompt_tokens(QUESTION))
    assert all(isinstance(event, TokenStreamed) for event in tokens)
    assert [event.index for event in tokens] == list(range(1, len(tokens) + 1))
    assert isinstance(done, AnswerDone)
    assert done.text == "".join(event.text for event in tokens)
    assert done.completion_tokens == len(tokens) == 12 and done.stop_reason == "length"
    assert 0 < done.time_to_first_token_s <= tokens[-1].elapsed_s <= done.total_s
    assert done.tokens_per_s > 0
    # Greedy with a fixed seed is reproducible: the same question gets the same answer.
    assert f16_model.answer(QUESTION, GREEDY).text == done.text


def test_cancel_stops_the_answer_at_once(f16_model: ChatModel) -> None:
    cancel = threading.Event()
    seen = []
    for event in f16_model.stream(QUESTION, ChatSettings(max_tokens=200, temperature=0), cancel):
        seen.append(event)
        if isinstance(event, TokenStreamed) and event.index == 3:
            cancel.set()
    done = seen[-1]
    assert isinstance(done, AnswerDone) and done.stop_reason == "cancelled"
    assert done.completion_tokens == 3
    # The model is free again for the next message.
    assert f16_model.answer(QUESTION, GREEDY).completion_tokens == 12


def test_one_answer_at_a_time(f16_model: ChatModel) -> None:
    first = f16_model.stream(QUESTION, GREEDY)
    next(first)
    with pytest.raises(ModelBusyError, match="still answering"):
        next(f16_model.stream(QUESTION, GREEDY))
    first.close()
    assert f16_model.answer(QUESTION, GREEDY).stop_reason == "length"


def test_multi_turn_regenerate_and_a_full_context(f16_model: ChatModel) -> None:
    chat = Conversation("You write titles.")
    first = f16_model.answer(chat.ask("A title about tea?"), GREEDY)
    chat.answered(first.text)
    second = f16_model.answer(chat.ask("Shorter, please."), GREEDY)
    assert second.prompt_tokens > first.prompt_tokens + first.completion_tokens
    chat.answered(second.text)
    sampled = ChatSettings(temperature=1.5, top_p=1.0, max_tokens=12, seed=-1)
    answers = {f16_model.answer(chat.regenerate(), sampled).text for _ in range(3)}
    assert len(answers) > 1, "regenerate samples a new answer each time"
    long_chat = [{"role": "user", "content": "tea and coffee " * 200}]
    with pytest.raises(ContextFullError, match="context holds 512"):
        f16_model.answer(long_chat, GREEDY)
    words = 200
    while len(f16_model.prompt_tokens([{"role": "user", "content": "tea " * words}])) < 505:
        words += 1
    near_full = [{"role": "user", "content": "tea " * words}]
    done = f16_model.answer(near_full, GREEDY)
    assert done.stop_reason == "context" and done.completion_tokens < 12


def test_compare_mode_answers_with_each_model(ggufs: dict[str, Path], f16_model: ChatModel) -> None:
    with ChatModel.load(ggufs["q4_k_m"], ChatSettings(n_ctx=512)) as q4:
        events = list(compare_stream([f16_model, q4], QUESTION, GREEDY))
        sides = [event.side for event in events if isinstance(event, SideEvent)]
        assert sides == sorted(sides) and set(sides) == {0, 1}, "one after the other on a CPU"
        together = list(compare_stream([f16_model, q4], QUESTION, GREEDY, together=True))
        assert {e.side for e in together} == {0, 1}
        answers = compare_answers([f16_model, q4], QUESTION, GREEDY)
    assert all(isinstance(answer, AnswerDone) for answer in answers)


def test_a_malicious_template_in_the_file_runs_nothing(
    ggufs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = "{{ self.__init__.__globals__.__builtins__.__import__('os').system('touch pwned') }}"
    evil = tmp_path / "evil.gguf"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "gguf.scripts.gguf_new_metadata",
            str(ggufs["f16"]),
            str(evil),
            "--chat-template",
            payload,
        ],
        check=True,
        capture_output=True,
    )
    monkeypatch.chdir(tmp_path)
    with ChatModel.load(evil, ChatSettings(n_ctx=256)) as model:
        assert model.info.chat_template == payload
        with pytest.raises(ChatTemplateError, match=r"unsafe operation.*do not trust this GGUF"):
            model.answer(QUESTION, GREEDY)
    assert not (tmp_path / "pwned").exists()
