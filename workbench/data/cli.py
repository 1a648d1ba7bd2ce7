"""`workbench data ...`: import, validate, clean, split, export and describe examples from the
shell. Each command runs the same engine job the Data screen runs, and prints a summary."""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from workbench.cliutil import (
    OK,
    PROBLEMS,
    UsageError,
    command,
    json_option,
    resolve_workspace,
)
from workbench.config import WorkbenchConfig
from workbench.data.formats import (
    INPUT_FORMATS,
    OUTPUT_FORMATS,
    Columns,
    FormatError,
    export_examples,
)
from workbench.data.readers import ReadError
from workbench.data.store import Split
from workbench.workspace import find_workspace, open_workspace


def register(commands: Any) -> None:
    sub = command(
        commands,
        "data",
        "import, validate, clean, split, export and describe examples",
        _usage(commands),
    )
    actions = sub.add_subparsers(title="actions", metavar="ACTION")
    _add_import(actions)
    _add_validate(actions)
    _add_export(actions)
    _add_stats(actions)
    _add_split(actions)
    _add_clean(actions)
    command(actions, "undo", "undo the last change to the examples", cmd_undo)
    command(actions, "redo", "redo the change undone last", cmd_redo)


def _usage(commands: Any) -> Any:
    def handler(args: argparse.Namespace) -> int:
        raise UsageError(
            "`workbench data` needs an action: import, validate, export, stats, split, clean, "
            "undo or redo (see `workbench data --help`)"
        )

    return handler


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _tokens_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--estimate",
        action="store_true",
        help="estimate token counts (4 characters a token) instead of loading the base "
        "model's tokenizer",
    )


def _counter(config: WorkbenchConfig, estimate: bool) -> Any:
    from workbench.data.tokens import estimate_counter, load_token_counter

    if estimate:
        return estimate_counter("--estimate was given")
    return load_token_counter(config.train.base_model)


# --- import ---------------------------------------------------------------------------------


def _add_import(actions: Any) -> None:
    imp = command(
        actions, "import", "import JSONL/JSON/CSV/Parquet files or dataset folders", cmd_import
    )
    imp.add_argument("files", nargs="+", type=Path, metavar="FILE")
    _format_options(imp)
    imp.add_argument(
        "--split",
        default="unassigned",
        choices=["unassigned", "train", "val", "test"],
        help="put the imported examples in this split (default: unassigned)",
    )
    json_option(imp)


def _format_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format",
        default="auto",
        choices=list(INPUT_FORMATS),
        help="the records' format (default: detected per file from its name and first record)",
    )
    parser.add_argument("--prompt-column", metavar="NAME", help="CSV: the prompt column")
    parser.add_argument("--completion-column", metavar="NAME", help="CSV: the answer column")
    parser.add_argument("--system-column", metavar="NAME", help="CSV: a system message column")


def _columns(args: argparse.Namespace) -> Columns | None:
    prompt, completion = args.prompt_column, args.completion_column
    if not prompt and not completion and not args.system_column:
        return None
    if not prompt or not completion:
        raise UsageError("give both --prompt-column and --completion-column")
    return Columns(prompt, completion, args.system_column)


def _existing(paths: Iterable[Path]) -> list[Path]:
    paths = list(paths)
    for path in paths:
        if not path.exists():
            raise UsageError(f"{path}: no such file or folder")
    return paths


def cmd_import(args: argparse.Namespace) -> int:
    from workbench.data.importer import FileFailed, FileImported, ImportFinished, import_files
    from workbench.data.validate import open_store

    workspace = resolve_workspace(args)
    paths = _existing(args.files)
    finished: ImportFinished | None = None
    with open_store(workspace) as store:
        events = import_files(
            store,
            paths,
            fmt=args.format,
            columns=_columns(args),
            root=workspace.root,
            split=args.split,
            near_threshold=workspace.config.data.near_duplicate_threshold,
        )
        for event in events:
            if isinstance(event, ImportFinished):
                finished = event
            elif isinstance(event, FileImported | FileFailed) and not args.json:
                _print_file_result(event)
    assert finished is not None
    if args.json:
        _print_json(_import_dict(finished))
    else:
        _print_import_summary(finished)
    failed = any(isinstance(f, FileFailed) for f in finished.files)
    return PROBLEMS if finished.quarantined or failed else OK


