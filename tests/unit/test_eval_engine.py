"""The eval job end to end in-process: real GGUF answers (llama.cpp), stored old-pipeline
answers, the real SDK against the fake Messages API, real files. Resume, errors, cache, batches.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from fake_anthropic import (
    FakeRequest,
    Reply,
    Slow,
    Status,
    Verdict,
    demo_gguf,
    fake_anthropic,
)

from workbench.data.store import ExampleStore
from workbench.evaluate.engine import run_eval
from workbench.evaluate.events import (
    BatchUpdate,
    EvalEvent,
    Finished,
    ItemJudged,
    Progress,
    Started,
)
from workbench.evaluate.launch import create_eval, send_to_data
from workbench.evaluate.report import (
    list_evals,
    load_report,
    report_markdown,
    report_records,
    write_jsonl,
    write_markdown,
)
from workbench.evaluate.spec import EvalError
from workbench.workspace import Workspace, init_workspace

pytestmark = pytest.mark.slow
KEY = "sk-ant-engine-test-5f3c1d"
PAIRS = Path(__file__).resolve().parents[2] / "sample_data" / "imports" / "seo_pairs.jsonl"


@pytest.fixture
def gguf(tmp_path_factory: pytest.TempPathFactory, demo_model_dir: Path) -> Path:
    return demo_gguf(tmp_path_factory, demo_model_dir)


def sample_workspace_at(root: Path) -> Workspace:
    """A workspace with 10 training and 6 test examples of the sample task."""
    workspace = init_workspace(root)
    workspace = workspace.set_values(
        {"eval.max_tokens": 12, "eval.concurrency": 4, "eval.threads": 1}
    )
    records = [json.loads(line) for line in PAIRS.read_text().splitlines()]
    with ExampleStore(workspace.db_path) as store:
        store.add_examples(records[:10], split="train")
        store.add_examples(records[100:106], split="test")
    return workspace


def stored_answers(ws: Workspace) -> set[str]:
    """The old pipeline's stored answers of the test split."""
    with ExampleStore(ws.db_path) as store:
        return {e.messages[-1]["content"] for e in store.iter_examples(split="test")}


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    return sample_workspace_at(tmp_path / "ws")


@pytest.fixture
def references(ws: Workspace) -> set[str]:
    return stored_answers(ws)


@dataclass(frozen=True)
class Done:
    """An eval run to its end, shared by the tests that only read it."""

    ws: Workspace
    eval_dir: Path
    events: list[EvalEvent]
    judge_calls: int


@pytest.fixture(scope="module")
def done(tmp_path_factory: pytest.TempPathFactory, demo_model_dir: Path) -> Done:
    gguf = demo_gguf(tmp_path_factory, demo_model_dir)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ANTHROPIC_API_KEY", KEY)
        ws = sample_workspace_at(tmp_path_factory.mktemp("done") / "ws")
        with fake_anthropic(judged_like(mixed, stored_answers(ws))) as api:
            patch.setenv("ANTHROPIC_BASE_URL", api.base_url)
            eval_dir = create_eval(ws, gguf)
            events = run(eval_dir)
        return Done(ws, eval_dir, events, api.judge_calls)


def run(eval_dir: Path, cancel: threading.Event | None = None) -> list[EvalEvent]:
    return list(run_eval(eval_dir, cancel or threading.Event()))


def judged_like(plan: Callable[[str], str], references: set[str]) -> Callable[[FakeRequest], Reply]:
    """A judge that, per input, prefers the old pipeline ("baseline"), the fine-tuned model
    ("candidate"), or always slot A ("position")."""

    def script(request: FakeRequest) -> Reply:
        choice = plan(request.input_text)
        if choice == "position":
            return Verdict("A", "A reads better")
        baseline_in_a = request.response_a in references
        wants_a = baseline_in_a if choice == "baseline" else not baseline_in_a
        return Verdict("A" if wants_a else "B", f"prefers the {choice}")

    return script


def mixed(text: str) -> str:
    """Half marathon: a win; strength training: position bias; the rest: losses."""
    if "half marathon" in text:
        return "candidate"
    if "strength training" in text:
        return "position"
    return "baseline"


