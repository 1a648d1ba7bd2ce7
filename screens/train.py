"""The Train screen: configure QLoRA runs and watch them live."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Static

from screens.base import WorkbenchScreen
from screens.widgets.not_built import NotBuiltYet


class TrainScreen(WorkbenchScreen):
    MODE = "train"
    HELP = """\
## Train
Fine-tune the base model on the training split with QLoRA. Runs keep going in the background
when you close the app or lose SSH; reopening shows them live.
"""

    def compose_body(self) -> ComposeResult:
        train = self.workbench.workspace.config.train
        yield NotBuiltYet(
            "Train",
            [
                "edit the run settings below, with each default explained",
                "start, stop and resume runs that survive a dropped SSH connection",
                "chart loss and eval loss live; warn on overfitting, NaN and out-of-memory",
                "compare runs and sweeps, and keep the best checkpoint",
            ],
            [
                "workbench config keys        every setting, explained",
                "workbench config set train.lora_r=32",
            ],
        )
        yield Static(
            f"Current settings: base model [b]{train.base_model}[/b] · backend {train.backend} · "
            f"LoRA r={train.lora_r} alpha={train.lora_alpha} · lr {train.learning_rate:g} · "
            f"{train.epochs:g} epochs · batch {train.batch_size} · "
            f"max length {train.max_seq_length}",
            id="train-settings",
        )