def _print_file_result(event: Any) -> None:
    from workbench.data.importer import FileFailed

    if isinstance(event, FileFailed):
        print(f"{event.name}: not imported: {event.error}", file=sys.stderr)
        return
    print(f"{event.name}: {event.format}")
    print(
        f"  {event.imported:,} imported ({event.with_warnings:,} with warnings), "
        f"{event.quarantined:,} quarantined"
    )
    for finding in event.quarantine:
        print(f"  quarantined {finding.line()}")
    if event.quarantined > len(event.quarantine):
        print(f"  ... and {event.quarantined - len(event.quarantine):,} more quarantined lines")


def _print_import_summary(finished: Any) -> None:
    near = (
        f"{finished.near_duplicates:,} near"
        if finished.near_duplicates is not None
        else "near duplicates not checked (run `workbench data validate`)"
    )
    print(
        f"Imported {finished.imported:,} examples, quarantined {finished.quarantined:,} "
        f"in {finished.seconds:.1f} s. Duplicates: {finished.exact_duplicates:,} exact, {near}."
    )
    if finished.quarantined:
        print("Fix quarantined lines in the Data screen, or correct the file and import it again.")
    if finished.imported:
        print(f"Undo the whole import with `workbench data undo` ({finished.undo_label}).")


def _import_dict(finished: Any) -> dict[str, Any]:
    data = {key: value for key, value in vars(finished).items() if key != "files"}
    data["files"] = [
        {
            **{k: v for k, v in vars(f).items() if k != "quarantine"},
            "quarantine": [q.as_dict() for q in getattr(f, "quarantine", ())],
        }
        for f in finished.files
    ]
    return data


# --- validate --------------------------------------------------------------------------------


def _add_validate(actions: Any) -> None:
    val = command(
        actions,
        "validate",
        "report every problem as FILE:LINE: reason (no FILE: the workspace's examples); "
        "exit 1 when errors were found",
        cmd_validate,
    )
    val.add_argument("files", nargs="*", type=Path, metavar="FILE")
    _format_options(val)
    _tokens_option(val)
    json_option(val)


def _config_for_files(args: argparse.Namespace) -> WorkbenchConfig:
    """The workspace's settings when there is one (-w, or the current directory), else the
    defaults: validating files needs no workspace."""
    if getattr(args, "workspace", None) is not None:
        return resolve_workspace(args).config
    found = find_workspace(Path.cwd())
    return open_workspace(found).config if found else WorkbenchConfig()


def cmd_validate(args: argparse.Namespace) -> int:
    from workbench.data.validate import ValidateFinished, validate_files, validate_store

    cancel = threading.Event()
    findings: list[dict[str, Any]] = []
    finished: ValidateFinished | None = None
    if args.files:
        config = _config_for_files(args)
        counter = _counter(config, args.estimate)
        try:
            events = validate_files(
                _existing(args.files), config, cancel, args.format, _columns(args), counter
            )
            finished = _follow(events, findings, args.json)
        except (FormatError, ReadError) as exc:
            raise UsageError(str(exc)) from exc
    else:
        from workbench.data.validate import open_store

        workspace = resolve_workspace(args)
        config = workspace.config
        counter = _counter(config, args.estimate)
        with open_store(workspace) as store:
            finished = _follow(
                validate_store(store, workspace.config, cancel, counter), findings, args.json
            )
            quarantine = store.quarantined()
        _report_quarantine(quarantine, findings, args.json)
    assert finished is not None
    if args.json:
        _print_json({"findings": findings, "summary": vars(finished)})
    else:
        _print_validate_summary(finished, config.train.max_seq_length)
    has_errors = finished.errors > 0 or (not args.files and finished.quarantined > 0)
    return PROBLEMS if has_errors else OK


