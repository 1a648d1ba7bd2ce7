"""The Data screen on a large workspace: 100,000 examples of about 1 KB, against 1,000.

Measured, the two sizes alternating in one run:
- open: from spawning `workbench` (a fresh interpreter) to the Data screen's first rows painted;
- search: from a key typed in the search box to the matching rows painted (each keystroke of a
  few words typed one key at a time), and to the count above the table;
- edit: saving one edited conversation through the store (`update_messages`, with the
  workspace's validator), store side only.
Targets (issue 3): open ≤ 1 s, a search keystroke ≤ 150 ms, saving an edit ≤ 20 ms.

    .venv/bin/python bench/data_screen.py [--runs 3] [--big 100000] [--small 1000]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import REPO, median, table, write_section
from startup import BARE_TEXTUAL, sample

from workbench.data.store import ExampleStore, Query
from workbench.data.validate import open_store
from workbench.workspace import Workspace, init_workspace, is_workspace, open_workspace

WORDS = sorted(
    {
        word.strip(".,;:!?\"'()").lower()
        for word in (REPO / "workbench" / "assets" / "demo_corpus.txt").read_text().split()
        if word.strip(".,;:!?\"'()").isalpha()
    }
)
SEARCHES = ("search intent", "keyword")
"""Typed one key at a time: prefixes of common words first, then narrower ones."""

APP = """
import asyncio, json, sys, time
from textual import events
from textual.keys import _character_to_key
from workbench.cli import build_parser, resolve_workspace
from screens.data import searchable
from screens.widgets.examples_table import ExamplesTable
workspace = resolve_workspace(build_parser().parse_args(["-w", sys.argv[1]]))
app = __import__("screens.app", fromlist=["make_app"]).make_app(workspace)
searches = json.loads(sys.argv[2])

async def painted():
    done = asyncio.Event()
    app.screen.call_after_refresh(done.set)
    await done.wait()

async def until(condition):
    while not condition():
        await asyncio.sleep(0.0005)

def press(key):
    # As a terminal sends it: a printable key carries its character.
    if len(key) == 1:
        app.post_message(events.Key(_character_to_key(key), key))
    else:
        app.post_message(events.Key(key, None))

async def keystroke(table, key):
    # From the key event to the matching rows painted, and to the count shown. A keystroke
    # that leaves the search as it was (a one-letter word still being typed) is done once
    # the search box shows it.
    screen, search = app.screen, app.screen.query_one("#data-search")
    before = search.value
    started = time.perf_counter()
    press(key)
    await until(lambda: search.value != before)
    await until(lambda: table.is_current and screen.view.text == searchable(search.value))
    await painted()
    rows_ms = (time.perf_counter() - started) * 1000
    await until(lambda: screen.matching is not None)
    return rows_ms, (time.perf_counter() - started) * 1000

async def run(pilot):
    screen = app.screen
    table = screen.query_one(ExamplesTable)
    await until(lambda: any(True for _ in table.rows_on_screen()) or screen.live == 0)
    await painted()
    shown_at, in_app = time.time(), time.perf_counter() - started
    if screen.live == 0:  # the empty workspace: the app alone, as a baseline
        print(json.dumps({"shown": shown_at, "in_app": in_app, "search": []}), flush=True)
        app.exit()
        return
    press("/")
    await pilot.pause()
    timings = []
    for text in searches:
        for key in text:
            timings.append(await keystroke(table, key))
        for _ in text:
            timings.append(await keystroke(table, "backspace"))
    print(json.dumps({"shown": shown_at, "in_app": in_app, "search": timings}), flush=True)
    app.exit()

started = time.perf_counter()
app.run(headless=True, auto_pilot=run, size=(120, 36))
"""


def record(rng: random.Random, number: int) -> dict[str, Any]:
    """About 1 KB: a brief of ~45 words and an answer of ~130, from the demo corpus's words."""

    def words(count: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(count))

    brief = f"Topic: {words(4)}\nKeywords: {words(3)}\nAudience: {words(3)}\n{words(35)}"
    return {
        "messages": [
            {"role": "user", "content": f"{brief} ({number})"},
            {"role": "assistant", "content": words(rng.randint(90, 170)) + "."},
        ]
    }


def records(count: int, seed: int) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    return (record(rng, number) for number in range(count))


def build(root: Path, count: int) -> Workspace:
    workspace = init_workspace(root, name=f"bench-{count}")
    with ExampleStore(workspace.db_path) as store:
        batch = 10_000
        for start in range(0, count, batch):
            store.add_examples(records(min(batch, count - start), start), source="bench")
    return workspace


