"""Synthetic examples from Claude: the real `anthropic` SDK against a fake Messages API written
here (it answers the forced `submit_examples` tool call), served on 127.0.0.1."""

from __future__ import annotations

import json
import random
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from workbench.collect.events import JobError, JobFinished, SynthCall, SynthStarted
from workbench.collect.fake_upstream import (
    Failure,
    FakeUpstream,
    anthropic_message,
    serve_fake_upstream,
)
from workbench.collect.synth import SynthSpec, select_seeds, synthesize
from workbench.data.store import ExampleStore, Query
from workbench.workspace import Workspace

WORDS = [
    "alpine",
    "boots",
    "tents",
    "stoves",
    "ropes",
    "maps",
    "lamps",
    "socks",
    "gloves",
    "jackets",
    "trails",
    "lakes",
    "ridges",
    "summits",
    "valleys",
    "forests",
    "rivers",
    "bridges",
    "huts",
    "cabins",
    "meadows",
    "glaciers",
    "canyons",
    "deserts",
    "beaches",
    "islands",
    "harbors",
    "villages",
    "markets",
    "castles",
    "gardens",
    "orchards",
    "vineyards",
    "caves",
]
SYSTEM = "You write one SEO title for the page described."
SEEDS = [
    ("Page: ultralight tents for two people", "Ultralight Two-Person Tents That Pack Small"),
    ("Page: wool socks for winter hiking", "Warm Merino Socks for Winter Hikes"),
]
DUPLICATE = {"input": SEEDS[0][0], "output": SEEDS[0][1]}
NEAR_DUPLICATE = {
    "input": "Page: ultralight tents for two people",
    "output": "Ultralight Two-Person Tents That Pack Small",
}


def invent(batch: int, number: int, topic: str) -> dict[str, str]:
    words = random.Random(batch * 100 + number).sample(WORDS, 6)
    return {
        "input": f"Page: {' '.join(words)} ({topic or 'any'})",
        "output": f"{words[0].title()} and {words[1].title()}: A Guide to {words[2].title()}",
    }


class Writer:
    """The fake's behaviour: structured output (or a forced tool call) with invented examples."""

    def __init__(self, extra: list[dict[str, str]] | None = None) -> None:
        self.extra = extra or []

    def __call__(self, api: str, body: dict[str, Any]) -> dict[str, Any]:
        prompt = body["messages"][0]["content"]
        count = int(re.search(r"Write (\d+) new", prompt).group(1))  # type: ignore[union-attr]
        batch = int(re.search(r"batch (\d+)", prompt).group(1))  # type: ignore[union-attr]
        topic = m.group(1) if (m := re.search(r"Topic of this batch: (.+)", prompt)) else ""
        examples = [invent(batch, i, topic) for i in range(count - len(self.extra))]
        answer = {"examples": [*self.extra, *examples]}
        if "tool_choice" in body:
            assert body["tool_choice"] == {"type": "tool", "name": "submit_examples"}
            block = {"type": "tool_use", "id": "toolu_1", "name": "submit_examples"}
            reply = anthropic_message(body["model"], "", 1000, content=[{**block, "input": answer}])
        else:
            schema = body["output_config"]["format"]
            assert schema["type"] == "json_schema" and "examples" in schema["schema"]["required"]
            reply = anthropic_message(body["model"], json.dumps(answer), 1000)
        reply["usage"]["output_tokens"] = 500
        return reply


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeUpstream]:
    with serve_fake_upstream(FakeUpstream(reply=Writer()), lifetime_s=60) as upstream:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-key")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", upstream.url)
        yield upstream


@pytest.fixture
def store(workspace: Workspace) -> Iterator[ExampleStore]:
    with ExampleStore(workspace.db_path) as opened:
        records = [
            {"messages": [{"role": "system", "content": SYSTEM}, *chat(question, answer)]}
            for question, answer in SEEDS
        ]
        opened.add_examples(records, tags=["seed"])
        yield opened


