"""`workbench capture`, `workbench synth` and `workbench review`: collect examples from the old
pipeline's traffic or from Claude, then accept or reject them."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from workbench.cliutil import OK, PROBLEMS, UsageError, command, json_option, resolve_workspace
from workbench.collect import launch, review
from workbench.collect.events import CollectEvent, JobFinished, event_from_dict, event_to_dict
from workbench.collect.settings import ANTHROPIC_URL, OPENAI_URL, CaptureSettings
from workbench.collect.synth import DEFAULT_MODEL, SEED_TAG, SynthSpec, select_seeds
from workbench.data.store import ExampleStore
from workbench.jobs import JobStatus
from workbench.workspace import Workspace


def register(commands: Any) -> None:
    """Add `capture`, `synth` and `review` to the `workbench` command."""
    _add_capture(commands)
    _add_synth(commands)
    _add_review(commands)


# --- capture ---------------------------------------------------------------------------------


def _add_capture(commands: Any) -> None:
    capture = command(
        commands,
        "capture",
        "a local proxy that stores the old pipeline's requests and answers as examples",
        cmd_capture,
    )
    capture.add_argument("--port", type=int, default=8765, help="port to listen on (default 8765)")
    capture.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only)",
    )
    capture.add_argument(
        "--upstream",
        action="append",
        nargs="+",
        default=[],
        metavar="anthropic|openai URL",
        help="where to forward: `anthropic URL`, `openai URL`, or a URL for both "
        f"(default {ANTHROPIC_URL} and {OPENAI_URL})",
    )
    capture.add_argument(
        "--tag", default="", help="tag for requests without an X-Workbench-Tag header"
    )
    capture.add_argument(
        "--foreground", action="store_true", help="run in this terminal (Ctrl+C stops)"
    )
    capture.add_argument("--stop", action="store_true", help="stop the running capture")
    capture.add_argument("--list", action="store_true", help="list captures and their counts")
    json_option(capture)


def capture_settings(args: argparse.Namespace) -> CaptureSettings:
    """The proxy settings the command line asks for."""
    urls = {"anthropic": ANTHROPIC_URL, "openai": OPENAI_URL}
    for given in args.upstream:
        if len(given) == 1 and given[0].startswith(("http://", "https://")):
            urls = dict.fromkeys(urls, given[0])
        elif len(given) == 2 and given[0] in urls and given[1].startswith(("http://", "https://")):
            urls[given[0]] = given[1]
        else:
            raise UsageError(
                f"--upstream {' '.join(given)}: expected `anthropic URL`, `openai URL` or a URL"
            )
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port}: expected a port number (0-65535)")
    return CaptureSettings(
        host=args.host,
        port=args.port,
        anthropic_url=urls["anthropic"],
        openai_url=urls["openai"],
        default_tag=args.tag,
    )


def cmd_capture(args: argparse.Namespace) -> int:
    workspace = resolve_workspace(args)
    if args.list:
        return _list_jobs(workspace, "capture", args.json)
    if args.stop:
        return _stop_all(workspace, "capture", args.json)
    settings = capture_settings(args)
    if settings.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"warning: listening on {settings.host}: anyone who can reach this port can send"
            " requests through it (with their own key)",
            file=sys.stderr,
        )
    if args.foreground:
        from workbench.collect.capture import capture

        return _follow_inline(lambda c: capture(workspace.db_path, settings, c), args.json)
    status = launch.start_capture(workspace, settings)
    path = launch.job_dir(workspace, "capture", status.id)
    event = launch.wait_for_event(path, ("listening", "error"), timeout=20)
    return _report_capture_start(status, event, args.json)


def _report_capture_start(status: JobStatus, event: dict[str, Any] | None, as_json: bool) -> int:
    if event is None or event.get("type") != "listening":
        message = (event or {}).get("message") or "the capture did not start (see output.log)"
        print(f"workbench: {message}", file=sys.stderr)
        return PROBLEMS
    url = event["url"]
    if as_json:
        print(json.dumps({"id": status.id, "url": url, "pid": status.pid}))
        return OK
    print(f"Capturing on {url} (job {status.id})")
    print("Point the old pipeline at it; requests go on to the provider with its own key:")
    print(f"  Anthropic SDK:  ANTHROPIC_BASE_URL={url}")
    print(f"  OpenAI SDK:     OPENAI_BASE_URL={url}/v1")
    print("  Optional header X-Workbench-Tag: NAME tags the captured examples.")
    print("Captured pairs wait for review on the Data screen (or `workbench review list`).")
    print("Stop with `workbench capture --stop`.")
    return OK


# --- synth -----------------------------------------------------------------------------------


def _add_synth(commands: Any) -> None:
    synth = command(
        commands,
        "synth",
        "generate new examples with Claude from a few seeds",
        cmd_synth,
    )
    synth.add_argument("--count", type=int, default=50, help="how many examples to generate")
    synth.add_argument("--per-call", type=int, default=5, help="examples per request (default 5)")
    synth.add_argument("--model", default=DEFAULT_MODEL, help=f"default {DEFAULT_MODEL}")
    synth.add_argument(
        "--output-mode",
        choices=["schema", "tool"],
        default="schema",
        help="structured outputs (default; Claude 4.5 and later) or a forced tool call",
    )
    synth.add_argument(
        "--seed-tag", default=SEED_TAG, help="seed examples carry this tag (default: seed)"
    )
    synth.add_argument("--seeds", type=int, default=8, help="at most this many seeds (default 8)")
    synth.add_argument("--topic", action="append", default=[], help="a topic (repeatable)")
    synth.add_argument("--topics", type=Path, metavar="FILE", help="topics, one per line")
    synth.add_argument("--guidance", default="", help="what the new examples should be like")
    synth.add_argument("--guidance-file", type=Path, metavar="FILE")
    synth.add_argument("--max-cost", type=float, metavar="USD", help="stop after spending this")
    synth.add_argument(
        "--price",
        type=float,
        nargs=2,
        metavar=("IN", "OUT"),
        help="USD per million input and output tokens (for a model the table does not know)",
    )
    synth.add_argument("--resume", metavar="ID", help="continue a stopped or failed synth job")
    synth.add_argument("--follow", metavar="ID", help="print a synth job's progress until it ends")
    synth.add_argument("--wait", action="store_true", help="print progress until it is done")
    synth.add_argument("--foreground", action="store_true", help="run in this terminal")
    synth.add_argument("--stop", action="store_true", help="stop the running synth jobs")
    synth.add_argument("--list", action="store_true", help="list synth jobs with their cost")
    json_option(synth)


def _lines(path: Path | None) -> list[str]:
    if path is None:
        return []
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from exc
    return [line.strip() for line in text.splitlines() if line.strip()]


def synth_spec(args: argparse.Namespace, workspace: Workspace) -> SynthSpec:
    """The generation job the command line asks for (seeds read from the store now)."""
    if args.count < 1 or not 1 <= args.per_call <= 50:
        raise UsageError("--count must be at least 1 and --per-call between 1 and 50")
    with ExampleStore(workspace.db_path) as store:
        seeds = select_seeds(store, args.seed_tag, args.seeds)
    if not seeds:
        raise UsageError(
            f"no seed examples: tag a few good ones `{args.seed_tag}` on the Data screen, "
            "or import examples first (`workbench data import FILE`)"
        )
    guidance = "\n".join([args.guidance, *_lines(args.guidance_file)]).strip()
    return SynthSpec(
        seeds=[example.messages for example in seeds],
        count=args.count,
        per_call=args.per_call,
        topics=[*args.topic, *_lines(args.topics)],
        guidance=guidance,
        model=args.model,
        output_mode=args.output_mode,
        max_cost_usd=args.max_cost,
        price_per_mtok=tuple(args.price) if args.price else None,
        near_duplicate_threshold=workspace.config.data.near_duplicate_threshold,
        api_key_env=workspace.config.eval.api_key_env,
    )


def _check_key(env_name: str) -> None:
    if not os.environ.get(env_name):
        raise UsageError(
            f"set {env_name} to your Anthropic API key (read from the environment only, "
            "never written to disk)"
        )


def cmd_synth(args: argparse.Namespace) -> int:
    workspace = resolve_workspace(args)
    if args.list:
        return _list_jobs(workspace, "synth", args.json)
    if args.stop:
        return _stop_all(workspace, "synth", args.json)
    if args.follow:
        path = launch.job_dir(workspace, "synth", args.follow)
        if not path.is_dir():
            raise UsageError(f"no synth job {args.follow}: `workbench synth --list` shows them")
        return _print_events(_follow_file(path), args.json)
    _check_key(workspace.config.eval.api_key_env)
    if args.resume:
        try:
            status = launch.resume_synth(workspace, args.resume)
        except launch.LaunchError as exc:
            raise UsageError(str(exc)) from exc
    else:
        spec = synth_spec(args, workspace)
        if args.foreground:
            return _synth_inline(workspace, spec, args.json)
        status = launch.start_synth(workspace, spec)
    path = launch.job_dir(workspace, "synth", status.id)
    if not args.wait:
        if args.json:
            print(json.dumps({"id": status.id, "pid": status.pid}))
        else:
            print(f"Generating in the background: job {status.id}")
            print(f"  follow it: `workbench synth --follow {status.id}`")
            print("  candidates wait for review on the Data screen (or `workbench review list`)")
        return OK
    return _print_events(_follow_file(path), args.json)


def _synth_inline(workspace: Workspace, spec: SynthSpec, as_json: bool) -> int:
    from workbench.collect.synth import synthesize
    from workbench.jobs import new_job_id

    job_id = new_job_id()
    path = launch.job_dir(workspace, "synth", job_id)
    path.mkdir(parents=True)
    spec = SynthSpec(**{**asdict(spec), "job_id": job_id})
    with ExampleStore(workspace.db_path) as store:
        return _follow_inline(lambda c: synthesize(spec, store, path, c), as_json)


# --- shared: following and listing jobs ------------------------------------------------------


def _follow_inline(make: Any, as_json: bool) -> int:
    """Run an engine iterator here, printing its events; Ctrl+C cancels it gracefully."""
    cancel = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.set())
    try:
        return _print_events(make(cancel), as_json)
    finally:
        signal.signal(signal.SIGINT, previous)


def _follow_file(path: Path) -> Iterator[CollectEvent]:
    """A detached job's events as they are written, until its status says it ended."""
    from workbench.jobs import EventTail, observed_status

    tail = EventTail(path)
    while True:
        for raw in tail.read_new():
            if (event := event_from_dict(raw)) is not None:
                yield event
        status = observed_status(path)
        if status is not None and not status.active:
            for raw in tail.read_new():
                if (event := event_from_dict(raw)) is not None:
                    yield event
            return
        time.sleep(0.2)


