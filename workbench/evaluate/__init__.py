"""Head-to-head evaluation: candidate and baseline outputs, the Claude judge, the report.

    spec.py       EvalSpec (`spec.json`): what to compare and how, from `[eval]` + overrides
    evalset.py    the eval set (`items.jsonl`): held-out examples split into input and answer
    generate.py   the fine-tuned GGUF's answers (Generator protocol, llama.cpp)
    baselines.py  the old pipeline's answers: stored, Claude, OpenAI-compatible HTTP, command
    judge.py      the Claude judge (forced tool call or structured JSON), Message Batches
    cache.py      paid results by content hash, shared by a workspace's evals (`evals/cache.db`)
    aggregate.py  both orders -> W/T/L, win rate, bootstrap interval, position bias
    costs.py      prices, latency percentiles, the cost and latency table
    results.py    per-item files (`generations.jsonl`, `results.jsonl`)
    engine.py     run_eval(eval_dir, cancel) -> Iterator[EvalEvent]
    events.py     the events of `events.jsonl`
    report.py     summary, report, list of past evals, Markdown and JSONL exports
    launch.py     create / start / follow / stop / resume, send a loss to the data
    runner.py     `python -m workbench.evaluate.runner EVAL_DIR` (the detached job)
    cli.py        `workbench eval ...`

Importing any of these loads neither `anthropic`, `httpx` nor `llama_cpp`.
"""
