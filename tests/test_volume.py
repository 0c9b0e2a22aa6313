"""Intraday volume: the profile, beta_k, VWAP, participation, the exact references under a
volume profile and the optional observation features."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from rl_order_execution.config import Settings, SettingsError, SimulationSettings, load_settings
from rl_order_execution.data.profiles import U_SHAPE, ProfileError, load_profile
from rl_order_execution.errors import UserError
from rl_order_execution.evaluation import evaluate, optimum_gap, rollout, run_checks
from rl_order_execution.exact import (
    best_discrete_policy,
    optimal_cost,
    optimal_schedule,
    schedule_moments,
    twap_schedule,
    vwap_schedule,
)
from rl_order_execution.market import (
    ExecutionEnv,
    MarketParams,
    MarketState,
    Shocks,
    market_step,
    observe,
    shock_matrix,
    state_from_obs,
    twap_value,
)
from rl_order_execution.market.volume import (
    step_impacts,
    step_shares,
)
from rl_order_execution.strategies import TWAP, VWAP, ScheduleStrategy, reference_strategies

U = MarketParams(volume_bins=U_SHAPE)


def _capture(p: MarketParams, cost: float) -> float:
    twap = schedule_moments(p, twap_schedule(p)).e_c
    return (twap - cost) / (twap - optimal_cost(p))


@pytest.mark.parametrize(
    ("lam", "twap", "vwap", "opt", "vwap_share", "grid_share"),
    [
        (0.1, 7839.70, 7114.43, 6650.21, 0.610, 0.934),
        (0.0, 6122.70, 5865.09, 5856.16, 0.966, 0.918),
    ],
)
def test_u_shape_closed_forms_match_the_published_figures(
    lam: float, twap: float, vwap: float, opt: float, vwap_share: float, grid_share: float
) -> None:
    p = U.with_(lam=lam)
    assert round(schedule_moments(p, twap_schedule(p)).e_c, 2) == twap
    assert round(schedule_moments(p, vwap_schedule(p)).e_c, 2) == vwap
    assert round(optimal_cost(p), 2) == opt
    assert round(_capture(p, schedule_moments(p, vwap_schedule(p)).e_c), 3) == vwap_share
    assert round(_capture(p, best_discrete_policy(p).expected_cost), 3) == grid_share


def test_u_shape_optimum_starts_at_7_3x_twap_and_is_the_quadratic_minimum() -> None:
    n = optimal_schedule(U)
    assert n[0] / (U.Q / U.N) == pytest.approx(7.2775, abs=1e-3)
    # the deterministic optimum minimises alpha Q^2/2 + sum (beta_k - alpha/2) n_k^2 + lam sum q^2/Q
    rng = np.random.default_rng(0)
    best = schedule_moments(U, n).e_c
    for _ in range(20):
        d = rng.normal(size=U.N) * 0.5
        assert schedule_moments(U, n + d - d.mean()).e_c > best


def test_monte_carlo_agrees_with_every_closed_form_under_u_shape() -> None:
    for p in (U, U.with_(lam=0.0), U.with_(price_model="ou", lam=0.05)):
        checks, _ = run_checks(p, shock_matrix(p, 7, 4000))
        assert {"twap", "vwap", "optimal"} <= {c.name for c in checks}
        assert all(c.ok for c in checks), [(c.name, c.z_scores) for c in checks if not c.ok]
        z = {c.name: c.z_cost_mean for c in checks}  # the adaptive OU optimum included
        assert z["optimal"] is not None and abs(z["optimal"]) < 4


def test_flat_profile_is_beta_itself_and_an_even_file_reproduces_it(tmp_path: Path) -> None:
    p = MarketParams()
    assert p.is_flat and np.all(p.betas == p.beta) and np.all(p.w == 1 / p.N)
    even = tmp_path / "even.csv"
    even.write_text("\n".join(["1"] * 25))  # 25 equal bins over 50 steps: w_k = 1/N again
    q = p.with_(volume_bins=load_profile(even))
    np.testing.assert_allclose(q.betas, p.beta, rtol=1e-12)
    for trades in (twap_schedule(p), optimal_schedule(p)):
        assert schedule_moments(q, trades).e_c == pytest.approx(
            schedule_moments(p, trades).e_c, rel=1e-12
        )
    assert optimal_cost(q) == pytest.approx(optimal_cost(p), rel=1e-10)
    assert "vwap" not in {s.name for s in reference_strategies(p)}  # VWAP = TWAP on a flat day


def test_step_shares_integrate_the_bins_when_n_is_not_a_multiple() -> None:
    np.testing.assert_allclose(step_shares((1.0, 3.0), 3), [1 / 6, 1 / 3, 1 / 2])
    w = step_shares(U_SHAPE, 50)
    assert w.sum() == pytest.approx(1.0) and w[0] == pytest.approx(12.29 / 100.02 * 26 / 50)


def test_beta_k_is_clipped_between_alpha_and_ten_beta() -> None:
    w = np.array([0.0, 0.5, 0.5])
    np.testing.assert_allclose(step_impacts(0.05, 0.1, w), [0.5, 0.1, 0.1])  # 10 beta; alpha
    assert step_impacts(0.05, 0.0, np.array([0.9, 0.1]))[0] == pytest.approx(0.05 / 1.8)


def _two_steps(tmp_path: Path, sigma: float) -> MarketParams:
    profile = tmp_path / "two.yaml"
    profile.write_text("[3, 1]\n")  # w = (0.75, 0.25), v = (1500, 500) with V = 20 Q
    return MarketParams(Q=100.0, N=2, sigma=sigma, lam=0.0, volume_bins=load_profile(profile))


def test_two_step_vwap_slippage_and_participation_by_hand(tmp_path: Path) -> None:
    p = _two_steps(tmp_path, sigma=0.0)
    np.testing.assert_allclose(p.volume, [1500.0, 500.0])
    np.testing.assert_allclose(p.betas, [0.05 / 1.5, 0.1])
    tr = rollout(p, TWAP(), Shocks(np.zeros((1, 2))))
    # P~_0 = 100 - 50/30 = 98.333.., S_1 = 100 - 0.01 * 50 = 99.5, P~_1 = 99.5 - 0.1 * 50 = 94.5
    average = (50 * (100 - 50 / 30) + 50 * 94.5) / 100
    vwap = (1500 * 100 + 500 * 99.5) / 2000  # 99.875
    assert tr.vwap_slippage(p)[0] == pytest.approx((vwap - average) / vwap * 1e4)  # 346.27 bps
    mean, top = tr.participation(p)
    assert mean[0] == pytest.approx((50 / 1500 + 50 / 500) / 2) and top[0] == pytest.approx(0.1)


def test_vwap_of_an_early_finish_keeps_the_mid_moving_on_its_shock(tmp_path: Path) -> None:
    p = _two_steps(tmp_path, sigma=0.01)
    tr = rollout(p, ScheduleStrategy("all-now", np.array([100.0, 0.0])), Shocks(np.ones((1, 2))))
    S1 = 100 * math.exp(-0.5 * 0.01**2 + 0.01) - 0.01 * 100  # the shock of step 0, n_1 = 0
    vwap = (1500 * 100 + 500 * S1) / 2000
    average = 100 - 0.05 / 1.5 * 100
    assert tr.vwap_slippage(p)[0] == pytest.approx((vwap - average) / vwap * 1e4)


def test_vwap_strategy_trades_the_volume_shares_and_gets_paired_statistics() -> None:
    shocks = shock_matrix(U, 3, 200, antithetic=True)
    ev = evaluate(U, [TWAP(), VWAP()], shocks, antithetic=True)
    np.testing.assert_allclose(ev.trajectories["vwap"].n[0], U.Q * U.w, rtol=1e-9)
    m = ev.metrics(exact_gap=optimum_gap(U))["vwap"]
    assert m.volume is not None and m.gap_captured is not None
    assert m.gap_captured.value == pytest.approx(0.610, abs=0.002)
    assert m.volume.participation_max.mean == pytest.approx(U.Q / U.V)  # n_k / v_k = Q / V
    out = m.to_json()
    assert out["vwap_slippage_bps"]["mean"] == pytest.approx(m.volume.vwap_slippage_bps.mean)
    assert out["savings_vwap_slippage"]["avg_savings_bps"] > 0  # closer to VWAP than TWAP is


def test_twap_value_uses_beta_k() -> None:
    m, q, S = state_from_obs(U, observe(U, MarketState.initial(U, 1)))
    assert twap_value(U, m, q, S)[0] == pytest.approx(-7839.70, abs=0.01)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (None, "does not exist"),
        ("volume\n1\nabc\n", "row 3 is not a number"),
        ("1\n-2\n", "row 2 is negative"),
        ("0\n0\n", "sum to 0"),
    ],
)
def test_bad_profile_files_are_one_line_errors_naming_the_file(
    tmp_path: Path, text: str | None, problem: str
) -> None:
    path = tmp_path / "profile.csv"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ProfileError, match=problem) as info:
        load_profile(path)
    assert str(path) in str(info.value)
    settings, _ = load_settings({"simulation.volume_profile": str(path)}, None, None)
    with pytest.raises(UserError) as settings_info:  # read where the market is built
        MarketParams.of(settings)
    message = str(settings_info.value)
    assert "\n" not in message and str(path) in message and problem.split()[0] in message


def test_profile_files_csv_with_header_and_yaml(tmp_path: Path) -> None:
    csv_file, yaml_file = tmp_path / "p.csv", tmp_path / "p.yml"
    csv_file.write_text("share\n2\n\n1\n")
    yaml_file.write_text("- 2\n- 1\n")
    assert load_profile(csv_file) == load_profile(yaml_file) == (2.0, 1.0)


def test_market_check_uses_each_step_s_beta_k() -> None:
    market = MarketParams.from_settings  # the market is refused where it is built
    market(SimulationSettings(start_price=80.0, volume_profile="u_shape"))  # TWAP prices above 0
    # TWAP at P0 = 10.2 (alpha Q = 10 < P0): step k at 10.2 - 0.01 x 20 k - beta_k x 20
    k = np.arange(50)
    prices = 10.2 - 0.01 * 20 * k - step_impacts(0.05, 0.01, step_shares(U_SHAPE, 50)) * 20
    worst = int(np.argmin(prices))
    assert prices[worst] < 0 and worst == 47
    with pytest.raises(SettingsError, match="volume_profile u_shape: beta_k ") as refused:
        market(SimulationSettings(start_price=10.2, volume_profile="u_shape"))
    expected = f"TWAP would sell 20 shares at step 47 at a price of {prices[worst]:.6g}"
    assert expected in str(refused.value)


def test_spread_in_simulation_is_a_settings_error() -> None:
    with pytest.raises(SettingsError, match="spread"):
        load_settings({"simulation.extra_features": ["spread"]}, None, None)


def test_extra_features_by_hand() -> None:
    p = U.with_(extra_features=("volume_remaining", "vwap_deviation", "realised_vol"))
    s = MarketState.initial(p, 1)
    obs = observe(p, s)
    assert obs.shape == (1, 7)
    np.testing.assert_allclose(obs[0, 4:], [1.0, 0.0, 1.0], rtol=1e-6)
    S0 = s.S.copy()
    res = market_step(p, s, np.array([40.0]), Shocks(np.array([1.5])))
    obs = observe(p, s)[0]
    assert obs[4] == pytest.approx(1 - p.w[0], rel=1e-6)
    assert obs[5] == pytest.approx((S0[0] - s.S[0]) / (p.P0 * p.sigma), rel=1e-5)
    r = (s.S[0] + p.alpha * res.n[0] - S0[0]) / p.P0
    d = 2 ** (-1 / 10)
    assert obs[6] == pytest.approx(math.sqrt(d * p.sigma**2 + (1 - d) * r * r) / p.sigma, rel=1e-5)


def test_env_with_extra_features_passes_the_checker_and_a_short_training_runs() -> None:
    sim = SimulationSettings(volume_profile="u_shape", extra_features=["volume_remaining"])
    env = ExecutionEnv(sim)
    assert env.observation_space.shape == (5,)
    check_env(env, skip_render_check=True)
    from rl_order_execution.agents.dqn.training import train

    settings = Settings(
        simulation=sim,
        rl={"episodes": 40, "n_envs": 8, "learning_starts": 64, "batch_size": 32},
        logging={"tensorboard": False, "progress": False},
    )
    result = train(settings, MarketParams.of(settings))
    assert result.agent.speeds(observe(MarketParams.from_settings(sim), _start(sim))).shape == (2,)


def _start(sim: SimulationSettings) -> MarketState:
    return MarketState.initial(MarketParams.from_settings(sim), 2)