def _print_events(events: Iterator[CollectEvent], as_json: bool) -> int:
    state = "failed"
    for event in events:
        print(json.dumps(event_to_dict(event)) if as_json else describe(event), flush=True)
        if isinstance(event, JobFinished):
            state = event.state
    return OK if state != "failed" else PROBLEMS


def describe(event: CollectEvent) -> str:
    """One line for a person."""
    data = event_to_dict(event)
    kind = data.pop("type")
    if kind == "listening":
        return f"listening on {data['url']}"
    if kind == "progress":
        return (
            f"{data['requests']} requests, {data['stored']} stored, {data['skipped']} skipped, "
            f"{data['failed']} not stored, {data['upstream_errors']} upstream errors"
        )
    if kind == "call":
        source = "cached" if data["cached"] else f"${data['cost_usd']:.4f}"
        return (
            f"call {data['index'] + 1}/{data['calls']} ({source}): {data['added']} added, "
            f"{data['duplicates']} duplicates, {data['invalid']} invalid; "
            f"{data['total_added']} in all, ${data['total_cost_usd']:.4f} spent"
        )
    if kind == "finished":
        return f"{data['state']}: {data['reason']}"
    return f"{kind}: " + ", ".join(f"{k}={v}" for k, v in data.items())


def _list_jobs(workspace: Workspace, kind: launch.CollectKind, as_json: bool) -> int:
    jobs = launch.list_jobs(workspace, kind)
    if as_json:
        print(json.dumps([asdict(job) for job in jobs], indent=2))
        return OK
    if not jobs:
        print(f"No {kind} jobs yet.")
    for job in jobs:
        started = time.strftime("%Y-%m-%d %H:%M", time.localtime(job.started_at))
        summary = job_summary(launch.job_dir(workspace, kind, job.id))
        print(f"{job.id}  {job.state:<9} {started}  {summary or job.message}")
    return OK


