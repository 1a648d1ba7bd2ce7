"""Validation: one fixture file per rule, the sample workspace's planted flaws, huge lines."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from workbench.config import WorkbenchConfig
from workbench.data.validate import (
    Finding,
    ValidateFinished,
    check_record,
    make_validator,
    validate_files,
)

FIXTURES = Path(__file__).parent / "fixtures" / "data"
SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "imports" / "seo_pairs.jsonl"


def run(
    paths: list[Path], config: WorkbenchConfig | None = None
) -> tuple[list[Finding], ValidateFinished]:
    findings: list[Finding] = []
    finished = None
    for event in validate_files(paths, config or WorkbenchConfig(), threading.Event()):
        if isinstance(event, ValidateFinished):
            finished = event
        else:
            findings += event.findings
    assert finished is not None
    return findings, finished


def found(findings: list[Finding]) -> set[tuple[int, str, str]]:
    """(line, severity, code) of every finding."""
    return {(int(f.where.rsplit(":", 1)[1]), f.problem.severity, f.problem.code) for f in findings}


RULES = [
    ("not-json", {(2, "error", "not-json")}),
    ("not-object", {(2, "error", "not-object"), (3, "error", "not-object")}),
    ("invalid-utf8", {(2, "error", "invalid-utf8")}),
    (
        "no-messages",
        {
            (1, "error", "no-messages"),
            (2, "error", "no-messages"),
            (2, "warning", "unknown-key"),
            (3, "error", "no-messages"),
        },
    ),
    ("bad-message", {(1, "error", "bad-message")}),
    ("unknown-role", {(1, "error", "unknown-role")}),
    ("missing-content", {(1, "error", "missing-content")}),
    (
        "non-string-content",
        {(1, "error", "non-string-content"), (2, "error", "non-string-content")},
    ),
    ("empty-content", {(1, "error", "empty-content"), (2, "error", "empty-content")}),
    ("no-assistant", {(1, "error", "no-assistant")}),
    ("last-not-assistant", {(1, "error", "last-not-assistant")}),
    ("unknown-key", {(1, "warning", "unknown-key"), (2, "warning", "unknown-key")}),
    ("too-long", {(2, "warning", "too-long")}),
    ("duplicate", {(3, "warning", "duplicate")}),
    ("near-duplicate", {(3, "warning", "near-duplicate")}),
    ("truncated", {(1, "warning", "truncated")}),
    ("language", {(1, "warning", "language")}),
]


@pytest.mark.parametrize(("rule", "expected"), RULES, ids=[rule for rule, _ in RULES])
def test_each_rule_is_reported_at_its_line(rule: str, expected: set[tuple[int, str, str]]) -> None:
    findings, finished = run([FIXTURES / "invalid" / f"{rule}.jsonl"])
    assert found(findings) == expected
    assert finished.errors == sum(1 for _, severity, _ in expected if severity == "error")
    for finding in findings:
        assert finding.line().startswith(str(FIXTURES / "invalid" / f"{rule}.jsonl") + ":")


def test_messages_say_what_is_wrong() -> None:
    findings, _ = run(
        [FIXTURES / "invalid" / "too-long.jsonl", FIXTURES / "invalid" / "duplicate.jsonl"]
    )
    messages = {f.problem.code: f.problem.message for f in findings}
    assert "longer than train.max_seq_length 2,048" in messages["too-long"]
    assert "tokens" in messages["too-long"]
    assert (
        messages["duplicate"] == f"exact duplicate of {FIXTURES / 'invalid' / 'duplicate.jsonl'}:1"
    )


def test_bom_crlf_blank_lines_and_tool_calls_are_fine() -> None:
    findings, finished = run([FIXTURES / "accepted.jsonl"])
    assert findings == [] and finished.checked == 3


def test_sample_flaws_are_found() -> None:
    """FLAWS.md: the planted problems, and nothing else, at the default max length."""
    findings, finished = run([SAMPLE])
    lines: dict[str, set[int]] = {}
    for line, _, code in found(findings):
        lines.setdefault(code, set()).add(line)
    assert lines == {
        "duplicate": {56, 92, 99},
        "near-duplicate": {60, 64, 113},
        "empty-content": {75},
        "truncated": {31, 97},
        "language": {79},
        "too-long": {95},
    }
    assert finished.errors == 1 and finished.checked == 121
    by_line = {int(f.where.rsplit(":", 1)[1]): f for f in findings}
    assert "longer than train.max_seq_length 2,048" in by_line[95].problem.message
    assert "German" in by_line[79].problem.message and "English" in by_line[79].problem.message
    assert by_line[31].problem.message.endswith("...is why most gardeners recommend'")


def test_sample_config_flags_line_95_as_by_far_the_longest() -> None:
    config = WorkbenchConfig.model_validate({"train": {"max_seq_length": 1024}})
    findings, _ = run([SAMPLE], config)
    too_long = {
        int(f.where.rsplit(":", 1)[1]): f.problem.message
        for f in findings
        if f.problem.code == "too-long"
    }
    assert 95 in too_long and "1,024" in too_long[95]
    count = int(too_long[95].split()[1].replace(",", ""))
    assert count > 3000


def test_validator_uses_the_configured_limit() -> None:
    record = {
        "messages": [
            {"role": "user", "content": "x" * 400},
            {"role": "assistant", "content": "ok."},
        ]
    }
    small = WorkbenchConfig.model_validate({"train": {"max_seq_length": 64}})
    assert [p.code for p in make_validator(small)(record)] == ["too-long"]
    assert make_validator(WorkbenchConfig())(record) == []


def test_tool_call_turns_need_no_content() -> None:
    record = json.loads(
        (FIXTURES / "accepted.jsonl").read_bytes().decode("utf-8-sig").splitlines()[2]
    )
    assert check_record(record) == []
    record["messages"][2]["tool_calls"] = []
    assert [p.code for p in check_record(record)] == ["non-string-content"]


def test_token_counts_fall_back_to_the_estimate_with_a_note() -> None:
    """Exact counts with the demo model's tokenizer: test_data_cli's workspace validation."""
    from workbench.data.tokens import load_token_counter

    missing = load_token_counter("no-such-org/no-such-model")
    assert not missing.exact and "could not be loaded" in missing.note
    messages = [{"role": "user", "content": "Hello there"}, {"role": "assistant", "content": "Hi"}]
    assert missing.count(messages) == 4 + 4 + 3 + 1


VALIDATE = """
import json, sys, threading
from pathlib import Path
from workbench.config import WorkbenchConfig
from workbench.data.validate import validate_files, ValidateFinished
codes, checked = [], 0
for event in validate_files([Path(sys.argv[1])], WorkbenchConfig(), threading.Event()):
    if isinstance(event, ValidateFinished):
        checked = event.checked
    else:
        codes += [(f.where.rsplit(":", 1)[1], f.problem.code) for f in event.findings]
