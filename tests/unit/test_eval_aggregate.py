"""The score of an eval: both orders per pair, W/T/L, win rate, interval, position bias, costs."""

from __future__ import annotations

import pytest

from workbench.evaluate.aggregate import (
    Tally,
    bootstrap_interval,
    combine,
    side_of,
    tally,
)
from workbench.evaluate.costs import api_cost, percentile, price_of


@pytest.mark.parametrize(
    ("cb", "bc", "expected"),
    [
        # cb: the fine-tuned model sits in slot A; bc: the old pipeline sits in slot A.
        ("A", "B", ("win", False)),
        ("B", "A", ("loss", False)),
        ("tie", "tie", ("tie", False)),
        ("A", "A", ("tie", True)),  # always slot A: pure position bias
        ("B", "B", ("tie", True)),
        ("A", "tie", ("tie", True)),  # one order only: not a win
        ("tie", "A", ("tie", True)),  # one order says the old pipeline is better: not a loss
    ],
)
def test_a_win_needs_both_orders_to_agree(cb: str, bc: str, expected: tuple[str, bool]) -> None:
    assert combine(side_of(cb, "cb"), side_of(bc, "bc")) == expected


def test_win_rate_counts_a_tie_as_half() -> None:
    counts = tally(
        [("win", False, False)] * 6 + [("tie", True, False)] * 3 + [("loss", False, False)]
    )
    assert (counts.wins, counts.ties, counts.losses, counts.n) == (6, 3, 1, 10)
    assert counts.win_rate == pytest.approx(0.75)


def test_disagreement_rate_leaves_identical_pairs_out() -> None:
    counts = tally(
        [("tie", True, False), ("win", False, False), ("tie", False, True), ("tie", False, True)]
    )
    assert counts.judged_pairs == 2
    assert counts.disagreement_rate == pytest.approx(0.5)


def test_no_pairs_has_no_rates() -> None:
    assert Tally().win_rate is None and Tally().disagreement_rate is None
    assert bootstrap_interval(0, 0, 0) == (None, None)


def test_interval_surrounds_the_rate_and_narrows_with_more_pairs() -> None:
    low, high = bootstrap_interval(12, 4, 4)
    assert low is not None and high is not None
    assert low < 0.7 < high
    wide = high - low
    low_big, high_big = bootstrap_interval(120, 40, 40)
    assert low_big is not None and high_big is not None
    assert low_big < 0.7 < high_big and high_big - low_big < wide / 2


def test_interval_is_reproducible_and_degenerate_when_all_agree() -> None:
    assert bootstrap_interval(7, 2, 3, seed=5) == bootstrap_interval(7, 2, 3, seed=5)
    assert bootstrap_interval(10, 0, 0) == (1.0, 1.0)


def test_prices_match_dated_model_names_and_cached_tokens_cost_less() -> None:
    prices = {"claude-sonnet-4-5": [3.0, 15.0], "claude-sonnet": [99.0, 99.0]}
    assert price_of("claude-sonnet-4-5-20250929", prices) == (3.0, 15.0)
    assert price_of("gpt-4o", prices) is None
    plain = api_cost("claude-sonnet-4-5", prices, 1_000_000, 100_000)
    assert plain == pytest.approx(3.0 + 1.5)
    read = api_cost("claude-sonnet-4-5", prices, 0, 0, cache_read_tokens=1_000_000)
    assert read == pytest.approx(0.3)
    batch = api_cost("claude-sonnet-4-5", prices, 1_000_000, 100_000, batch=True)
    assert batch == pytest.approx(plain / 2)


def test_latency_percentiles() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 95) == pytest.approx(95.05)
    assert percentile([], 50) is None