def _follow(events: Iterable[Any], findings: list[dict[str, Any]], as_json: bool) -> Any:
    """Print (or collect) findings as they come; return the final event."""
    from workbench.data.validate import ValidateFinished

    for event in events:
        if isinstance(event, ValidateFinished):
            if not as_json:
                for line in event.formats:
                    print(line)
            return event
        for finding in event.findings:
            if as_json:
                findings.append(finding.as_dict())
            else:
                print(finding.line())
    return None


def _report_quarantine(
    quarantine: list[dict[str, Any]], findings: list[dict[str, Any]], as_json: bool
) -> None:
    for row in quarantine:
        where = f"{row['source']}:{row['line']}" if row["line"] else row["source"]
        reason = "; ".join(row["reasons"])
        if as_json:
            findings.append(
                {"where": where, "severity": "error", "code": "quarantined", "message": reason}
            )
        else:
            print(f"{where}: error: quarantined: {reason}")


def _print_validate_summary(finished: Any, config_limit: int) -> None:
    codes = ", ".join(f"{code} {count:,}" for code, count in finished.by_code.items())
    print(
        f"Checked {finished.checked:,} examples: {finished.errors:,} errors, "
        f"{finished.warnings:,} warnings{f' ({codes})' if codes else ''}."
    )
    if finished.quarantined:
        print(
            f"{finished.quarantined:,} lines wait in the quarantine (fix them in the Data screen)."
        )
    print(f"Tokens: {finished.token_note}.")
    too_long = finished.by_code.get("too-long", 0)
    if finished.checked and too_long > finished.checked / 2:
        print(
            f"Most examples are longer than train.max_seq_length ({config_limit:,}): a shared "
            "instruction may be the cause (`workbench data clean --instructions` strips it), "
            "or raise the limit (`workbench config set train.max_seq_length=...`)."
        )


# --- export ----------------------------------------------------------------------------------


def _add_export(actions: Any) -> None:
    exp = command(actions, "export", "write examples to a file", cmd_export)
    exp.add_argument("--out", type=Path, required=True, metavar="PATH")
    exp.add_argument(
        "--format",
        default="openai",
        choices=list(OUTPUT_FORMATS),
        help="openai, sharegpt, alpaca, prompt-completion: JSON Lines (a JSON array if PATH "
        "ends in .json); csv; parquet; hf: a `save_to_disk` folder",
    )
    exp.add_argument(
        "--split", default="all", choices=["all", "train", "val", "test", "unassigned"]
    )
    exp.add_argument("--include-bad", action="store_true", help="also the examples flagged bad")
    json_option(exp)


def cmd_export(args: argparse.Namespace) -> int:
    from workbench.data.validate import open_store

    workspace = resolve_workspace(args)
    split: Split | None = None if args.split == "all" else args.split
    try:
        with open_store(workspace) as store:
            count = export_examples(store, args.out, args.format, split, args.include_bad)
    except FormatError as exc:
        raise UsageError(str(exc)) from exc
    if args.json:
        _print_json({"path": str(args.out), "format": args.format, "examples": count})
    else:
        print(f"Wrote {count:,} examples to {args.out} ({args.format})")
    return OK


# --- stats -----------------------------------------------------------------------------------


def _add_stats(actions: Any) -> None:
    stats = command(actions, "stats", "counts, token lengths, duplicates, problems", cmd_stats)
    _tokens_option(stats)
    json_option(stats)


def cmd_stats(args: argparse.Namespace) -> int:
    from workbench.data.stats import compute_stats
    from workbench.data.validate import open_store

    workspace = resolve_workspace(args)
    counter = _counter(workspace.config, args.estimate)
    with open_store(workspace) as store:
        stats = compute_stats(store, workspace.config, counter)
    if args.json:
        _print_json(stats.as_dict())
        return OK
    _print_stats(stats)
    return OK