# VmHWM, not ru_maxrss: after a vfork + exec, Linux carries the parent's (the pytest
# worker's) high-water mark into ru_maxrss; VmHWM belongs to this process's own memory.
status = Path("/proc/self/status").read_text()
peak = int(next(l.split()[1] for l in status.splitlines() if l.startswith("VmHWM:"))) / 1024
print(json.dumps({"codes": codes, "checked": checked, "peak_mb": peak}))
"""


def test_a_50_mb_line_is_read_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "huge.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        handle.write('{"messages": [{"role": "user", "content": "Repeat."}, ')
        handle.write('{"role": "assistant", "content": "')
        for _ in range(50):
            handle.write("All work and no play makes a dull model. " * 25_000)
        handle.write('"}]}\n{"broken\n')
        handle.write('{"messages": [{"role": "user", "content": "Hi"}, ')
        handle.write('{"role": "assistant", "content": "Hello."}]}\n')
    assert path.stat().st_size > 50_000_000
    result = subprocess.run(
        [sys.executable, "-c", VALIDATE, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    data = json.loads(result.stdout)
    assert data["checked"] == 3
    assert ["1", "too-long"] in data["codes"] and ["2", "not-json"] in data["codes"]
    assert data["peak_mb"] < 500, data["peak_mb"]  # the bound; a whole 50 MB line is in memory


def test_validating_the_workspace_again_keeps_field_warnings(tmp_path: Path) -> None:
    from workbench.data.importer import import_files
    from workbench.data.store import ExampleStore
    from workbench.data.validate import validate_store

    config = WorkbenchConfig()
    with ExampleStore(tmp_path / "examples.db", validator=make_validator(config)) as store:
        list(import_files(store, [FIXTURES / "invalid" / "unknown-key.jsonl"]))
        before = [[p.code for p in e.problems] for e in store.iter_examples()]
        list(validate_store(store, config, threading.Event()))
        after = [[p.code for p in e.problems] for e in store.iter_examples()]
    assert before == after == [["unknown-key"], ["unknown-key"]]
