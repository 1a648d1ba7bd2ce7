"""From verdicts to a score: both orders per pair, W/T/L, win rate and its bootstrap interval.

Each pair is judged twice: `cb` puts the candidate (fine-tuned model) in slot A and the baseline
in slot B, `bc` the other way round. The candidate wins a pair only when both orders say so (and
loses only when both say the baseline is better); any other combination is a tie, and when the
two orders differ it also counts as a disagreement (position bias). Identical outputs are a tie
without a call and are left out of the disagreement rate.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from workbench.evaluate.events import Outcome

Side = Literal["candidate", "baseline", "tie"]
Order = Literal["cb", "bc"]
ORDERS: tuple[Order, Order] = ("cb", "bc")
BOOTSTRAP_RESAMPLES = 2000
_OUTCOME_OF_SIDE: dict[Side, Outcome] = {"candidate": "win", "baseline": "loss", "tie": "tie"}
_SCORE: dict[Outcome, float] = {"win": 1.0, "tie": 0.5, "loss": 0.0}


def side_of(winner: str, order: Order) -> Side:
    """Which side a verdict for slot A, slot B or a tie favours, given the order."""
    if winner == "tie":
        return "tie"
    slots: tuple[Side, Side] = (
        ("candidate", "baseline") if order == "cb" else ("baseline", "candidate")
    )
    return slots[0] if winner == "A" else slots[1]


def combine(cb: Side, bc: Side) -> tuple[Outcome, bool]:
    """The pair's outcome for the candidate, and whether the two orders disagreed."""
    if cb == bc:
        return _OUTCOME_OF_SIDE[cb], False
    return "tie", True


@dataclass(frozen=True)
class Tally:
    """Outcomes over the pairs that were judged (items with errors are not in it)."""

    wins: int = 0
    ties: int = 0
    losses: int = 0
    disagreements: int = 0
    identical: int = 0

    @property
    def n(self) -> int:
        return self.wins + self.ties + self.losses

    @property
    def judged_pairs(self) -> int:
        """Pairs judged in both orders (identical outputs need no judge)."""
        return self.n - self.identical

    @property
    def win_rate(self) -> float | None:
        """(W + 0.5 T) / N; None with no pairs."""
        return (self.wins + 0.5 * self.ties) / self.n if self.n else None

    @property
    def disagreement_rate(self) -> float | None:
        """Share of judged pairs whose two orders disagreed; None with none judged."""
        return self.disagreements / self.judged_pairs if self.judged_pairs else None


def tally(results: Iterable[tuple[Outcome, bool, bool]]) -> Tally:
    """Count (outcome, disagreed, identical) triples."""
    counts = {"win": 0, "tie": 0, "loss": 0}
    disagreements = identical = 0
    for outcome, disagreed, same in results:
        counts[outcome] += 1
        disagreements += disagreed
        identical += same
    return Tally(counts["win"], counts["tie"], counts["loss"], disagreements, identical)


def bootstrap_interval(
    wins: int,
    ties: int,
    losses: int,
    level: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> tuple[float | None, float | None]:
    """Percentile bootstrap interval of the win rate (resampling pairs); (None, None) if N = 0."""
    import numpy as np

    n = wins + ties + losses
    if n == 0:
        return None, None
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, [wins / n, ties / n, losses / n], size=resamples)
    rates = (counts[:, 0] + 0.5 * counts[:, 1]) / n
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(rates, [tail, 100 - tail])
    return float(low), float(high)


def score(outcome: Outcome) -> float:
    """1 for a win, 0.5 for a tie, 0 for a loss."""
    return _SCORE[outcome]