def test_an_eval_judges_every_pair_in_both_orders_and_reports_it(done: Done) -> None:
    events, eval_dir, ws, references = done.events, done.eval_dir, done.ws, stored_answers(done.ws)
    final = events[-1]
    assert isinstance(final, Finished) and final.state == "finished"
    assert final.reason == "W/T/L 1/1/4"
    judged = [e for e in events if isinstance(e, ItemJudged)]
    assert sorted(e.index for e in judged) == list(range(6))
    assert [e.disagreed for e in judged if e.outcome == "tie"] == [True]
    progress = [e for e in events if isinstance(e, Progress)][-1]
    assert (progress.done, progress.wins, progress.ties, progress.losses) == (6, 1, 1, 4)
    assert progress.judge_calls == done.judge_calls == 12
    assert progress.judge_cost_usd is not None and progress.judge_cost_usd > 0

    report = load_report(eval_dir, ws.config.eval)
    s = report.summary
    assert (s.wins, s.ties, s.losses, s.errors, s.n) == (1, 1, 4, 0, 6)
    assert s.win_rate == pytest.approx(1.5 / 6)
    assert s.ci_low is not None and s.ci_high is not None and s.ci_low <= 0.25 <= s.ci_high
    assert s.disagreement_rate == pytest.approx(1 / 6)
    assert s.judge_input_tokens > 0 and s.judge_output_tokens > 0
    assert s.baseline_mean_words is not None and s.baseline_mean_words > 150
    loss = report.losses()[0]
    assert loss.baseline_text in references and loss.candidate_text
    assert loss.result is not None and loss.result.cb is not None
    assert loss.result.cb.reason == "prefers the baseline"
    assert "Keywords:" in loss.item.input_text and loss.item.messages[0]["role"] == "system"
    old, new = report.costs
    assert old.cost_per_request_usd is not None and new.latency_p50_s is not None
    assert "## Cost and latency per request" in report_markdown(report)
    records = report_records(report)
    assert records[0]["type"] == "summary" and records[0]["wins"] == 1
    assert len(records) == 7 and records[1]["verdict_candidate_first"]["winner"] in "AB"


