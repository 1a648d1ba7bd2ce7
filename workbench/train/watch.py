"""Watching the curves while a run trains: overfitting and memorizing warnings (pure Python)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from workbench.train.events import RunWarning, WarningKind

MEMORIZING_EVAL_LOSS = 0.05
"""An eval loss below this (nats per answer token) on held-out data is suspiciously low."""
OVERFITTING_RISES = 2
"""Consecutive evaluations with a higher eval loss (while train loss falls) that warn."""


@dataclass
class CurveWatch:
    """Fed every train loss and eval loss; returns a warning the first time each problem shows."""

    memorizing_below: float = MEMORIZING_EVAL_LOSS
    rises: int = OVERFITTING_RISES
    losses: list[tuple[int, float]] = field(default_factory=list)
    evals: list[tuple[int, float]] = field(default_factory=list)
    warned: set[str] = field(default_factory=set)

    def on_step(self, step: int, loss: float) -> None:
        self.losses.append((step, loss))

    def on_eval(self, step: int, eval_loss: float) -> RunWarning | None:
        """Record an evaluation; a warning if it shows overfitting or memorizing."""
        self.evals.append((step, eval_loss))
        if self._overfitting():
            return self._warn(
                "overfitting",
                f"eval loss has risen {self.rises} evaluations in a row "
                f"({self._eval_trend()}) while train loss keeps falling: the model is "
                "overfitting. Keep the best checkpoint (best/ is kept), or stop the run, "
                "lower epochs or the learning rate, or add examples.",
                step,
            )
        if eval_loss < self.memorizing_below:
            return self._warn(
                "memorizing",
                f"eval loss {eval_loss:.4f} is very low: the model may be memorizing. Check "
                "that validation examples are not copies of training ones (near duplicates "
                "count), and that the answers are not trivially repetitive.",
                step,
            )
        return None

    def _warn(self, kind: WarningKind, message: str, step: int) -> RunWarning | None:
        if kind in self.warned:
            return None
        self.warned.add(kind)
        return RunWarning(kind=kind, message=message, step=step)

    def _overfitting(self) -> bool:
        if len(self.evals) < self.rises + 1:
            return False
        recent = [loss for _, loss in self.evals[-(self.rises + 1) :]]
        rising = all(later > earlier for earlier, later in itertools.pairwise(recent))
        return rising and self._train_falling()

    def _train_falling(self) -> bool:
        """Mean train loss over the last eval interval is below the one `rises` intervals back."""
        bounds = [step for step, _ in self.evals[-(self.rises + 2) :]]
        if len(bounds) < self.rises + 1:
            bounds = [0, *bounds]
        earlier = self._mean_loss(bounds[0], bounds[1])
        latest = self._mean_loss(bounds[-2], bounds[-1])
        return earlier is not None and latest is not None and latest < earlier

    def _mean_loss(self, after: int, upto: int) -> float | None:
        values = [loss for step, loss in self.losses if after < step <= upto]
        return sum(values) / len(values) if values else None

    def _eval_trend(self) -> str:
        return " -> ".join(f"{loss:.3f}" for _, loss in self.evals[-(self.rises + 1) :])
