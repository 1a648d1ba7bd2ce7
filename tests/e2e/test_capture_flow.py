"""The whole collect flow from the command line: `workbench capture` as a detached job between
a caller and a fake provider, then `workbench review`; `workbench synth` against a fake Messages
API. The jobs are real detached processes; every server listens on 127.0.0.1 only and stops by
itself. (The commands run in this process, to keep the test quick; the jobs do not.)"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx
import pytest

from workbench.cli import main
from workbench.collect.fake_upstream import FakeUpstream, anthropic_message, serve_fake_upstream
from workbench.data.store import ExampleStore
from workbench.workspace import Workspace

KEY = "sk-ant-api03-e2e-CALLER-KEY-never-stored"
PROMPT = {"role": "user", "content": "Write a title for a page about trail running shoes"}


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def workbench(workspace: Workspace, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Run `workbench -w WORKSPACE ARGS...`; its exit code and output."""

    def run(*args: str) -> Result:
        capsys.readouterr()
        code = main(["-w", str(workspace.root), *args])
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    with serve_fake_upstream(lifetime_s=120) as upstream:
        yield upstream


@pytest.mark.slow
def test_capture_review_and_no_key_on_disk(
    workspace: Workspace, fake: FakeUpstream, workbench: Any
) -> None:
    started = workbench("capture", "--port", "0", "--upstream", fake.url, "--tag", "shop", "--json")
    assert started.returncode == 0, started.stderr
    url = json.loads(started.stdout)["url"]
    try:
        client = anthropic.Anthropic(api_key=KEY, base_url=url)
        reply = client.messages.create(model="claude-x", max_tokens=20, messages=[PROMPT])
        assert reply.content[0].text == "Echo: " + PROMPT["content"]  # type: ignore[union-attr]
        with client.messages.stream(model="claude-x", max_tokens=20, messages=[PROMPT]) as s:
            assert s.get_final_text() == "Echo: " + PROMPT["content"]
        answer = httpx.post(
            url + "/v1/chat/completions",
            json={"model": "gpt-x", "messages": [PROMPT]},
            headers={"Authorization": f"Bearer {KEY}", "X-Workbench-Tag": "blog"},
        )
        assert answer.status_code == 200
        listed = json.loads(workbench("capture", "--list", "--json").stdout)
        assert [job["state"] for job in listed] == ["running"]
    finally:
        stopped = workbench("capture", "--stop")
    assert "stopped" in stopped.stdout

    queue = json.loads(workbench("review", "list", "--json").stdout)
    assert queue["counts"] == {"captured": 3, "synthetic": 0}
    tags = sorted(tuple(c["tags"]) for c in queue["candidates"])
    assert tags == [
        ("blog", "captured", "model:gpt-x"),
        ("captured", "model:claude-x", "shop"),
        ("captured", "model:claude-x", "shop"),
    ]
    first, second, _ = (c["id"] for c in queue["candidates"])
    assert workbench("review", "accept", str(first)).returncode == 0
    assert workbench("review", "reject", str(second)).returncode == 0
    with ExampleStore(workspace.db_path) as store:
        assert store.get(first).flag == "ok" and store.get(second).deleted
        assert store.get(first).messages[-1]["content"] == "Echo: " + PROMPT["content"]

    events = [
        json.loads(line)
        for line in next(workspace.root.glob("captures/*/events.jsonl")).read_text().splitlines()
    ]
    assert events[0]["type"] == "listening" and events[-1]["type"] == "finished"
    assert events[-1]["totals"]["stored"] == 3
    for path in workspace.root.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


@pytest.mark.slow
def test_a_port_in_use_is_one_line_that_says_what_to_do(workbench: Any) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = workbench("capture", "--port", str(port))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"workbench: port {port} is in use: pass --port with a free one (or stop the other)"
    )


def writer(api: str, body: dict[str, Any]) -> dict[str, Any]:
    """A fake Claude that answers the structured-output request with two new examples."""
    batch = body["messages"][0]["content"].split("(batch ")[1].split(")")[0]
    examples = [
        {"input": f"Page: {kind} for batch {batch}", "output": f"The Best {kind.title()}"}
        for kind in (f"tents number {batch}", f"stoves model {batch}")
    ]
    return anthropic_message(body["model"], json.dumps({"examples": examples}), 800)


@pytest.mark.slow
def test_synth_generates_for_review_and_a_resume_pays_nothing(
    workspace: Workspace, workbench: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ExampleStore(workspace.db_path) as store:
        chat = [{"role": "user", "content": "Page: rain jackets"}]
        store.add_examples(
            [{"messages": [*chat, {"role": "assistant", "content": "Rain Jackets That Breathe"}]}],
            tags=["seed"],
        )
    assert "set ANTHROPIC_API_KEY" in workbench("synth").stderr

    with serve_fake_upstream(FakeUpstream(reply=writer), lifetime_s=120) as fake:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-e2e")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.url)
        result = workbench("synth", "--count", "4", "--per-call", "2", "--wait")
        assert result.returncode == 0, result.stderr + result.stdout
        assert result.stdout.strip().splitlines()[-1] == "finished: 4 examples to review"
        assert len(fake.requests) == 2
        job_id = json.loads(workbench("synth", "--list", "--json").stdout)[0]["id"]
        again = workbench("synth", "--resume", job_id, "--wait")
        assert again.returncode == 0, again.stderr
        assert "(cached)" in again.stdout and len(fake.requests) == 2

    queue = json.loads(workbench("review", "list", "--json").stdout)
    assert queue["counts"] == {"captured": 0, "synthetic": 4}
    assert all(c["model"] == "claude-sonnet-5-5" and c["cost_usd"] > 0 for c in queue["candidates"])
    assert "sk-ant-e2e" not in (workspace.root / "synths" / job_id / "job.json").read_text()
