"""`workbench data ...` from the shell: what a user types and reads, and the exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.cli import main

SAMPLE_FILE = "imports/seo_pairs.jsonl"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_import_reports_the_format_and_the_quarantine(
    sample_workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys, "data", "import", str(sample_workspace / SAMPLE_FILE), "-w", str(sample_workspace)
    )
    assert code == 1
    assert f"{SAMPLE_FILE}: OpenAI chat, JSON Lines (detected: line 1 has 'messages')" in out
    assert f"quarantined {SAMPLE_FILE}:75: error: message 3 (assistant): empty content" in out
    assert "Imported 120 examples, quarantined 1" in out and "3 exact, 3 near" in out
    code, out, _ = run(capsys, "data", "undo", "-w", str(sample_workspace))
    assert out.strip() == f"Undone: import {SAMPLE_FILE}"


def test_validate_a_file_lists_every_flaw(
    sample_workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(sample_workspace / SAMPLE_FILE)
    run(capsys, "config", "set", "train.max_seq_length=1024", "-w", str(sample_workspace))
    code, out, _ = run(capsys, "data", "validate", path, "--estimate", "-w", str(sample_workspace))
    assert code == 1
    lines = out.splitlines()
    for line, text in [
        (31, "warning: the answer may be cut off"),
        (56, f"warning: exact duplicate of {path}:32"),
        (60, f"warning: near duplicate of {path}:40"),
        (75, "error: message 3 (assistant): empty content"),
        (79, "warning: the answer looks German, the prompt English"),
        (95, "warning: about 3,639 tokens (estimated), longer than train.max_seq_length 1,024"),
    ]:
        assert any(x.startswith(f"{path}:{line}: {text}") for x in lines), (line, text)
    assert "Checked 121 examples: 1 errors" in out
    assert "a shared instruction may be the cause" in out


def test_validate_json(sample_workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fixtures = Path(__file__).parent / "fixtures" / "data"
    code, out, _ = run(
        capsys, "data", "validate", str(fixtures / "accepted.jsonl"), "--json", "--estimate"
    )
    assert code == 0
    data = json.loads(out)
    assert data["findings"] == [] and data["summary"]["checked"] == 3


def test_validate_the_workspace_with_exact_token_counts(
    sample_workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workspace = str(sample_workspace)
    run(capsys, "data", "import", str(sample_workspace / SAMPLE_FILE), "-w", workspace)
    code, out, _ = run(capsys, "data", "validate", "-w", workspace)
    assert code == 1  # the quarantined line is still an error
    assert "exact token counts (tokenizer of workbench:demo-tiny)" in out
    assert f"{SAMPLE_FILE}:75: error: quarantined: message 3 (assistant): empty content" in out
    assert (
        f"{SAMPLE_FILE}:56 (example 56): warning: exact duplicate of {SAMPLE_FILE}:32 (example 32)"
        in out
    )


def test_clean_split_stats_export_round_trip(
    sample_workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workspace = str(sample_workspace)
    run(capsys, "data", "import", str(sample_workspace / SAMPLE_FILE), "-w", workspace)
    code, out, _ = run(capsys, "data", "clean", "--instructions", "--dedupe", "-w", workspace)
    assert code == 0 and "This was a preview" in out and "a variant in 2" in out
    code, out, _ = run(capsys, "data", "clean", "--instructions", "--apply", "-w", workspace)
    assert "Stripped from 120 examples" in out
    code, out, _ = run(
        capsys, "data", "split", "--val", "10", "--test", "0.1", "--seed", "3", "-w", workspace
    )
    assert code == 0 and "train 98, val 10, test 12 (seed 3)" in out
    code, out, _ = run(capsys, "data", "stats", "--json", "--estimate", "-w", workspace)
    stats = json.loads(out)
    assert stats["splits"] == {"train": 98, "val": 10, "test": 12, "unassigned": 0}
    assert stats["tokens"]["max"] < 3000
    exported = tmp_path / "val.jsonl"
    code, out, _ = run(
        capsys, "data", "export", "--out", str(exported), "--split", "val", "-w", workspace
    )
    assert code == 0 and out.strip() == f"Wrote 10 examples to {exported} (openai)"
    records = [json.loads(line) for line in exported.read_text().splitlines()]
    assert all(r["messages"][0]["role"] == "user" for r in records)


def test_usage_errors_say_what_to_do(
    sample_workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workspace = str(sample_workspace)
    code, _, err = run(capsys, "data", "split", "--val", "lots", "-w", workspace)
    assert code == 2 and "give a number of examples (200) or a share (0.1, 10%)" in err
    code, _, err = run(capsys, "data", "import", "missing.jsonl", "-w", workspace)
    assert code == 2 and "missing.jsonl: no such file or folder" in err
    code, _, err = run(capsys, "data", "clean", "-w", workspace)
    assert code == 2 and "--instructions, --dedupe and/or --whitespace" in err
    code, _, err = run(capsys, "data", "-w", workspace)
    assert code == 2 and "needs an action" in err
