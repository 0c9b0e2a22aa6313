"""Which markets are refused (README, "Which markets are refused"): only where alpha Q >= P0 or
TWAP or VWAP would execute a step at a price <= 0; a market where only the agent's largest trade
would is warned about once and runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from rl_order_execution.cli import app
from rl_order_execution.config import Settings, SettingsError, SimulationSettings
from rl_order_execution.experiment import market_warnings
from rl_order_execution.market import MarketParams
from rl_order_execution.market.positivity import (
    LARGEST,
    TWAP,
    VWAP,
    WHOLE_ORDER,
    Execution,
    largest_trades,
    refused_execution,
    risky_largest_trade,
)

runner = CliRunner()
QUICK = ["--episodes", "40", "--eval-episodes", "100", "--no-best-params"]


def _profile(tmp_path: Path, thin_step: int) -> Path:
    """50 bins, one of them a tenth of the mean volume (mean 49: 49 bins of 49.9 and one of 4.9)."""
    bins = [49.9] * 50
    bins[thin_step] = 4.9
    path = tmp_path / "profile.csv"
    path.write_text("\n".join(map(str, bins)) + "\n")
    return path


def test_the_rule_by_hand_on_plain_numbers() -> None:
    betas = np.full(4, 1.0)
    # TWAP sells 25 a step: 100 - 0 - 25 = 75 > 0; VWAP sells all 100 at step 0: 100 - 100 = 0
    vwap = refused_execution(100.0, 0.0, 100.0, betas, np.array([1.0, 0.0, 0.0, 0.0]))
    assert vwap == Execution(VWAP, 0, 100.0, 0.0)
    # alpha 0.5: TWAP's last step after 75 shares: 100 - 37.5 - 25 = 37.5; beta 3: -12.5
    assert refused_execution(100.0, 0.5, 100.0, betas, np.full(4, 0.25)) is None
    twap = refused_execution(100.0, 0.5, 100.0, 3 * betas, np.full(4, 0.25))
    assert twap == Execution(TWAP, 3, 25.0, -12.5)
    assert refused_execution(100.0, 1.0, 100.0, betas, np.full(4, 0.25)) == Execution(
        WHOLE_ORDER, 3, 100.0, 0.0
    )
    # the largest trade with the whole order held: min(Q, 5 Q / (N - k)), all of it at the end
    np.testing.assert_allclose(largest_trades(100.0, 4, 5.0, "remaining"), [100, 100, 100, 100])
    np.testing.assert_allclose(largest_trades(100.0, 10, 2.0, "initial"), [20] * 9 + [100])
    np.testing.assert_allclose(largest_trades(100.0, 4, 1.0, "remaining"), [25, 100 / 3, 50, 100])
    risky = risky_largest_trade(100.0, np.array([0.1, 0.1, 0.1, 2.0]), np.full(4, 100.0))
    assert risky == Execution(LARGEST, 3, 100.0, -100.0)


@pytest.mark.parametrize(
    "changes",
    [
        {"liquidity_param": 0.01, "temp_impact_param": 0.1},  # 2nd edition: 100 <= 100
        {"liquidity_param": 0.01, "temp_impact_param": 0.5},  # TWAP's last step: 100 - 9.8 - 10
        {"liquidity_param": 0.0999, "temp_impact_param": 0.0999},
        {"start_price": 80.0, "volume_profile": "u_shape"},  # 2nd edition: 80 <= 89
    ],
)
def test_markets_the_second_edition_refused_for_an_extreme_trade_now_load(
    changes: dict[str, Any],
) -> None:
    assert MarketParams.from_settings(SimulationSettings(**changes)).refused() is None


def test_a_profile_with_a_step_at_a_tenth_of_the_mean_volume_runs(tmp_path: Path) -> None:
    profile = _profile(tmp_path, thin_step=10)
    sim = SimulationSettings(volume_profile=str(profile))
    p = MarketParams.from_settings(sim)
    assert p.betas[10] == pytest.approx(0.5)  # beta / (N w_k), w_k = 0.1 / N
    # the Double DQN's largest trade there is 5 x 1000 / 40 = 125 shares: 100 - 62.5 > 0
    assert market_warnings(Settings(simulation=sim), p) == []
    config = tmp_path / "config.yaml"
    config.write_text(f"simulation:\n  volume_profile: {profile}\nlogging:\n  tensorboard: false\n")
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", "--config", str(config), "--output-dir", str(out), *QUICK])
    assert result.exit_code == 0, result.output
    assert "warning: the largest trade" not in result.output


def test_a_market_where_only_the_largest_trade_prices_below_zero_warns_once_and_runs(
    tmp_path: Path,
) -> None:
    """The thin step is the last: TWAP sells 20 there at 100 - 0.01 x 980 - 0.5 x 20 = 80.2, but
    the whole order held until then sells 1000 at 100 - 0.5 x 1000 = -400."""
    profile = _profile(tmp_path, thin_step=49)
    config = tmp_path / "config.yaml"
    config.write_text(f"simulation:\n  volume_profile: {profile}\nlogging:\n  tensorboard: false\n")
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", "--config", str(config), "--output-dir", str(out), *QUICK])
    assert result.exit_code == 0, result.output
    expected = (
        "the largest trade would sell 1000 shares at step 49 with the whole order held at a "
        "price of -400 (<= 0) on the path without shocks: the ddqn agent may trade 5x the TWAP "
        "rate (the largest action_multipliers entry), at most the whole order, and all of it at "
        "the last step"
    )
    assert result.output.count("warning: the largest trade") == 1
    assert f"warning: {expected}" in result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["warnings"][0] == expected
    # PPO and SAC: their max_multiplier (10) is the largest speed
    sim = SimulationSettings(volume_profile=str(profile))
    ppo = Settings(simulation=sim, rl={"agent": "ppo"})
    (line,) = market_warnings(ppo, MarketParams.from_settings(sim))
    assert "the ppo agent may trade 10x the TWAP rate (max_multiplier)" in line


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"liquidity_param": 0.1, "temp_impact_param": 0.06},
            "liquidity_param 0.1 x total_shares 1000 >= start_price 100: selling the whole order "
            "(1000 shares by step 49) would leave the mid at 0 by permanent impact alone",
        ),
        (
            {"temp_impact_param": 5.0},  # TWAP's last step: 100 - 0.01 x 980 - 5 x 20
            "temp_impact_param 5: TWAP would sell 20 shares at step 49 at a price of -9.8 (<= 0) "
            "on the path without shocks",
        ),
    ],
)
def test_nonsense_markets_are_refused(changes: dict[str, float], message: str) -> None:
    sim = SimulationSettings(**changes)  # the settings' own checks pass: the market is refused
    with pytest.raises(SettingsError) as refused:
        MarketParams.from_settings(sim)
    assert message in str(refused.value)


def test_a_nonsense_market_exits_2_with_one_line(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("simulation:\n  temp_impact_param: 5\n")
    result = runner.invoke(app, ["run", "--config", str(config), *QUICK])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.startswith("error")]
    assert lines == [
        "error: setting simulation: temp_impact_param 5: TWAP would sell 20 shares at step 49 at "
        "a price of -9.8 (<= 0) on the path without shocks; lower temp_impact_param or "
        "liquidity_param, or raise start_price"
    ]


def test_the_convexity_check_is_unchanged() -> None:
    with pytest.raises(ValidationError, match="not convex"):
        SimulationSettings(liquidity_param=0.1, temp_impact_param=0.05)
    with pytest.raises(ValidationError, match="not convex"):
        Settings.model_validate(
            {
                "simulation": {"price_model": "replay", "liquidity_param": 0.2},
                "replay": {"impact": "absolute"},
            }
        )
    # relative replay does not use the $ parameters, so it does not check them
    Settings.model_validate({"simulation": {"price_model": "replay", "liquidity_param": 0.2}})
