"""Replay impact in relative units (README, "Historical replay"): costs computed by hand from the
training sessions' volatility and volume, real-shaped minute bars at the defaults, the refusals
and the settings' errors."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from rl_order_execution.cli import app
from rl_order_execution.config import SettingsError, load_settings
from rl_order_execution.data import DataError, load_bars
from rl_order_execution.evaluation import evaluate
from rl_order_execution.evaluation.replay import replay_summary
from rl_order_execution.strategies import TWAP, VWAP
from tests.test_replay import _market, _random_bars, _write_bars

runner = CliRunner()
R = 0.001  # every training log-return is +R or -R


def _known_file(tmp_path: Path) -> Path:
    """10 sessions of 5 bars: 6 train and 2 validate with log-returns +R, -R, +R, -R and volumes
    10, 20, 10, 5, 5; 2 test sessions with known closes and volumes."""
    up = 100.0 * math.exp(R)
    closes = [[100.0, up, 100.0, up, 100.0] for _ in range(8)]
    volumes = [[10.0, 20.0, 10.0, 5.0, 5.0] for _ in range(8)]
    closes += [[50.0, 51.0, 49.5, 52.0, 50.5], [40.0, 39.0, 41.0, 40.5, 40.0]]
    volumes += [[10.0, 40.0, 2.0, 200.0, 7.0], [10.0, 10.0, 10.0, 10.0, 10.0]]
    return _write_bars(tmp_path / "known.csv", closes, volumes)


def _cost(
    path: list[float], n: list[float], beta: list[float], Q: float, P0: float, a: float, lam: float
) -> float:
    """C = IS + lam sum q_k^2 / Q of one schedule on one window (README, "One episode")."""
    q, cost = Q, 0.0
    for k, trade in enumerate(n):
        price = path[k] - a * (Q - q) - beta[k] * trade
        cost += trade * (P0 - price) + lam * q * q / Q
        q -= trade
    return cost


def test_twap_and_vwap_costs_on_known_bars_match_the_model_by_hand(tmp_path: Path) -> None:
    p = _market(_known_file(tmp_path))  # Q = 100, N = 4, P0 = 100, relative impact by default
    assert p.replay is not None
    Q, N, P0 = 100.0, 4, 100.0
    sigma = R * math.sqrt(24 / 23)  # 24 returns of +-R, mean 0, ddof 1
    B = 5.0  # bars per training session
    sigma_day = sigma * math.sqrt(B)
    rho, eta, gamma = 0.05, 0.142 * 0.05**-0.4, 0.314
    V = Q / rho
    beta = eta * P0 * sigma_day * N / V  # beta_k at the mean bar volume
    alpha = gamma * P0 * sigma_day * N / (V * B)
    lam = 2 * Q * (beta - alpha / 2) * (math.cosh(1.0 / N) - 1)
    assert p.sigma == pytest.approx(sigma, rel=1e-9)
    assert (p.beta, p.alpha, p.lam, p.V) == pytest.approx((beta, alpha, lam, V), rel=1e-9)
    test = p.replay.test
    assert len(test) == 2  # one window per test session (stride N = 4 on 5 bars)
    # vbar = 10: u = 10, 40, 2, 200 -> clip(u, 1, 100) -> beta_k = beta * 10 / that
    beta_k = [beta, beta / 4, 5 * beta, beta / 10]
    np.testing.assert_allclose(test.beta[0], beta_k, rtol=1e-9)
    np.testing.assert_allclose(test.volume[0], V / N * np.array([1.0, 4.0, 0.2, 20.0]))
    # the training profile: shares 0.2, 0.4, 0.2, 0.1, 0.1 -> the window's w of its 4 bars
    w = np.array([10.0, 20.0, 10.0, 5.0]) / 45.0
    np.testing.assert_allclose(test.w[0], w)
    path = [P0 * c / 50.0 for c in (50.0, 51.0, 49.5, 52.0)]
    twap = _cost(path, [Q / N] * N, beta_k, Q, P0, alpha, lam)
    vwap = _cost(path, list(Q * w), beta_k, Q, P0, alpha, lam)
    ev = evaluate(p, [TWAP(), VWAP()], test.shocks())
    assert ev.outcomes["twap"].cost[0] == pytest.approx(twap, rel=1e-9)
    assert ev.outcomes["vwap"].cost[0] == pytest.approx(vwap, rel=1e-9)
    # TWAP's temporary cost at the mean bar: N beta (Q/N)^2 = eta sigma_day rho of Q P0
    summary = replay_summary(ev, p.replay).impact
    assert summary.twap_temporary_cost_bps == pytest.approx(eta * sigma_day * rho * 1e4)
    assert summary.twap_temporary_cost_bps == pytest.approx(N * beta * (Q / N) ** 2 * p.bps)
    assert (summary.eta, summary.gamma, summary.sigma_day) == pytest.approx((eta, gamma, sigma_day))


def test_replay_settings_move_the_impact_as_the_model_says(tmp_path: Path) -> None:
    path = _known_file(tmp_path)
    base = _market(path)
    chosen = {"participation": 0.2, "temporary_impact": 0.3, "permanent_impact": 0.0}
    p = _market(path, chosen | {"urgency": 0.0})
    sigma_day = base.sigma * math.sqrt(5)
    volume = p.V  # V = Q / rho
    assert volume == pytest.approx(100 / 0.2)
    assert p.beta == pytest.approx(0.3 * 100 * sigma_day * 4 / volume)
    assert p.alpha == 0.0 and p.lam == 0.0  # no permanent impact, risk neutral
    assert base.beta == pytest.approx(0.142 * 0.05**-0.4 * 100 * sigma_day * 4 / 2000)


def _minute_file(tmp_path: Path, sessions: int = 10) -> Path:
    """Real-shaped US-equity minute bars, 14:30 to 21:00 UTC: a U-shaped volume, 3 % of the
    minutes missing (no trade), some bars with zero volume and some very thin ones."""
    rng = np.random.default_rng(21)
    rows = ["timestamp,close,volume"]
    minutes = np.arange(390)
    shape = 1.0 + 4.0 * ((minutes - 195) / 195) ** 2
    price = 150.0
    for day in range(sessions):
        kept = np.flatnonzero(rng.uniform(size=390) > 0.03)
        volume = rng.gamma(2.0, 500.0 * shape / 2.0)
        volume[rng.choice(390, 8, replace=False)] = 0.0  # empty bars
        volume[rng.choice(390, 8, replace=False)] = 1.0  # thin bars
        for i in kept:
            price *= math.exp(rng.normal(0.0, 0.001))
            hour, minute = divmod(14 * 60 + 30 + int(i), 60)
            stamp = f"2024-04-{day + 1:02d}T{hour:02d}:{minute:02d}:00Z"
            rows.append(f"{stamp},{price:.4f},{volume[i]:.0f}")
    path = tmp_path / "minutes.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_real_shaped_minute_bars_run_at_the_defaults(tmp_path: Path) -> None:
    path = _minute_file(tmp_path)
    p = _market(path, total_shares=1000.0, time_horizon=30)
    assert p.replay is not None
    assert p.replay.largest_beta == pytest.approx(10 * p.beta)  # empty bars cost 10 beta
    # the second edition's $ units refused this file (the largest beta_k = 0.5: 100 <= 500);
    # TWAP and VWAP price far above zero there, so it runs now in those units too
    absolute = _market(path, {"impact": "absolute"}, total_shares=1000.0, time_horizon=30)
    assert absolute.replay is not None and absolute.replay.largest_beta == pytest.approx(0.5)
    config = tmp_path / "minutes.yaml"
    config.write_text(
        "simulation:\n  price_model: replay\n  time_horizon: 30\n"
        f"replay:\n  path: {path}\n"
        "rl:\n  episodes: 16\n  n_envs: 8\n  learning_starts: 50\n  eval_interval: 8\n"
        "logging:\n  tensorboard: false\n  progress: false\n"
    )
    out = tmp_path / "run"
    args = ["run", "--config", str(config), "--no-best-params", "--output-dir", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    replay = json.loads((out / "metrics.json").read_text())["replay"]
    assert replay["impact"] == "relative"
    assert replay["twap_temporary_cost_bps"] == pytest.approx(
        replay["eta"] * replay["sigma_day"] * 0.05 * 1e4
    )


def test_a_replay_where_twap_would_sell_below_zero_is_refused_in_one_line(
    tmp_path: Path,
) -> None:
    path = _random_bars(tmp_path)  # 10 sessions of 6 bars; N = 4, Q = 100
    bars = load_bars(path)
    assert bars.volume is not None
    vbar = bars.volume[:36].mean()  # the 6 training sessions
    u = np.clip(bars.volume, vbar / 10, 20.0 / 0.01 * vbar)
    beta_max = float((20.0 * vbar / u).max())  # the thinnest bar, at temp_impact_param 20
    price = 100.0 - 0.01 * 75.0 - beta_max * 25.0  # TWAP's last step, after 75 shares
    config = tmp_path / "nonsense.yaml"
    config.write_text(
        "simulation:\n  price_model: replay\n  time_horizon: 4\n  total_shares: 100\n"
        "  temp_impact_param: 20\n"
        f"replay:\n  path: {path}\n  impact: absolute\n"
    )
    result = runner.invoke(app, ["config", "show", "--config", str(config), "--no-best-params"])
    assert result.exit_code == 0  # the settings alone are fine: the bars decide
    result = runner.invoke(
        app,
        ["run", "--config", str(config), "--no-best-params", "--output-dir", str(tmp_path / "r")],
    )
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.output
    assert f"TWAP would sell 25 shares at step 3 at a price of {price:.6g}" in lines[0]
    assert "thinnest replayed bar" in lines[0] and "temp_impact_param" in lines[0]
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("setting", "value", "allowed"),
    [
        ("participation", 0.0, "greater than 0"),
        ("participation", 1.5, "less than or equal to 1"),
        ("temporary_impact", 0.0, "greater than 0"),
        ("permanent_impact", -0.1, "greater than or equal to 0"),
        ("urgency", -1.0, "greater than or equal to 0"),
    ],
)
def test_bad_relative_impact_settings_are_one_line_each(
    setting: str, value: float, allowed: str
) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings({f"replay.{setting}": value}, None, None)
    message = str(refused.value)
    assert len(message.splitlines()) == 1
    assert message.startswith(f"setting replay.{setting}:") and allowed in message


def test_relative_impact_settings_with_absolute_impact_are_refused_one_line_each() -> None:
    given = {"participation": 0.1, "temporary_impact": 0.5, "permanent_impact": 0.3}
    overrides: dict[str, Any] = {f"replay.{k}": v for k, v in given.items()}
    overrides |= {"replay.urgency": 2.0, "replay.impact": "absolute"}
    with pytest.raises(SettingsError) as refused:
        load_settings(overrides, None, None)
    lines = str(refused.value).splitlines()
    assert len(lines) == 4
    for line, name in zip(lines, [*given, "urgency"], strict=True):
        assert line.startswith(f"setting replay.{name}: only used with replay.impact: relative")


def test_the_cli_exits_2_on_a_bad_participation(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("replay:\n  participation: 2\n")
    result = runner.invoke(app, ["config", "show", "--config", str(config), "--no-best-params"])
    assert result.exit_code == 2
    assert result.output.count("error:") == 1 and "setting replay.participation" in result.output


def test_dollar_impact_settings_on_a_relative_replay_get_one_note(tmp_path: Path) -> None:
    path = _random_bars(tmp_path)
    config = tmp_path / "replay.yaml"
    config.write_text(
        "simulation:\n  price_model: replay\n  time_horizon: 4\n  liquidity_param: 0.002\n"
        f"  risk_aversion: 0.3\nreplay:\n  path: {path}\n"
    )
    args = ["config", "show", "--config", str(config), "--no-best-params"]
    result = runner.invoke(app, args, env={"RL_SIMULATION__TEMP_IMPACT_PARAM": "0.02"})
    assert result.exit_code == 0, result.output
    notes = [line for line in result.output.splitlines() if line.startswith("note:")]
    assert notes == [
        "note: not used by replay with relative impact: simulation.liquidity_param (replaced by "
        "replay.permanent_impact), simulation.temp_impact_param (replaced by "
        "replay.temporary_impact), simulation.risk_aversion (replaced by replay.urgency); "
        "replay.impact: absolute uses them"
    ]
    config.write_text(config.read_text() + "  impact: absolute\n")
    result = runner.invoke(app, args)
    assert result.exit_code == 0 and "note:" not in result.output


def test_an_absolute_replay_is_the_second_editions_market(tmp_path: Path) -> None:
    """replay.impact: absolute takes alpha, beta, lambda and V from the settings, as before, and
    beta_k = beta vbar / clip(u, vbar / 10, (beta / alpha) vbar)."""
    path = _random_bars(tmp_path)
    p = _market(path, {"impact": "absolute"}, liquidity_param=0.002)
    assert (p.alpha, p.beta, p.lam, p.market_volume) == (0.002, 0.05, 0.1, None)
    assert p.replay is not None and not p.replay.impact.relative
    bars = load_bars(path)
    assert bars.volume is not None
    vbar = p.replay.calibration.mean_volume
    assert vbar == pytest.approx(float(bars.volume[:36].mean()), rel=1e-12)  # 6 train sessions
    assert vbar is not None
    clipped = np.minimum(np.maximum(bars.volume, vbar / 10), 0.05 / 0.002 * vbar)
    np.testing.assert_array_equal(p.replay.train.tables.beta, 0.05 * vbar / clipped)


def test_too_few_bars_per_session_for_relative_impact_are_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    closes = [list(100 * np.exp(np.cumsum(rng.normal(0, 0.002, 3)))) for _ in range(10)]
    path = _write_bars(tmp_path / "short.csv", closes, [[5.0, 6.0, 7.0]] * 10)
    # 3 bars per session, at most 10 gamma / (2 eta) = 3.34 with the defaults
    with pytest.raises(DataError, match=r"average 3 bars, too few for relative impact.*3\.336"):
        _market(path, time_horizon=3)
    assert _market(path, {"temporary_impact": 1.0}, time_horizon=3).replay is not None
