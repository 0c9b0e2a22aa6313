"""The share of the exact optimum's advantage captured: paired with the optimum on the same
test episodes, so that the episodes' luck, which every strategy shares with the optimum, cancels."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from rl_order_execution.cli import app
from rl_order_execution.evaluation import Evaluation, StrategyMetrics, evaluate, optimum_gap
from rl_order_execution.evaluation.statistics import Z95, gap_captured, standard_error
from rl_order_execution.market import MarketParams, shock_matrix
from rl_order_execution.strategies import TWAP, OptimalStrategy, SnappedOptimalStrategy, Strategy

MEAN_REVERTING = MarketParams(price_model="ou", sigma=0.004, lam=0.0)  # the preset's market


def _shares(
    p: MarketParams, seed: int, episodes: int, with_optimum: bool = True
) -> tuple[Evaluation, dict[str, StrategyMetrics]]:
    strategies: list[Strategy] = [TWAP(), SnappedOptimalStrategy()]
    if with_optimum:
        strategies.insert(1, OptimalStrategy())
    ev = evaluate(p, strategies, shock_matrix(p, seed, episodes, True), True)
    return ev, ev.metrics(exact_gap=optimum_gap(p))


def test_the_share_is_the_saving_over_the_optimums_saving_on_the_same_episodes() -> None:
    ev, metrics = _shares(MEAN_REVERTING, 7, 2_000)
    twap = ev.outcomes["twap"].cost
    saving = twap - ev.outcomes["optimal-snapped"].cost
    optimum = twap - ev.outcomes["optimal"].cost
    share = metrics["optimal-snapped"].gap_captured
    assert share is not None and share.gap is not None
    assert share.value == pytest.approx(saving.mean() / optimum.mean(), rel=1e-12)
    assert share.gap == pytest.approx(optimum.mean(), rel=1e-12)
    assert share.exact_gap == optimum_gap(MEAN_REVERTING)
    # the delta-method interval, with antithetic pairs as the independent units
    se = standard_error((saving - share.value * optimum) / optimum.mean(), antithetic=True)
    assert share.ci95_high - share.value == pytest.approx(Z95 * se, rel=1e-9)
    assert share.value - share.ci95_low == pytest.approx(Z95 * se, rel=1e-9)
    # the optimum captures all of its own advantage, whatever the episodes' luck
    own = metrics["optimal"].gap_captured
    assert own is not None and (own.value, own.ci95_low, own.ci95_high) == (1.0, 1.0, 1.0)
    assert metrics["twap"].gap_captured is not None and metrics["twap"].gap_captured.value == 0


def test_the_paired_share_is_steadier_across_test_sets_than_a_saving_over_the_exact_gap() -> None:
    """Eight independent test sets of 2,000 episodes on the mean-reverting market: a saving divided
    by the exact gap moves with each set's luck; the paired share hardly moves, and both estimate
    the same ratio."""
    paired, unpaired, half_widths = [], [], []
    for seed in range(8):
        ev, metrics = _shares(MEAN_REVERTING, 100 + seed, 2_000)
        share = metrics["optimal-snapped"].gap_captured
        assert share is not None
        saving = ev.outcomes["twap"].cost - ev.outcomes["optimal-snapped"].cost
        paired.append(share.value)
        unpaired.append(float(saving.mean()) / optimum_gap(MEAN_REVERTING))
        half_widths.append(share.ci95_high - share.value)
    assert np.std(paired) < 0.5 * np.std(unpaired)
    se_unpaired = np.std(unpaired, ddof=1) / math.sqrt(len(unpaired))
    assert abs(np.mean(paired) - np.mean(unpaired)) < 4 * se_unpaired
    # the interval is honest: its half-width is of the order of the spread across test sets
    assert 0.5 < np.mean(half_widths) / (Z95 * np.std(paired, ddof=1)) < 2.0


def test_without_the_optimum_or_with_lots_the_share_is_a_saving_over_the_exact_gap() -> None:
    for p, with_optimum in ((MEAN_REVERTING, False), (MarketParams(lot_size=7.0), True)):
        ev, metrics = _shares(p, 3, 400, with_optimum)
        share = metrics["optimal-snapped"].gap_captured
        saving = ev.outcomes["twap"].cost - ev.outcomes["optimal-snapped"].cost
        assert share is not None and share.gap is None and "gap" not in share.to_json()
        assert share.value == pytest.approx(saving.mean() / optimum_gap(p), rel=1e-12)


def test_no_share_where_the_optimum_is_twap_or_does_no_better_on_the_episodes() -> None:
    twap = np.full(10, 5.0)
    assert gap_captured(twap, twap - 1.0, 1e-13, optimum=twap - 1.0) is None  # no advantage
    # an exact advantage, but an optimum that did no better than TWAP on these episodes
    assert gap_captured(twap, twap - 1.0, 1.0, optimum=twap + 0.5) is None


def test_evaluate_on_fresh_test_episodes_with_eval_seed(tmp_path: Path) -> None:
    """`rl-exec evaluate --eval-seed`: the same agent on other test episodes; the same seed twice
    gives the same numbers, and a bad seed is refused in one line naming the setting."""
    checkpoint = Path(__file__).parent / "data" / "old_ddqn" / "model.pt"
    runner = CliRunner()

    def run(seed: int, folder: str) -> dict[str, Any]:
        out = tmp_path / folder
        args = ["evaluate", "--checkpoint", str(checkpoint), "--output-dir", str(out)]
        result = runner.invoke(app, [*args, "--eval-episodes", "200", "--eval-seed", str(seed)])
        assert result.exit_code == 0, result.output
        data: dict[str, Any] = json.loads((out / "metrics.json").read_text())
        return data

    first, again, other = run(11, "a"), run(11, "b"), run(12, "c")
    assert first["evaluation_seed"] == 11 and other["evaluation_seed"] == 12
    assert first["strategies"] == again["strategies"]
    assert first["strategies"]["agent"]["cost_mean"] != other["strategies"]["agent"]["cost_mean"]
    result = runner.invoke(app, ["evaluate", "--checkpoint", str(checkpoint), "--eval-seed", "-1"])
    assert result.exit_code == 2
    assert "evaluation.seed" in result.output and "Traceback" not in result.output


def test_the_report_says_what_the_share_divides_by() -> None:
    from rl_order_execution.reporting.tables import gap_note

    _, metrics = _shares(MEAN_REVERTING, 7, 400)
    share = metrics["optimal-snapped"].gap_captured
    assert share is not None and share.gap is not None
    note = gap_note(metrics)
    assert note is not None and "on these episodes" in note
    assert f"{share.gap:,.2f} $" in note and f"{share.exact_gap:,.2f} $" in note
    _, unpaired = _shares(MEAN_REVERTING, 7, 400, with_optimum=False)
    assert "expected advantage" in (gap_note(unpaired) or "")
    assert gap_note({name: m for name, m in metrics.items() if name == "twap"}) is not None
    metrics_without = _shares(MarketParams(lam=0.0), 7, 400)[1]  # the optimum is TWAP: no share
    assert gap_note(metrics_without) is None