def _print_stats(stats: Any) -> None:
    splits = ", ".join(f"{name} {count:,}" for name, count in stats.splits.items())
    flags = ", ".join(f"{name} {count:,}" for name, count in stats.flags.items())
    print(f"Examples: {stats.examples:,} ({splits})")
    print(f"Flags: {flags}; deleted {stats.deleted:,}; quarantined {stats.quarantined:,}")
    tokens = stats.tokens
    print(
        f"Tokens per example: mean {tokens.mean:,.0f}, median {tokens.p50:,}, p90 {tokens.p90:,},"
        f" p99 {tokens.p99:,}, max {tokens.max:,}; {tokens.over_limit:,} longer than "
        f"train.max_seq_length {tokens.limit:,} ({tokens.note})"
    )
    peak = max(tokens.histogram.counts, default=0) or 1
    for label, count in tokens.histogram.rows():
        print(f"  {label:>11} {'#' * round(30 * count / peak):<30} {count:,}")
    near = f"{stats.near_duplicates:,}" if stats.near_duplicates is not None else "not counted"
    print(f"Duplicates: {stats.exact_duplicates:,} exact copies, {near} near copies")
    if stats.problems:
        problems = ", ".join(f"{code} {count:,}" for _, code, count in stats.problems)
        print(f"Problems: {problems}")
    if stats.tags:
        print("Tags: " + ", ".join(f"{tag} {count:,}" for tag, count in stats.tags))


# --- split -----------------------------------------------------------------------------------


def _add_split(actions: Any) -> None:
    split = command(actions, "split", "assign train/val/test deterministically", cmd_split)
    split.add_argument(
        "--val",
        metavar="N|FRACTION",
        help="validation size: a number of examples or a share (default: data.val_fraction, "
        "or a size suggested from the dataset's size when that is 0)",
    )
    split.add_argument(
        "--test", metavar="N|FRACTION", help="test size (default: data.test_fraction)"
    )
    split.add_argument("--seed", type=int, default=None, help="default: data.split_seed")
    split.add_argument(
        "--by-tag", action="store_true", help="split each tag combination in the same proportions"
    )
    json_option(split)


def cmd_split(args: argparse.Namespace) -> int:
    from workbench.data.split import SplitError, apply_split, parse_size, plan_split
    from workbench.data.validate import open_store

    workspace = resolve_workspace(args)
    data = workspace.config.data
    try:
        val = parse_size(args.val) if args.val else (data.val_fraction or None)
        test = parse_size(args.test) if args.test else data.test_fraction
        seed = data.split_seed if args.seed is None else args.seed
        with open_store(workspace) as store:
            plan = plan_split(
                store,
                val,
                test,
                seed,
                args.by_tag,
                near_duplicates=store.count() <= 50_000,
                near_threshold=data.near_duplicate_threshold,
            )
            moved = apply_split(store, plan)
    except SplitError as exc:
        raise UsageError(str(exc)) from exc
    if args.json:
        _print_json(
            {
                "counts": plan.counts,
                "moved": moved,
                "seed": seed,
                "held_for_review": plan.held,
                "note": plan.note,
            }
        )
        return OK
    if plan.note:
        print(plan.note.capitalize())
    counts = plan.counts
    print(
        f"Split {sum(counts.values()):,} examples: train {counts['train']:,}, "
        f"val {counts['val']:,}, test {counts['test']:,} (seed {seed}); {moved:,} moved."
    )
    return OK


# --- clean -----------------------------------------------------------------------------------


