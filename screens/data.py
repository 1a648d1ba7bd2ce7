"""The Data screen: import, validate, browse and edit the training examples."""

from __future__ import annotations

from textual.app import ComposeResult

from screens.base import WorkbenchScreen
from screens.widgets.not_built import NotBuiltYet


class DataScreen(WorkbenchScreen):
    MODE = "data"
    HELP = """\
## Data
Your training examples: the input/output pairs the old pipeline produced.
Import them, find and fix bad ones, strip the old pipeline's instructions, and split off a
validation set.
"""

    def compose_body(self) -> ComposeResult:
        yield NotBuiltYet(
            "Data",
            [
                "import OpenAI-chat, ShareGPT, Alpaca, prompt/completion JSONL, CSV and Parquet",
                "validate every example and list the problems with file and line",
                "strip the old pipeline's instruction prompt, keeping only the inputs",
                "find exact and near duplicates",
                "browse, search, edit, tag, flag and delete examples (with undo)",
                "split off validation and test sets",
            ],
            [
                "the sample pairs are in sample_data/imports/seo_pairs.jsonl",
                "workbench config show        see every setting",
            ],
        )