def job_summary(path: Path) -> str:
    """What a job has done so far, from its latest counters: requests and examples stored
    (capture), or examples added and dollars spent (synth)."""
    from workbench.jobs import read_events

    totals: dict[str, Any] = {}
    for event in read_events(path):
        if event.get("type") in ("progress", "call"):
            totals = event
        elif event.get("type") == "finished" and event.get("totals"):
            totals = event["totals"]
    if "stored" in totals:
        return f"{totals['requests']} requests, {totals['stored']} stored for review"
    if "total_added" in totals or "job_cost_usd" in totals:
        added = totals.get("total_added", totals.get("added", 0))
        cost = totals.get("total_cost_usd", totals.get("job_cost_usd", 0.0))
        return f"{added} examples added, ${cost:.4f} spent"
    return ""


def _stop_all(workspace: Workspace, kind: launch.CollectKind, as_json: bool) -> int:
    jobs = launch.running(workspace, kind)
    stopped = [launch.stop(workspace, kind, job.id) for job in jobs]
    if as_json:
        print(json.dumps([asdict(job) for job in stopped]))
    elif not stopped:
        print(f"No {kind} job is running.")
    for job in stopped if not as_json else []:
        print(f"{job.id}: {job.state} {job.message}".rstrip())
    return OK


# --- review ----------------------------------------------------------------------------------


