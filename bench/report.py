"""Shared by the benchmark scripts: print a table and write it into docs/benchmarks.md.

Each script owns one section of the document, between `<!-- bench:NAME -->` markers; running
it replaces that section and leaves the others as they are.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import statistics
import subprocess
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "benchmarks.md"
HEADER = """# Benchmarks

Written by the scripts in `bench/`; each section says when, on what machine, and the command
that reproduces it. Timings vary between runs on shared machines: every figure is compared with
a baseline measured alternately in the same run, and the ratio is what to read.
"""


def machine() -> str:
    """`2 CPU cores (model), 24 GiB, Python 3.11.7` plus the GPU when there is one."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    text = f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB, Python {platform.python_version()}"
    gpu = _gpu_name()
    return f"{text}, {gpu}" if gpu else f"{text}, no GPU"


def _gpu_name() -> str:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout else ""


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (also readable as plain text)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def write_section(name: str, title: str, command: str, body: str) -> str:
    """Replace section `name` of docs/benchmarks.md; return the section's text."""
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    section = (
        f"<!-- bench:{name} -->\n## {title}\n\n"
        f"- Date: {stamp}\n- Machine: {machine()}\n- Reproduce: `{command}`\n\n"
        f"{body.strip()}\n<!-- /bench:{name} -->"
    )
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else HEADER
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        after = rest.split(end, 1)[1]
        text = before + section + after
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(text, encoding="utf-8")
    return section
