"""How fast the TUI becomes interactive, against a bare Textual app, alternately in one run.

Each sample is a fresh interpreter (as when a user types `workbench`): the clock starts before
the process is spawned and stops when the app has drawn its first screen and can take keys.
Also measured: from a key press (switch screen) to the new screen painted, for a screen's first
visit right at start (the other screens are still being prepared in the background), a first
visit once they are prepared, and later visits. The app warms up as in a terminal session
(`warm_up=True`; headless runs do not by default).
Targets: interactive within 1.0 s, a screen switch within 100 ms, on a 2-core machine.

    .venv/bin/python bench/startup.py [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import REPO, median, table, write_section

WORKBENCH = """
import asyncio, importlib, json, sys, time
from workbench.cli import build_parser, resolve_workspace
workspace = resolve_workspace(build_parser().parse_args(["-w", sys.argv[1]]))
app = importlib.import_module("screens.app").make_app(workspace, warm_up=True)

async def switch(key, mode):
    # From the key event to the new screen painted.
    started = time.perf_counter()
    app.simulate_key(key)
    while getattr(app.screen, "MODE", "") != mode:
        await asyncio.sleep(0.0005)
    painted = asyncio.Event()
    app.screen.call_after_refresh(painted.set)
    await painted.wait()
    return (time.perf_counter() - started) * 1000

async def ready(pilot):
    await pilot.pause()
    ready_at = time.time()
    first = await switch("2", "train")  # at once: the other screens may still be preparing
    await app.workers.wait_for_complete([w for w in app.workers if w.group == "warm-up"])
    await asyncio.sleep(0.2)
    prepared = await switch("3", "chat")
    again = []
    for key, mode in zip("41234123", ("eval", "data", "train", "chat") * 2):
        await asyncio.sleep(0.1)
        again.append(await switch(key, mode))
    await asyncio.sleep(0.1)
    await switch("2", "train")
    heavy = [m for m in ("torch", "transformers", "llama_cpp", "peft", "trl") if m in sys.modules]
    print(json.dumps({"ready": ready_at, "first_ms": first, "prepared_ms": prepared,
                      "key_ms": sorted(again)[len(again) // 2], "key_max_ms": max(again),
                      "screen": type(app.screen).__name__, "heavy": heavy}), flush=True)
    app.exit()
app.run(headless=True, auto_pilot=ready, size=(120, 36))
"""

BARE_TEXTUAL = """
import json, sys, time
from textual.app import App
from textual.widgets import Footer, Header, Label
class Bare(App):
    def compose(self):
        yield Header(); yield Label("hello"); yield Footer()
async def ready(pilot):
    await pilot.pause()
    print(json.dumps({"ready": time.time(), "key_ms": 0, "screen": "", "heavy": []}), flush=True)
    pilot.app.exit()
Bare().run(headless=True, auto_pilot=ready, size=(120, 36))
"""


def sample(code: str, workspace: Path) -> dict[str, float]:
    started = time.time()
    result = subprocess.run(
        [sys.executable, "-c", code, str(workspace)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=REPO,
    )
    data = json.loads(result.stdout.strip().splitlines()[-1])
    data["startup_s"] = data["ready"] - started
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--workspace", type=Path, default=REPO / "sample_data")
    parser.add_argument("--label", default="", help="a note printed with the table")
    args = parser.parse_args()
    sample(WORKBENCH, args.workspace)  # warm the OS file cache and byte-code
    workbench, bare = [], []
    for _ in range(args.runs):
        workbench.append(sample(WORKBENCH, args.workspace))
        bare.append(sample(BARE_TEXTUAL, args.workspace))
    assert all(run["screen"] == "TrainScreen" for run in workbench)
    heavy = sorted({module for run in workbench for module in run["heavy"]})
    wb_s = median([run["startup_s"] for run in workbench])
    bare_s = median([run["startup_s"] for run in bare])
    key_ms = median([run["key_ms"] for run in workbench])
    key_max_ms = max(run["key_max_ms"] for run in workbench)
    first_ms = median([run["first_ms"] for run in workbench])
    prepared_ms = median([run["prepared_ms"] for run in workbench])
    rows = [
        [
            "workbench TUI interactive (sample workspace)",
            f"{wb_s:.3f} s",
            "≤ 1.0 s",
            "yes" if wb_s <= 1.0 else "NO",
        ],
        ["bare Textual app (Header, Label, Footer)", f"{bare_s:.3f} s", "baseline", ""],
        ["ratio workbench / bare Textual", f"{wb_s / bare_s:.2f}x", "", ""],
        [
            "key to a new screen painted, first visit, key pressed at start",
            f"{first_ms:.0f} ms",
            "≤ 100 ms",
            "yes" if first_ms <= 100 else "NO",
        ],
        [
            "key to a new screen painted, first visit, screens prepared",
            f"{prepared_ms:.0f} ms",
            "≤ 100 ms",
            "yes" if prepared_ms <= 100 else "NO",
        ],
        [
            "key to a screen painted, later visits (median of 8 per run)",
            f"{key_ms:.0f} ms",
            "≤ 100 ms",
            "yes" if key_ms <= 100 else "NO",
        ],
        [
            "key to a screen painted, later visits, worst of all runs",
            f"{key_max_ms:.0f} ms",
            "≤ 100 ms",
            "yes" if key_max_ms <= 100 else "NO",
        ],
        [
            "heavy modules imported at start",
            ", ".join(heavy) or "none",
            "none",
            "yes" if not heavy else "NO",
        ],
    ]
    body = (
        f"Median of {args.runs} fresh processes each, workbench and baseline alternating.\n"
        f"{args.label}\n\n" + table(["measure", "value", "target", "met"], rows)
    )
    print(
        write_section(
            "startup", "Startup (issue: foundation)", ".venv/bin/python bench/startup.py", body
        )
    )


if __name__ == "__main__":
    main()