def chat(question: str, answer: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


def spec_for(store: ExampleStore, **changes: Any) -> SynthSpec:
    seeds = [example.messages for example in select_seeds(store)]
    values: dict[str, Any] = {"seeds": seeds, "count": 6, "per_call": 3, "job_id": "job-1"}
    values.update(changes)
    return SynthSpec(**values)


def run(spec: SynthSpec, store: ExampleStore, job_dir: Path, stop_after: int = 0) -> list:
    cancel = threading.Event()
    events = []
    for event in synthesize(spec, store, job_dir, cancel):
        events.append(event)
        if stop_after and sum(isinstance(e, SynthCall) for e in events) >= stop_after:
            cancel.set()
    return events


@pytest.mark.parametrize("mode", ["schema", "tool"])
def test_candidates_are_generated_queued_for_review_and_costed(
    fake: FakeUpstream, store: ExampleStore, tmp_path: Path, mode: str
) -> None:
    spec = spec_for(
        store, topics=["winter", "summer"], guidance="Keep titles under 60 chars.", output_mode=mode
    )
    events = run(spec, store, tmp_path / "job")
    assert isinstance(events[0], SynthStarted) and events[0].seeds == 2
    calls = [e for e in events if isinstance(e, SynthCall)]
    assert [(c.added, c.cached) for c in calls] == [(3, False), (3, False)]
    # claude-sonnet-5-5: 1000 input tokens at $2/M + 500 output tokens at $10/M per call
    assert calls[-1].total_cost_usd == pytest.approx(2 * 0.007)
    finished = events[-1]
    assert isinstance(finished, JobFinished) and finished.state == "finished"
    assert finished.totals["added"] == 6

    ids = store.ids(Query(tag="synthetic", flag="needs-review"))
    assert len(ids) == 6
    example = store.get(ids[0])
    assert example.messages[0] == {"role": "system", "content": SYSTEM}
    assert "(winter)" in example.messages[1]["content"]
    assert set(example.tags) == {"synthetic", "model:claude-sonnet-5-5", "topic:winter"}
    assert example.extra["synth"]["cost_usd"] == pytest.approx(0.007 / 3, abs=1e-6)

    request = fake.requests[0]
    body = request.body.decode()
    assert SEEDS[0][1] in body and "Keep titles under 60 chars." in body
    credentials = " ".join(
        v for k, v in request.headers if k.lower() in ("x-api-key", "authorization")
    )
    assert "sk-ant-test-key" in credentials


def test_duplicates_of_existing_examples_are_not_queued(
    monkeypatch: pytest.MonkeyPatch, store: ExampleStore, tmp_path: Path
) -> None:
    writer = Writer(extra=[DUPLICATE, NEAR_DUPLICATE, {"input": "", "output": "x"}])
    with serve_fake_upstream(FakeUpstream(reply=writer), lifetime_s=60) as upstream:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", upstream.url)
        events = run(spec_for(store, count=2, per_call=5), store, tmp_path / "job")
    call = next(e for e in events if isinstance(e, SynthCall))
    assert (call.generated, call.added, call.duplicates, call.invalid) == (5, 2, 2, 1)
    assert store.count(Query(tag="synthetic")) == 2


def test_a_resumed_job_pays_only_for_the_calls_it_had_not_made(
    fake: FakeUpstream, store: ExampleStore, tmp_path: Path
) -> None:
    spec = spec_for(store, count=9, per_call=3)
    first = run(spec, store, tmp_path / "job", stop_after=1)
    assert first[-1].state == "stopped" and len(fake.requests) == 1

    second = run(spec, store, tmp_path / "job")
    calls = [e for e in second if isinstance(e, SynthCall)]
    assert [(c.cached, c.cost_usd > 0) for c in calls] == [
        (True, False),
        (False, True),
        (False, True),
    ]
    assert len(fake.requests) == 3
    assert second[-1].state == "finished" and second[-1].totals["job_cost_usd"] == pytest.approx(
        3 * 0.007
    )
    assert store.count(Query(tag="synthetic")) == 9

    third = run(spec, store, tmp_path / "job")
    assert len(fake.requests) == 3 and third[-1].totals["cost_usd"] == 0
    assert store.count(Query(tag="synthetic")) == 9


def test_the_budget_stops_the_job_resumably(
    fake: FakeUpstream, store: ExampleStore, tmp_path: Path
) -> None:
    events = run(spec_for(store, count=30, max_cost_usd=0.012), store, tmp_path / "job")
    assert len(fake.requests) == 2
    assert events[-1].state == "stopped" and "budget" in events[-1].reason


def test_a_refused_key_fails_with_what_to_do(
    fake: FakeUpstream, store: ExampleStore, tmp_path: Path
) -> None:
    refusal = (
        b'{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}'
    )
    fake.failures.append(Failure(401, refusal, (("content-type", "application/json"),)))
    events = run(spec_for(store), store, tmp_path / "job")
    errors = [e.message for e in events if isinstance(e, JobError)]
    assert errors == ["the API key was refused: check ANTHROPIC_API_KEY"]
    assert events[-1].state == "failed"
    assert store.count(Query(tag="synthetic")) == 0


def test_no_key_no_call(
    monkeypatch: pytest.MonkeyPatch, fake: FakeUpstream, store: ExampleStore, tmp_path: Path
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    events = run(spec_for(store), store, tmp_path / "job")
    assert "set ANTHROPIC_API_KEY" in events[0].message
    assert fake.requests == []
