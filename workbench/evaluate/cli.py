"""`workbench eval ...`: the fine-tuned model against the old pipeline, judged by Claude.

    workbench eval --model GGUF [--baseline stored|claude|http|cmd] [--limit N] [--json]
    workbench eval report ID [--json] [--markdown PATH] [--jsonl PATH] [--monthly N]
    workbench eval list | resume ID | stop ID

`workbench eval --model` starts the eval as a detached job and follows it (progress on stderr);
Ctrl-C stops following, not the eval. The API key is read from ANTHROPIC_API_KEY only.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench.cliutil import OK, PROBLEMS, UsageError, command, json_option, resolve_workspace
from workbench.evaluate.events import EvalWarning, Finished, Phase, Progress
from workbench.evaluate.launch import (
    create_eval,
    find_eval,
    follow_eval,
    resume_eval,
    start_eval,
    stop_eval,
)
from workbench.evaluate.report import (
    EvalSummary,
    list_evals,
    load_report,
    read_summary,
    result_lines,
    write_jsonl,
    write_markdown,
)
from workbench.evaluate.spec import BASELINE_KINDS, EvalError
from workbench.workspace import Workspace

PROGRESS_EVERY_S = 2.0


def _usage_errors(handler: Callable[[argparse.Namespace], int]) -> Callable[..., int]:
    """An EvalError (missing key, unknown id...) is a one-line usage error (exit 2)."""

    @functools.wraps(handler)
    def wrapped(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except EvalError as exc:
            raise UsageError(str(exc)) from exc

    return wrapped


def register(commands: Any) -> None:
    sub = command(
        commands,
        "eval",
        "judge the fine-tuned model against the old pipeline (starts an eval with --model)",
        _usage_errors(cmd_eval),
    )
    _eval_options(sub)
    actions = sub.add_subparsers(title="actions", metavar="ACTION")
    report = command(
        actions, "report", "win/tie/loss, cost and latency of an eval", _usage_errors(cmd_report)
    )
    report.add_argument("eval_id", metavar="ID")
    report.add_argument(
        "--markdown", type=Path, metavar="PATH", help="also write a Markdown report"
    )
    report.add_argument("--jsonl", type=Path, metavar="PATH", help="also write the items as JSONL")
    report.add_argument("--monthly", type=int, metavar="N", help="requests a month (cost table)")
    json_option(report)
    json_option(command(actions, "list", "past evals, oldest first", _usage_errors(cmd_list)))
    resume = command(
        actions, "resume", "finish a stopped eval (retries failed items)", _usage_errors(cmd_resume)
    )
    resume.add_argument("eval_id", metavar="ID")
    resume.add_argument("--detach", action="store_true", help="start it and return")
    json_option(resume)
    stop = command(actions, "stop", "stop a running eval (resumable)", _usage_errors(cmd_stop))
    stop.add_argument("eval_id", metavar="ID")


def _eval_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--model", type=Path, metavar="GGUF", help="the fine-tuned model to judge")
    sub.add_argument(
        "--baseline", choices=BASELINE_KINDS, help="old-pipeline outputs (default: eval.baseline)"
    )
    sub.add_argument("--limit", type=int, metavar="N", help="at most N items")
    sub.add_argument("--split", choices=["auto", "test", "val"], help="eval inputs")
    sub.add_argument("--filter", dest="filter_text", metavar="TEXT", help="only matching inputs")
    sub.add_argument("--tag", metavar="TAG", help="only examples with this tag")
    sub.add_argument("--judge-model", metavar="MODEL", help="the Claude model that judges")
    sub.add_argument("--concurrency", type=int, metavar="N", help="judge calls in flight")
    sub.add_argument(
        "--batch", action="store_true", default=None, help="judge through Message Batches"
    )
    sub.add_argument("--detach", action="store_true", help="start the eval and return")
    json_option(sub)


def cmd_eval(args: argparse.Namespace) -> int:
    workspace = resolve_workspace(args)
    if args.model is None:
        raise UsageError(f"pass --model GGUF (the fine-tuned model){_gguf_hint(workspace)}")
    eval_dir = create_eval(
        workspace,
        args.model,
        baseline=args.baseline,
        limit=args.limit,
        split=args.split,
        filter_text=args.filter_text,
        tag=args.tag,
        judge_model=args.judge_model,
        concurrency=args.concurrency,
        batch=args.batch,
    )
    start_eval(eval_dir)
    return _after_start(eval_dir, args.detach, args.json)


def cmd_resume(args: argparse.Namespace) -> int:
    workspace = resolve_workspace(args)
    status = resume_eval(workspace, args.eval_id)
    return _after_start(workspace.evals_dir / status.id, args.detach, args.json)


def _after_start(eval_dir: Path, detach: bool, as_json: bool) -> int:
    """Print the id; unless detached, follow the eval to its end and print the summary."""
    if detach:
        print(json.dumps({"id": eval_dir.name}) if as_json else eval_dir.name)
        return OK
    if not as_json:
        print(eval_dir.name, flush=True)
    try:
        final = _follow(eval_dir)
    except KeyboardInterrupt:
        print(
            f"\nthe eval goes on in the background: `workbench eval report {eval_dir.name}`; "
            f"stop it with `workbench eval stop {eval_dir.name}`",
            file=sys.stderr,
        )
        return 130
    summary = read_summary(eval_dir)
    if as_json:
        print(json.dumps(summary.as_dict(), indent=2))
    else:
        print("\n".join(result_lines(summary)))
    if final.state != "finished":
        print(f"workbench: eval {final.state}: {final.reason}", file=sys.stderr)
        return PROBLEMS
    if summary.errors:
        print(
            f"workbench: {summary.errors} item(s) failed: `workbench eval report {eval_dir.name}`"
            f" says why; `workbench eval resume {eval_dir.name}` retries them",
            file=sys.stderr,
        )
        return PROBLEMS
    return OK


def _follow(eval_dir: Path) -> Finished:
    """Follow the eval, with a progress line on stderr every few seconds."""
    final = Finished("failed", "no events", 0, 0)
    last_print = 0.0
    for event in follow_eval(eval_dir):
        if isinstance(event, Phase | EvalWarning):
            print(f"  {event.message}", file=sys.stderr, flush=True)
        elif isinstance(event, Progress) and (
            time.monotonic() - last_print >= PROGRESS_EVERY_S or event.done == event.total
        ):
            last_print = time.monotonic()
            print(f"  {_progress_line(event)}", file=sys.stderr, flush=True)
        elif isinstance(event, Finished):
            final = event
    return final


def _progress_line(p: Progress) -> str:
    cost = "n/a" if p.judge_cost_usd is None else f"${p.judge_cost_usd:.4f}"
    return (
        f"{p.done}/{p.total} done, W/T/L {p.wins}/{p.ties}/{p.losses}, {p.errors} errors; "
        f"judge {p.judge_calls} calls ({p.cached_judgments} cached), "
        f"{p.judge_input_tokens + p.judge_output_tokens:,} tokens, {cost}"
    )


def _gguf_hint(workspace: Workspace) -> str:
    found = sorted(workspace.exports_dir.glob("*/*.gguf"))
    if not found:
        return "; export one first (`workbench export RUN_ID`)"
    return f", e.g. --model {found[-1]}"


def cmd_report(args: argparse.Namespace) -> int:
    workspace = resolve_workspace(args)
    eval_dir = find_eval(workspace, args.eval_id)
    report = load_report(eval_dir, workspace.config.eval, args.monthly)
    for path, write in ((args.markdown, write_markdown), (args.jsonl, write_jsonl)):
        if path is not None:
            write(report, path)
            print(f"wrote {path}", file=sys.stderr)
    if args.json:
        costs = [vars(row) for row in report.costs]
        print(json.dumps({**report.summary.as_dict(), "costs": costs}, indent=2))
        return OK
    print(f"eval {report.eval_id} ({report.summary.state})")
    print("\n".join(result_lines(report.summary)))
    print(f"\ncost and latency per request ({report.monthly_requests:,} requests a month):")
    for row in report.costs:
        print(f"  {_cost_line(row)}")
    for entry in report.failed():
        print(f"  item {entry.item.index} (example {entry.item.example_id}): {entry.error}")
    return OK


def _cost_line(row: Any) -> str:
    def num(value: float | None, fmt: str) -> str:
        return "n/a" if value is None else format(value, fmt)

    return (
        f"{row.pipeline}: p50 {num(row.latency_p50_s, '.2f')} s, p95 "
        f"{num(row.latency_p95_s, '.2f')} s, {num(row.mean_output_tokens, '.0f')} tokens out, "
        f"${num(row.cost_per_request_usd, '.5f')}/request, "
        f"${num(row.monthly_cost_usd, ',.2f')}/month" + (f" ({row.note})" if row.note else "")
    )


def cmd_list(args: argparse.Namespace) -> int:
    workspace = resolve_workspace(args)
    summaries = list_evals(workspace.evals_dir)
    if args.json:
        print(json.dumps([s.as_dict() for s in summaries], indent=2))
        return OK
    if not summaries:
        print("no evals yet: `workbench eval --model GGUF` starts one")
    for s in summaries:
        print(_list_line(s))
    return OK


def _list_line(s: EvalSummary) -> str:
    rate = "n/a" if s.win_rate is None else f"{s.win_rate * 100:.0f}%"
    return (
        f"{s.id}  {s.state:<9} {Path(s.model).name}  vs {s.baseline:<6}  "
        f"W/T/L {s.wins}/{s.ties}/{s.losses}  win rate {rate}  errors {s.errors}"
    )


def cmd_stop(args: argparse.Namespace) -> int:
    workspace = resolve_workspace(args)
    eval_dir = find_eval(workspace, args.eval_id)
    if not stop_eval(eval_dir):
        print(f"eval {eval_dir.name} is not running")
        return PROBLEMS
    print(f"stopping eval {eval_dir.name} (it finishes the answer in progress)")
    return OK
