"""Judging throughput of an eval, against the raw SDK doing the same calls, alternately in one run.

200 pairs (400 judge calls, both orders), concurrency 16, a fake Messages API on 127.0.0.1 that
answers every call in 0.5 s (tests/unit/fake_anthropic.py, through the real `anthropic` SDK).
Ideal wall time: 2 x 200 / 16 x 0.5 s = 12.5 s; target: within 1.3x. The baseline fires the
same 400 requests straight from an AsyncAnthropic client with a semaphore of 16, nothing else.
The fine-tuned model is replaced by an instant stand-in generator (this measures judging, not
llama.cpp). Then the same eval again: it must make zero judge calls.

    .venv/bin/python bench/eval.py [--pairs 200] [--concurrency 16] [--delay 0.5] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit"))
from fake_anthropic import FakeAnthropic, Verdict, fake_anthropic
from report import median, table, write_section

from workbench.data.store import ExampleStore
from workbench.evaluate.engine import run_eval
from workbench.evaluate.events import Finished, Progress
from workbench.evaluate.generate import Generation
from workbench.evaluate.judge import Judge
from workbench.evaluate.launch import create_eval
from workbench.evaluate.spec import EvalSpec
from workbench.workspace import Workspace, init_workspace

SYSTEM = "You write short product blurbs in a friendly tone. " * 8


class InstantCandidate:
    """Stands in for the GGUF: answers at once, differently from the stored answers."""

    def generate(self, messages: Sequence[Mapping[str, Any]]) -> Generation:
        topic = str(messages[-1]["content"]).splitlines()[0]
        return Generation(text=f"A fine-tuned blurb about {topic}.", latency_s=0.001)

    def close(self) -> None:
        return None


def workspace_with_pairs(root: Path, pairs: int, concurrency: int) -> tuple[Workspace, Path]:
    """A workspace whose test split holds `pairs` examples, and a placeholder model file."""
    ws = init_workspace(root).set_values(
        {"eval.concurrency": concurrency, "eval.max_examples": pairs}
    )
    records = [
        {
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": f"Topic: product {i}\nKeywords: k{i}"},
                {"role": "assistant", "content": f"The old pipeline's blurb for product {i}."},
            ]
        }
        for i in range(pairs)
    ]
    with ExampleStore(ws.db_path) as store:
        store.add_examples(records, split="test")
    model = root / "stand-in.gguf"
    model.write_bytes(b"GGUF")
    return ws, model


def engine_run(ws: Workspace, model: Path) -> tuple[float, Progress]:
    """Wall time of one whole eval (creation excluded) and its last progress event."""
    eval_dir = create_eval(ws, model)
    started = time.perf_counter()
    last: Progress | None = None
    for event in run_eval(eval_dir, threading.Event(), candidate=InstantCandidate()):
        if isinstance(event, Progress):
            last = event
        if isinstance(event, Finished):
            assert event.state == "finished", event.reason
    assert last is not None
    return time.perf_counter() - started, last


def raw_sdk_run(pairs: int, concurrency: int) -> float:
    """The same number of judge requests straight from the SDK, bounded the same way."""
    from anthropic import AsyncAnthropic

    spec = EvalSpec(model="x", concurrency=concurrency)

    async def main() -> float:
        client = AsyncAnthropic(api_key=os.environ["ANTHROPIC_API_KEY"], max_retries=0)
        judge = Judge(client, spec, cache=None)  # type: ignore[arg-type]  # params only
        semaphore = asyncio.Semaphore(concurrency)

        async def call(i: int, order: int) -> None:
            a, b = (f"candidate {i}", f"baseline {i}")[:: 1 if order else -1]
            async with semaphore:
                await client.messages.create(**judge.params(f"Topic: product {i}", a, b))

        started = time.perf_counter()
        await asyncio.gather(*(call(i, o) for i in range(pairs) for o in (0, 1)))
        elapsed = time.perf_counter() - started
        await client.close()
        return elapsed

    return asyncio.run(main())


def measure(args: argparse.Namespace, api: FakeAnthropic, scratch: Path) -> dict[str, Any]:
    """Alternate raw SDK and engine runs; then repeat the last eval against a warm cache."""
    engine, raw = [], []
    for round_ in range(args.rounds):
        raw.append(raw_sdk_run(args.pairs, args.concurrency))
        ws, model = workspace_with_pairs(scratch / f"ws{round_}", args.pairs, args.concurrency)
        calls_before = api.judge_calls
        seconds, progress = engine_run(ws, model)
        assert api.judge_calls - calls_before == 2 * args.pairs
        assert progress.done == args.pairs and progress.errors == 0
        engine.append(seconds)
        print(f"round {round_ + 1}: raw SDK {raw[-1]:.2f} s, eval {seconds:.2f} s", flush=True)
    calls_before = api.judge_calls
    repeat_s, repeat = engine_run(ws, model)
    return {
        "engine": engine,
        "raw": raw,
        "repeat_s": repeat_s,
        "repeat_calls": api.judge_calls - calls_before,
        "repeat_cached": repeat.cached_judgments,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--delay", type=float, default=0.5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-write", action="store_true", help="print, do not touch the doc")
    args = parser.parse_args()
    ideal = 2 * args.pairs / args.concurrency * args.delay
    os.environ["ANTHROPIC_API_KEY"] = "bench-key-not-secret"
    with (
        tempfile.TemporaryDirectory() as scratch,
        fake_anthropic(
            Verdict("A"), delay_s=args.delay, max_requests=10**6, lifetime_s=3600
        ) as api,
    ):
        os.environ["ANTHROPIC_BASE_URL"] = api.base_url
        found = measure(args, api, Path(scratch))
    engine_s, raw_s = median(found["engine"]), median(found["raw"])
    rows = [
        [
            f"eval wall time, {args.pairs} pairs x 2 orders",
            f"{engine_s:.2f} s",
            f"≤ {1.3 * ideal:.2f} s (1.3x ideal)",
            "yes" if engine_s <= 1.3 * ideal else "NO",
        ],
        ["ideal: 2 x pairs / concurrency x delay", f"{ideal:.2f} s", "", ""],
        ["ratio eval / ideal", f"{engine_s / ideal:.2f}x", "≤ 1.30x", ""],
        ["raw SDK, same 400 calls (baseline)", f"{raw_s:.2f} s", "baseline", ""],
        ["ratio eval / raw SDK", f"{engine_s / raw_s:.2f}x", "", ""],
        [
            "same eval again: judge calls",
            str(found["repeat_calls"]),
            "0",
            "yes" if found["repeat_calls"] == 0 else "NO",
        ],
        [
            "same eval again: wall time (all judgments cached)",
            f"{found['repeat_s']:.2f} s",
            "",
            "",
        ],
    ]
    body = (
        f"{args.pairs} pairs, concurrency {args.concurrency}, fake Messages API answering in "
        f"{args.delay} s over HTTP on 127.0.0.1 through the real `anthropic` SDK; instant "
        f"stand-in for the fine-tuned model. Median of {args.rounds} rounds, raw SDK and eval "
        "alternating.\n\n" + table(["measure", "value", "target", "met"], rows)
    )
    if args.no_write:
        print(body)
        return
    print(write_section("eval", "Eval judging (issue 6)", ".venv/bin/python bench/eval.py", body))


if __name__ == "__main__":
    main()
