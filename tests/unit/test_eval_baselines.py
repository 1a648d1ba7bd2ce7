"""The old pipeline's answers: stored, or fresh from Claude, an OpenAI-compatible endpoint or a
shell command; each timed, with its tokens, and cached when it was paid for."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from fake_anthropic import Status, Text, fake_anthropic, sequence

from workbench.evaluate.baselines import (
    ClaudeBaseline,
    CommandBaseline,
    HttpBaseline,
    StoredBaseline,
)
from workbench.evaluate.cache import ResultCache
from workbench.evaluate.evalset import EvalItem
from workbench.evaluate.judge import make_client
from workbench.evaluate.spec import EvalError, EvalSpec

LONG_PROMPT = "You are the SEO writer. Follow the house style. " * 20
ITEM = EvalItem(
    index=0,
    example_id=7,
    messages=[
        {"role": "system", "content": "short old prompt"},
        {"role": "user", "content": "Topic: tea\nKeywords: green tea"},
    ],
    reference="Green tea is calm in a cup.",
)


def spec(**changes: Any) -> EvalSpec:
    base = EvalSpec(model="m.gguf", max_retries=2, request_timeout_s=5.0, max_tokens=64)
    return base.with_changes(**changes)


async def test_stored_answers_have_estimated_tokens_and_no_latency() -> None:
    answer = await StoredBaseline().generate(ITEM)
    assert answer.text == "Green tea is calm in a cup." and answer.estimated
    assert answer.latency_s is None and answer.output_tokens > 0
    missing = await StoredBaseline().generate(EvalItem(1, 8, ITEM.messages, reference=""))
    assert "no stored answer" in missing.error and "claude, http or cmd" in missing.error


async def test_claude_gets_the_original_full_prompt_and_is_paid_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-baseline")
    with fake_anthropic(Text("Green tea, freshly written.")) as api:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", api.base_url)
        settings = spec(baseline="claude", baseline_prompt=LONG_PROMPT, baseline_model="claude-x")
        cache = ResultCache(tmp_path / "cache.db")
        baseline = ClaudeBaseline(make_client(settings), settings, cache)
        first = await baseline.generate(ITEM)
        again = await ClaudeBaseline(make_client(settings), settings, cache).generate(ITEM)
    assert first.text == "Green tea, freshly written." and first.latency_s is not None
    assert first.input_tokens > 0 and not first.estimated
    assert again.cached and again.text == first.text and again.latency_s == first.latency_s
    (request,) = api.messages_requests()
    assert request.body["system"] == LONG_PROMPT and request.body["model"] == "claude-x"
    assert request.body["messages"] == [ITEM.messages[1]]


async def test_an_openai_compatible_endpoint_is_retried_on_429(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLD_PIPELINE_KEY", "sk-old-pipeline")
    script = sequence(Status(429, retry_after=0.05), then=Text("From the old endpoint."))
    with fake_anthropic(script) as api:
        settings = spec(
            baseline="http",
            baseline_url=f"{api.base_url}/v1",
            baseline_api_key_env="OLD_PIPELINE_KEY",
        )
        baseline = HttpBaseline(settings, ResultCache(tmp_path / "cache.db"))
        answer = await baseline.generate(ITEM)
        await baseline.aclose()
    assert answer.text == "From the old endpoint." and answer.output_tokens == 4
    first, second = api.requests
    assert second.headers["authorization"] == "Bearer sk-old-pipeline"
    assert second.body["messages"][0] == {"role": "system", "content": "short old prompt"}
    assert first.path == second.path == "/v1/chat/completions"


async def test_an_endpoint_that_keeps_failing_is_the_items_error(tmp_path: Path) -> None:
    with fake_anthropic(Status(503, retry_after=0.01, message="down for maintenance")) as api:
        settings = spec(baseline="http", baseline_url=f"{api.base_url}/v1", max_retries=1)
        baseline = HttpBaseline(settings, ResultCache(tmp_path / "cache.db"))
        answer = await baseline.generate(ITEM)
        await baseline.aclose()
    assert answer.error.startswith("old pipeline (http): HTTP 503")
    assert "down for maintenance" in answer.error and "(after 1 retries)" in answer.error


async def test_a_shell_command_reads_the_input_and_writes_the_answer() -> None:
    script = (
        "import os, sys; "
        "print(sys.stdin.read().upper() + ' / ' + os.environ['WORKBENCH_SYSTEM_PROMPT'])"
    )
    command = f'{sys.executable} -c "{script}"'
    answer = await CommandBaseline(spec(baseline="cmd", baseline_command=command)).generate(ITEM)
    assert answer.text == "TOPIC: TEA\nKEYWORDS: GREEN TEA / short old prompt"
    assert answer.latency_s is not None and answer.latency_s > 0


async def test_a_failing_or_hanging_command_is_the_items_error() -> None:
    failing = spec(baseline="cmd", baseline_command="echo 'model server refused' >&2; exit 3")
    answer = await CommandBaseline(failing).generate(ITEM)
    assert answer.error.endswith("exited with 3: model server refused")
    hanging = spec(baseline="cmd", baseline_command="sleep 30", request_timeout_s=0.3)
    answer = await CommandBaseline(hanging).generate(ITEM)
    assert answer.error == "old pipeline (cmd): timed out after 0.3 s"


def test_fresh_baselines_need_their_settings() -> None:
    with pytest.raises(EvalError, match=r"eval\.baseline_url"):
        HttpBaseline(spec(baseline="http"), ResultCache.__new__(ResultCache))
    with pytest.raises(EvalError, match=r"eval\.baseline_command"):
        CommandBaseline(spec(baseline="cmd"))