def _add_review(commands: Any) -> None:
    sub = command(
        commands, "review", "list, accept or reject captured and synthetic examples", cmd_list
    )
    actions = sub.add_subparsers(title="actions", metavar="ACTION")
    listing = command(actions, "list", "candidates waiting for review", cmd_list)
    listing.add_argument("--origin", choices=review.ORIGINS)
    listing.add_argument("--limit", type=int, default=50)
    json_option(listing)
    for name, handler, text in (
        ("accept", cmd_accept, "accept candidates (flag them ok)"),
        ("reject", cmd_reject, "reject candidates (delete them; undoable)"),
    ):
        action = command(actions, name, text, handler)
        action.add_argument("ids", nargs="*", type=int, metavar="ID")
        action.add_argument("--all", action="store_true", help="every waiting candidate")
        action.add_argument("--origin", choices=review.ORIGINS)


def cmd_list(args: argparse.Namespace) -> int:
    workspace = resolve_workspace(args)
    origin = getattr(args, "origin", None)
    with ExampleStore(workspace.db_path) as store:
        found = review.list_candidates(store, origin, limit=getattr(args, "limit", 50))
        counts = review.count_candidates(store)
    if getattr(args, "json", False):
        print(json.dumps({"counts": counts, "candidates": [asdict(c) for c in found]}))
        return OK
    print(f"{counts['captured']} captured and {counts['synthetic']} synthetic waiting for review")
    for candidate in found:
        line = f"{candidate.id:>6}  {candidate.origin:<9}  {candidate.model:<20}"
        print(f"{line}  {candidate.preview}")
    return OK


def _chosen(args: argparse.Namespace, store: ExampleStore) -> list[int]:
    if args.all:
        return review.candidate_ids(store, args.origin)
    if not args.ids:
        raise UsageError("name the candidates (IDs from `workbench review list`) or pass --all")
    waiting = set(review.candidate_ids(store))
    if missing := [i for i in args.ids if i not in waiting]:
        raise UsageError(f"not waiting for review: {', '.join(map(str, missing))}")
    return list(args.ids)


def cmd_accept(args: argparse.Namespace) -> int:
    with ExampleStore(resolve_workspace(args).db_path) as store:
        changed = review.accept(store, _chosen(args, store))
    print(f"Accepted {changed} example(s).")
    return OK


def cmd_reject(args: argparse.Namespace) -> int:
    with ExampleStore(resolve_workspace(args).db_path) as store:
        changed = review.reject(store, _chosen(args, store))
    print(f"Rejected {changed} example(s) (undo on the Data screen).")
    return OK