def test_a_stopped_eval_resumes_without_paying_for_any_judgment_twice(
    ws: Workspace, gguf: Path, references: set[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cancel = threading.Event()
    judge = judged_like(mixed, references)

    def script(request: FakeRequest) -> Reply:
        if request.number == 5 and not cancel.is_set():
            cancel.set()  # the user stops the eval while this request is in flight
            return Slow(0.5, Status(500))
        return judge(request)

    with fake_anthropic(script) as api:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", api.base_url)
        eval_dir = create_eval(ws, gguf, concurrency=1)
        first = run(eval_dir, cancel)
        assert isinstance(first[-1], Finished) and first[-1].state == "stopped"
        assert 0 < first[-1].done < 6
        second = run(eval_dir)
    assert isinstance(second[-1], Finished) and second[-1].state == "finished"
    assert isinstance(second[0], Started) and second[0].todo == 6 - first[-1].done
    answered = [
        (r.response_a, r.response_b, r.input_text) for r in api.messages_requests() if r.number != 5
    ]
    assert len(answered) == len(set(answered)) == 12  # each judgment paid exactly once
    assert load_report(eval_dir).summary.wins == 1
    lines = (eval_dir / "generations.jsonl").read_text().splitlines()
    assert len(lines) == 6  # no answer generated twice either


def test_errors_are_shown_on_their_item_and_retried_on_resume(
    ws: Workspace, gguf: Path, references: set[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    judge = judged_like(mixed, references)
    broken = {"on": True}

    def script(request: FakeRequest) -> Reply:
        if broken["on"] and "backyard wedding" in request.input_text:
            return Status(500, retry_after=0.01, message="upstream overloaded")
        return judge(request)

    with fake_anthropic(script) as api:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", api.base_url)
        ws = ws.set_values({"eval.max_retries": 1})
        eval_dir = create_eval(ws, gguf)
        events = run(eval_dir)
        failed = [e for e in events if isinstance(e, ItemJudged) and e.error]
        assert len(failed) == 1 and "HTTP 500: upstream overloaded" in failed[0].error
        assert failed[0].preview.startswith("Topic: Planning a small backyard wedding")
        final = events[-1]
        assert isinstance(final, Finished) and final.state == "finished"
        assert "1 item(s) failed" in final.reason
        report = load_report(eval_dir)
        assert report.summary.errors == 1 and report.summary.n == 5
        assert report.failed()[0].item.preview == failed[0].preview
        assert "## Errors" in report_markdown(report)

        calls_before = api.judge_calls
        broken["on"] = False
        run(eval_dir)
    assert api.judge_calls - calls_before == 2  # only the failed item's two orders
    assert load_report(eval_dir).summary.errors == 0


def test_a_repeated_eval_makes_no_judge_calls(
    done: Done, gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    with fake_anthropic(Status(500, message="a repeated eval must not call the judge")) as api:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", api.base_url)
        again = create_eval(done.ws, gguf)
        events = run(again)
    assert api.calls == 0
    progress = [e for e in events if isinstance(e, Progress)][-1]
    assert (progress.judge_calls, progress.cached_judgments) == (0, 12)
    assert (progress.wins, progress.ties, progress.losses) == (1, 1, 4)
    summaries = {s.id: s for s in list_evals(done.ws.evals_dir)}
    assert summaries[again.name].judge_cost_usd == 0
    assert summaries[done.eval_dir.name].judge_calls == 12


def test_batch_mode_judges_through_one_message_batch_and_survives_a_stop(
    ws: Workspace, gguf: Path, references: set[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cancel = threading.Event()
    with fake_anthropic(judged_like(mixed, references), batch_polls=3) as api:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", api.base_url)
        eval_dir = create_eval(ws, gguf, batch=True, batch_poll_s=0.05)
        first = []
        for event in run_eval(eval_dir, cancel):
            first.append(event)
            if isinstance(event, BatchUpdate):
                cancel.set()  # stopped while the batch is processing
        assert isinstance(first[-1], Finished) and first[-1].state == "stopped"
        assert (eval_dir / "batch.json").is_file()
        second = run(eval_dir)
    assert isinstance(second[-1], Finished) and second[-1].state == "finished"
    assert second[-1].reason == "W/T/L 1/1/4"
    assert api.paths().count("POST /v1/messages/batches") == 1  # followed, not resubmitted
    assert api.calls == 0 and api.batch_items == 12
    assert [e.status for e in second if isinstance(e, BatchUpdate)][-1] == "ended"
    assert not (eval_dir / "batch.json").exists()
    summary = load_report(eval_dir).summary
    assert summary.judge_cost_usd is not None and summary.judge_calls == 12


def test_identical_answers_are_a_tie_without_a_judge_call(
    ws: Workspace, gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workbench.evaluate.generate import LlamaCppGenerator

    record = json.loads(PAIRS.read_text().splitlines()[110])
    model = LlamaCppGenerator(
        gguf, max_tokens=12, n_ctx=ws.config.chat.n_ctx, repeat_penalty=1.1, threads=1
    )
    same = model.generate(record["messages"][:-1]).text
    model.close()
    with ExampleStore(ws.db_path) as store:
        store.set_split(store.ids(), "train")
        record["messages"][-1]["content"] = same
        store.add_examples([record], split="test")
    with fake_anthropic(Verdict("A")) as api:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", api.base_url)
        eval_dir = create_eval(ws, gguf)
        events = run(eval_dir)
    (item,) = [e for e in events if isinstance(e, ItemJudged)]
    assert (item.outcome, item.identical) == ("tie", True)
    assert api.calls == 0
    summary = load_report(eval_dir).summary
    assert (summary.identical, summary.disagreement_rate) == (1, None)


def test_a_refused_key_fails_the_eval_with_what_to_check(
    ws: Workspace, gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with fake_anthropic(Status(401, message="invalid x-api-key")) as api:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", api.base_url)
        events = run(create_eval(ws, gguf))
    final = events[-1]
    assert isinstance(final, Finished) and final.state == "failed"
    assert "401" in final.reason and "check ANTHROPIC_API_KEY" in final.reason
    assert api.calls <= ws.config.eval.concurrency  # the rest were cancelled, not paid for


def test_without_a_key_no_eval_is_created(
    ws: Workspace, gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    with pytest.raises(EvalError, match="set ANTHROPIC_API_KEY"):
        create_eval(ws, gguf)
    assert list(ws.evals_dir.iterdir()) == []


def test_a_loss_becomes_a_training_example(done: Done) -> None:
    ws, eval_dir = done.ws, done.eval_dir
    loss = load_report(eval_dir).losses()[0]
    as_is = send_to_data(ws, eval_dir, loss.item.index)
    edited = send_to_data(ws, eval_dir, loss.item.index, answer="A better, edited answer.")
    with ExampleStore(ws.db_path) as store:
        first, second = store.get(as_is), store.get(edited)
    assert first.split == "train" and "from-eval" in first.tags
    assert first.messages[:-1] == loss.item.messages
    assert first.messages[-1] == {"role": "assistant", "content": loss.baseline_text}
    assert second.messages[-1]["content"] == "A better, edited answer."
    assert first.source == f"eval:{eval_dir.name}:{loss.item.index}"


def test_the_api_key_is_never_written_to_the_workspace(done: Done) -> None:
    report = load_report(done.eval_dir)
    write_markdown(report, done.eval_dir / "report.md")
    write_jsonl(report, done.eval_dir / "report.jsonl")
    files = [p for p in done.ws.root.rglob("*") if p.is_file()]
    assert len(files) > 8
    assert not [p for p in files if KEY.encode() in p.read_bytes()]