def _add_clean(actions: Any) -> None:
    clean = command(
        actions,
        "clean",
        "strip shared instructions, tag duplicates, normalize whitespace (preview unless --apply)",
        cmd_clean,
    )
    clean.add_argument(
        "--instructions", action="store_true", help="strip the old pipeline's shared instruction"
    )
    clean.add_argument(
        "--no-variants",
        action="store_true",
        help="with --instructions: leave the variants of an instruction alone",
    )
    clean.add_argument(
        "--dedupe", action="store_true", help="tag exact and near duplicates (first one kept)"
    )
    clean.add_argument("--whitespace", action="store_true", help="normalize whitespace")
    clean.add_argument("--apply", action="store_true", help="make the changes (one undo each)")
    json_option(clean)


def cmd_clean(args: argparse.Namespace) -> int:
    from workbench.data import clean
    from workbench.data.validate import open_store

    if not (args.instructions or args.dedupe or args.whitespace):
        raise UsageError("say what to clean: --instructions, --dedupe and/or --whitespace")
    workspace = resolve_workspace(args)
    report: dict[str, Any] = {}
    with open_store(workspace) as store:
        if args.instructions:
            report["instructions"] = _clean_instructions(store, args)
        if args.dedupe:
            plan = clean.plan_dedupe(store, workspace.config.data.near_duplicate_threshold)
            changed = clean.apply_dedupe(store, plan) if args.apply else 0
            report["dedupe"] = {
                "exact": sum(len(g.copies) for g in plan.exact),
                "near": sum(len(g.copies) for g in plan.near),
                "tagged": changed,
            }
        if args.whitespace:
            preview = clean.preview_whitespace(store)
            changed = clean.normalize_whitespace(store) if args.apply else 0
            report["whitespace"] = {"examples": preview.examples_changed, "changed": changed}
    if args.json:
        _print_json(report)
    else:
        _print_clean(report, args.apply)
    return OK


def _clean_instructions(store: Any, args: argparse.Namespace) -> dict[str, Any]:
    from workbench.data import clean

    preview = clean.find_instructions(store)
    changed = 0
    if args.apply and preview.instructions:
        changed = clean.strip_instructions(store, preview.instructions, not args.no_variants)
    return {
        "found": [i.describe() for i in preview.instructions],
        "examples": preview.examples_changed,
        "tokens_before": preview.tokens_before,
        "tokens_saved": preview.tokens_saved,
        "changed": changed,
    }


def _print_clean(report: dict[str, Any], applied: bool) -> None:
    if "instructions" in report:
        found = report["instructions"]
        for line in found["found"] or ["no shared instruction found"]:
            print(f"Instructions: {line}")
        if found["found"]:
            share = found["tokens_saved"] / max(1, found["tokens_before"])
            verb = "Stripped from" if applied else "Stripping changes"
            print(
                f"  {verb} {found['examples']:,} examples, saving about "
                f"{found['tokens_saved']:,} tokens ({share:.0%} of all tokens)"
            )
    if "dedupe" in report:
        dedupe = report["dedupe"]
        verb = "tagged" if applied else "would be tagged"
        print(
            f"Duplicates: {dedupe['exact']:,} exact and {dedupe['near']:,} near copies {verb} "
            "(`duplicate`, `near-duplicate`); the first of each group is kept"
        )
    if "whitespace" in report:
        verb = "normalized" if applied else "would change"
        print(f"Whitespace: {report['whitespace']['examples']:,} examples {verb}")
    if not applied:
        print("This was a preview: add --apply to make the changes (each one undoable).")


# --- undo, redo ------------------------------------------------------------------------------


def cmd_undo(args: argparse.Namespace) -> int:
    from workbench.data.validate import open_store

    with open_store(resolve_workspace(args)) as store:
        label = store.undo()
    print(f"Undone: {label}" if label else "Nothing to undo")
    return OK


def cmd_redo(args: argparse.Namespace) -> int:
    from workbench.data.validate import open_store

    with open_store(resolve_workspace(args)) as store:
        label = store.redo()
    print(f"Redone: {label}" if label else "Nothing to redo")
    return OK
