"""`workbench data ...`: import, validate, export, stats and split from the shell."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workbench.cliutil import command, json_option, not_built


def register(commands: Any) -> None:
    sub = command(
        commands,
        "data",
        "import, validate, export, describe and split examples",
        not_built("data"),
    )
    actions = sub.add_subparsers(title="actions", metavar="ACTION")
    imp = command(
        actions,
        "import",
        "import JSONL/CSV/Parquet files into the workspace",
        not_built("data import"),
    )
    imp.add_argument("files", nargs="+", type=Path, metavar="FILE")
    imp.add_argument(
        "--format",
        default="auto",
        choices=["auto", "openai", "sharegpt", "alpaca", "prompt-completion", "csv", "parquet"],
    )
    val = command(
        actions,
        "validate",
        "report every problem as FILE:LINE: reason",
        not_built("data validate"),
    )
    val.add_argument("files", nargs="*", type=Path, metavar="FILE")
    json_option(val)
    exp = command(actions, "export", "write examples to a file", not_built("data export"))
    exp.add_argument("--out", type=Path, required=True, metavar="PATH")
    exp.add_argument(
        "--format", default="openai", choices=["openai", "sharegpt", "alpaca", "parquet"]
    )
    exp.add_argument("--split", default="all", choices=["all", "train", "val", "test"])
    json_option(
        command(
            actions,
            "stats",
            "counts, token lengths, duplicates, problems",
            not_built("data stats"),
        )
    )
    split = command(
        actions, "split", "assign train/val/test deterministically", not_built("data split")
    )
    split.add_argument("--val", metavar="N|FRACTION")
    split.add_argument("--test", metavar="N|FRACTION")
    split.add_argument("--seed", type=int, default=0)
    split.add_argument("--by-tag", action="store_true")
