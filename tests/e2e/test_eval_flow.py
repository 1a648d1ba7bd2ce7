"""The eval as a user runs it: `workbench eval` on the sample workspace, a detached job judged
through the real SDK against the fake Messages API; report, repeat, stop and resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from fake_anthropic import FakeRequest, Reply, Slow, Verdict, demo_gguf, fake_anthropic

from workbench.data.store import ExampleStore
from workbench.jobs import read_events, read_status
from workbench.workspace import Workspace, open_workspace

pytestmark = pytest.mark.slow
KEY = "sk-ant-e2e-never-on-disk-91b7"
SUMMARY_KEYS = {
    "wins",
    "ties",
    "losses",
    "win_rate",
    "ci_low",
    "ci_high",
    "disagreement_rate",
    "judge_input_tokens",
    "judge_output_tokens",
    "errors",
}


@pytest.fixture
def ws(sample_workspace: Path) -> Workspace:
    """The sample workspace with its pairs imported: 100 to train on, 12 held out for tests."""
    records = [
        json.loads(line)
        for line in (sample_workspace / "imports" / "seo_pairs.jsonl").read_text().splitlines()
    ]
    workspace = open_workspace(sample_workspace).set_values(
        {"eval.max_tokens": 12, "eval.threads": 1, "eval.concurrency": 4}
    )
    with ExampleStore(workspace.db_path) as store:
        store.add_examples(records[:100], split="train")
        store.add_examples(records[100:112], split="test")
    return workspace


def judge_for(ws: Workspace) -> Callable[[FakeRequest], Reply]:
    with ExampleStore(ws.db_path) as store:
        stored = {e.messages[-1]["content"] for e in store.iter_examples(split="test")}

    def script(request: FakeRequest) -> Reply:
        """The old pipeline wins, except on the half marathon where the fine-tuned model does."""
        old_in_a = request.response_a in stored
        fine_tuned_wins = "half marathon" in request.input_text
        return Verdict("A" if old_in_a != fine_tuned_wins else "B", "scripted")

    return script


def cli(ws: Workspace, base_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ANTHROPIC_API_KEY": KEY, "ANTHROPIC_BASE_URL": base_url}
    return subprocess.run(
        [sys.executable, "-m", "workbench.cli", "-w", str(ws.root), "eval", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        check=False,
    )


def wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_eval_from_the_command_line(
    ws: Workspace, tmp_path_factory: pytest.TempPathFactory, demo_model_dir: Path
) -> None:
    gguf = str(demo_gguf(tmp_path_factory, demo_model_dir))
    script = judge_for(ws)
    with fake_anthropic(script) as api:
        first = cli(ws, api.base_url, "--model", gguf, "--limit", "6", "--json")
        assert first.returncode == 0, first.stderr
        summary = json.loads(first.stdout)
        assert set(summary) >= SUMMARY_KEYS
        assert (summary["wins"], summary["ties"], summary["losses"]) == (1, 0, 5)
        assert summary["errors"] == 0 and summary["judge_calls"] == api.judge_calls == 12
        assert summary["judge_input_tokens"] > 0 and summary["ci_low"] <= summary["win_rate"]
        assert "6/6 done, W/T/L 1/0/5" in first.stderr
        body = api.messages_requests()[0].body
        # The sample's judge (a 5.5 model) takes structured JSON output; older ones a forced tool.
        assert body["output_config"]["format"]["type"] == "json_schema"
        assert "tool_choice" not in body

        report = cli(ws, api.base_url, "report", summary["id"][:15], "--json")
        assert report.returncode == 0, report.stderr
        full = json.loads(report.stdout)
        assert full["wins"] == 1 and [row["requests"] for row in full["costs"]] == [6, 6]
        markdown = ws.root / "report.md"
        exported = cli(ws, api.base_url, "report", summary["id"], "--markdown", str(markdown))
        assert exported.returncode == 0, exported.stderr
        assert "## Cost and latency per request" in markdown.read_text()

        again = cli(ws, api.base_url, "--model", gguf, "--limit", "6", "--json")
        assert again.returncode == 0, again.stderr
        repeat = json.loads(again.stdout)
        assert repeat["judge_calls"] == 0 and repeat["cached_judgments"] == 12
        assert api.judge_calls == 12  # a second run pays for nothing
        assert (repeat["wins"], repeat["losses"]) == (1, 5)

        listed = json.loads(cli(ws, api.base_url, "list", "--json").stdout)
        assert [e["id"] for e in listed] == [summary["id"], repeat["id"]]

    files = [p for p in ws.root.rglob("*") if p.is_file()]
    assert any(p.name == "output.log" for p in files)
    assert not [p for p in files if KEY.encode() in p.read_bytes()]


def test_a_detached_eval_stops_and_resumes(
    ws: Workspace, tmp_path_factory: pytest.TempPathFactory, demo_model_dir: Path
) -> None:
    gguf = str(demo_gguf(tmp_path_factory, demo_model_dir))
    judge = judge_for(ws)
    stalled = {"on": True}

    def script(request: FakeRequest) -> Reply:
        """After the first item the judge stalls, until the eval has been stopped."""
        if stalled["on"] and request.number > 2:
            return Slow(60.0, judge(request))
        return judge(request)

    with fake_anthropic(script) as api:
        args = ("--model", gguf, "--limit", "4", "--concurrency", "1", "--detach", "--json")
        started = cli(ws, api.base_url, *args)
        assert started.returncode == 0, started.stderr
        eval_id = json.loads(started.stdout)["id"]
        eval_dir = ws.evals_dir / eval_id
        wait_for(lambda: any(e["type"] == "item" for e in read_events(eval_dir)))
        stop = cli(ws, api.base_url, "stop", eval_id)
        assert stop.returncode == 0, stop.stdout + stop.stderr
        wait_for(lambda: getattr(read_status(eval_dir), "state", "") == "stopped")
        assert [e["type"] for e in read_events(eval_dir)].count("item") == 1

        stalled["on"] = False
        resumed = cli(ws, api.base_url, "resume", eval_id, "--json")
        assert resumed.returncode == 0, resumed.stderr
        summary = json.loads(resumed.stdout)
    assert summary["n"] == 4 and summary["state"] == "finished"
    asked = [(r.response_a, r.response_b, r.input_text) for r in api.messages_requests()]
    assert len(asked) == len(set(asked)) + 1  # only the call cut off by the stop is asked again
    assert summary["judge_calls"] == 8
    assert KEY.encode() not in (eval_dir / "output.log").read_bytes()