def open_and_search(workspace: Workspace) -> dict[str, Any]:
    started = time.time()
    result = subprocess.run(
        [sys.executable, "-c", APP, str(workspace.root), json.dumps(SEARCHES)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO,
    )
    if result.returncode:
        raise RuntimeError(f"the app failed on {workspace.root}:\n{result.stderr[-3000:]}")
    data = json.loads(result.stdout.strip().splitlines()[-1])
    data["open_s"] = data["shown"] - started
    return data


def typed_searches() -> list[str]:
    """The distinct searches the typing runs (as `searchable` turns keystrokes into them)."""
    from screens.data import searchable

    found: list[str] = []
    for text in SEARCHES:
        prefixes = [text[: i + 1] for i in range(len(text))]
        for query in (searchable(p) for p in prefixes + prefixes[::-1][1:]):
            if query and query not in found:
                found.append(query)
    return found


def store_search_ms(workspace: Workspace) -> tuple[list[float], list[float]]:
    """Store side of each search: the first page of rows, and the count."""
    rows, counts = [], []
    with ExampleStore(workspace.db_path) as store:
        for text in typed_searches():
            query = Query(text=text)
            started = time.perf_counter()
            store.rows(query, 0, 200)
            rows.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            store.count(query)
            counts.append((time.perf_counter() - started) * 1000)
    return rows, counts


def save_edit_ms(workspace: Workspace, samples: int, seed: int) -> list[float]:
    """Store side of saving one edit: `update_messages` with the workspace's validator."""
    rng = random.Random(seed)
    timings = []
    with open_store(workspace) as store:
        total = store.count()
        for _ in range(samples):
            example = store.get(rng.randint(1, total))
            messages = [dict(m) for m in example.messages]
            messages[-1]["content"] += " Edited."
            started = time.perf_counter()
            store.update_messages(example.id, messages)
            timings.append((time.perf_counter() - started) * 1000)
    return timings


def measure(sizes: dict[str, Workspace], runs: int) -> dict[str, dict[str, list[float]]]:
    keys = ("open", "in_app", "rows", "count", "store_rows", "store_count", "edit")
    found: dict[str, dict[str, list[float]]] = {name: {k: [] for k in keys} for name in sizes}
    found["bare"] = {"open": []}
    found["empty"] = {"open": [], "in_app": []}
    empty = init_workspace(Path(tempfile.mkdtemp(prefix="bench-empty-")) / "ws", name="empty")
    for workspace in sizes.values():  # warm the OS file cache and the byte-code
        open_and_search(workspace)
    for run in range(runs):
        found["bare"]["open"].append(sample(BARE_TEXTUAL, REPO)["startup_s"])
        baseline = open_and_search(empty)
        found["empty"]["open"].append(baseline["open_s"])
        found["empty"]["in_app"].append(baseline["in_app"])
        for name, workspace in sizes.items():
            data = open_and_search(workspace)
            found[name]["open"].append(data["open_s"])
            found[name]["in_app"].append(data["in_app"])
            found[name]["rows"] += [rows for rows, _ in data["search"]]
            found[name]["count"] += [count for _, count in data["search"]]
            found[name]["edit"] += save_edit_ms(workspace, 20, seed=run)
            store_rows, store_count = store_search_ms(workspace)
            found[name]["store_rows"] += store_rows
            found[name]["store_count"] += store_count
    return found


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]


def rows_for(found: dict[str, dict[str, list[float]]], big: str, small: str) -> list[list[str]]:
    def met(value: float, target: float) -> str:
        return "yes" if value <= target else "NO"

    b, s = found[big], found[small]
    lines = []
    for label, key, unit, target in (
        ("open: spawn to first rows painted", "open", "s", 1.0),
        ("open: app started (imports done) to first rows", "in_app", "s", 1.0),
        ("search keystroke to rows painted", "rows", "ms", 150),
        ("search keystroke to count shown", "count", "ms", None),
        ("store: first page of a search", "store_rows", "ms", None),
        ("store: count of a search", "store_count", "ms", None),
        ("save one edit (store side)", "edit", "ms", 20),
    ):
        big_median, small_median = median(b[key]), median(s[key])
        fmt = "{:.3f} s" if unit == "s" else "{:.1f} ms"
        worst = p90(b[key])
        lines.append(
            [
                label,
                fmt.format(big_median),
                fmt.format(worst),
                fmt.format(small_median),
                f"{big_median / small_median:.2f}x",
                f"≤ {target} {unit}" if target else "",
                met(worst, target) if target else "",
            ]
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--big", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--dir", type=Path, default=None, help="keep the workspaces here")
    args = parser.parse_args()
    base = args.dir or Path(tempfile.mkdtemp(prefix="bench-data-"))
    sizes, built = {}, []
    for count in (args.big, args.small):
        root = base / f"ws-{count}"
        started = time.perf_counter()
        if not is_workspace(root):
            build(root, count)
            built.append(f"{count:,} in {time.perf_counter() - started:.0f} s")
        sizes[f"{count:,}"] = open_workspace(root)
    found = measure(sizes, args.runs)
    big, small = f"{args.big:,}", f"{args.small:,}"
    keystrokes = sum(2 * len(text) for text in SEARCHES)
    body = (
        f"{args.runs} fresh processes per size, sizes alternating; examples of about 1 KB"
        f" (built with `add_examples`: {', '.join(built) or 'kept from an earlier run'})."
        " Two baselines are spawned in the same runs (below the table): the workbench on an"
        " empty workspace, and a bare Textual app, which tells how busy the machine was (about"
        " 0.25 s on an idle one, see Startup above)."
        f" Search: {keystrokes} keystrokes per run, typing"
        f" {', '.join(repr(s) for s in SEARCHES)} and erasing them; a one-letter"
        " word waits for its second letter (as a prefix it matches nearly everything), so the"
        f" searches run are {', '.join(repr(s) for s in typed_searches())}. The store lines"
        " time the same searches in-process. Edit: 20 saves per run. `p90` is the 90th"
        " percentile on the big workspace; `met` compares it with the target.\n\n"
        + table(
            ["measure", f"{big} median", f"{big} p90", f"{small} median", "ratio", "target", "met"],
            rows_for(found, big, small),
        )
        + "\n\nBaselines spawned in the same runs (medians): the workbench on an empty workspace"
        " (the app alone, its Data screen saying how to import)"
        f" {median(found['empty']['open']):.3f} s from spawning,"
        f" {median(found['empty']['in_app']):.3f} s from the app's start;"
        " a bare Textual app (Header, Label, Footer)"
        f" {median(found['bare']['open']):.3f} s."
    )
    print(
        write_section(
            "data_screen",
            "Data screen on 100k examples (issue 3)",
            ".venv/bin/python bench/data_screen.py",
            body,
        )
    )


if __name__ == "__main__":
    main()
