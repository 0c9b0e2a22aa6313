from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import given, settings
from hypothesis import strategies as st

from rl_order_execution.config import SimulationSettings
from rl_order_execution.evaluation import rollout
from rl_order_execution.market import (
    ENV_ID,
    ExecutionEnv,
    MarketParams,
    MarketState,
    Shocks,
    VecExecutionEnv,
    market_step,
    observe,
    shock_matrix,
    state_from_obs,
    twap_value,
)
from rl_order_execution.strategies import TWAP


def test_first_step_reward_and_execution_price_by_hand() -> None:
    p = MarketParams()  # Q=1000, N=50, P0=100, beta=0.05, lambda=0.1, remaining basis
    s = MarketState.initial(p, 1)
    # action 4 = multiplier 2: n = 2 * 1000 / 50 = 40 shares
    res = market_step(p, s, np.array([40.0]), Shocks(np.array([0.0])))
    assert res.n[0] == pytest.approx(40.0)
    assert res.exec_price[0] == pytest.approx(100.0 - 0.05 * 40)  # 98.0
    # [40 * (98 - 100) - 0.1 * 1000^2 / 1000] * 1e4 / 1e5 = (-80 - 100) * 0.1 = -18 bps
    assert res.reward[0] == pytest.approx(-18.0)
    # S1 = 100 * exp(-sigma^2/2) - alpha * 40
    assert s.S[0] == pytest.approx(100.0 * math.exp(-0.5 * 0.002**2) - 0.4)
    assert s.q[0] == pytest.approx(960.0)


def test_env_step_uses_the_action_multiplier() -> None:
    env = ExecutionEnv()
    env.reset(seed=0)
    _, reward, terminated, truncated, info = env.step(4)
    assert info["shares"] == pytest.approx(40.0)
    assert info["execution_price"] == pytest.approx(98.0)
    assert reward == pytest.approx(-18.0)
    assert not terminated and not truncated


def test_ou_step_matches_model() -> None:
    p = MarketParams(price_model="ou", sigma=0.004, kappa=0.1)
    s = MarketState.initial(p, 1)
    s.S[:] = 101.0
    market_step(p, s, np.array([10.0]), Shocks(np.array([0.5])))
    noise = 0.004 * 100 * math.sqrt((1 - math.exp(-0.2)) / 0.2) * 0.5
    assert s.S[0] == pytest.approx(100 + 1.0 * math.exp(-0.1) + noise - 0.01 * 10)
    assert s.latent[0] == pytest.approx(100 - 0.01 * 10)


def test_observation_features() -> None:
    p = MarketParams()
    s = MarketState(
        k=np.array([10]),
        q=np.array([600.0]),
        S=np.array([101.0]),
        S_prev=np.array([100.5]),
        latent=np.array([100.0]),
    )
    obs = observe(p, s)[0]
    assert obs.dtype == np.float32
    np.testing.assert_allclose(
        obs, [40 / 50, 0.6, 1.0 / (100 * 0.002 * math.sqrt(50)), 0.5 / 0.2], rtol=1e-6
    )


markets = st.builds(
    MarketParams,
    Q=st.floats(1, 1e5),
    N=st.integers(1, 30),
    sigma=st.floats(0, 0.02),
    mu=st.floats(-0.01, 0.01),
    lam=st.floats(0, 2),
    rate_basis=st.sampled_from(["remaining", "initial"]),
    price_model=st.sampled_from(["gbm", "ou"]),
    lot_size=st.sampled_from([0.0, 0.0, 7.0]),
)


@settings(max_examples=60, deadline=None)
@given(p=markets, seed=st.integers(0, 2**32 - 1))
def test_shares_conserved_nonnegative_and_completed(p: MarketParams, seed: int) -> None:
    p = p.with_(alpha=0.0, beta=1e-6)  # prices stay positive for any Q
    rng = np.random.default_rng(seed)
    s = MarketState.initial(p, 8)
    total = np.zeros(8)
    for k in range(p.N):
        actions = rng.integers(0, p.n_actions, 8)
        from rl_order_execution.market import desired_from_actions

        res = market_step(p, s, desired_from_actions(p, s, actions), Shocks(rng.standard_normal(8)))
        assert (res.n >= 0).all()
        assert (s.q >= 0).all()
        total += res.n
        if k == p.N - 1:
            assert res.terminated.all()
    np.testing.assert_allclose(total, p.Q, rtol=1e-12)
    assert (s.q == 0).all()


def test_episode_return_equals_minus_cost_in_bps() -> None:
    p = MarketParams(price_model="ou", mu=0.0)
    tr = rollout(p, TWAP(), shock_matrix(p, 3, 200))
    np.testing.assert_allclose(tr.r.sum(axis=1), -tr.cost(p) * p.bps, rtol=1e-10)


def test_twap_expected_shortfall_is_5900_dollars() -> None:
    p = MarketParams()
    is_ = rollout(p, TWAP(), shock_matrix(p, 7, 20_000)).shortfall(p)
    se = is_.std(ddof=1) / math.sqrt(len(is_))
    assert abs(is_.mean() - 5900.0) < 4 * se


def test_shocks_do_not_depend_on_actions() -> None:
    prices = []
    for action in (0, 6):
        env = ExecutionEnv(MarketParams(alpha=0.0))
        env.reset(seed=123)
        path = [env.step(action)[4] for _ in range(5)]
        prices.append([info["execution_price"] + 0.05 * info["shares"] for info in path])
    # without permanent impact, mid prices (exec price + temp impact) match step for step
    np.testing.assert_allclose(prices[0], prices[1])


def test_twap_value_is_the_expected_twap_cost_at_start() -> None:
    p = MarketParams()
    m, q, S = state_from_obs(p, observe(p, MarketState.initial(p, 1)))
    assert twap_value(p, m, q, S)[0] == pytest.approx(-7617.0)


def test_check_env_passes() -> None:
    check_env(ExecutionEnv(), skip_render_check=True)


def test_registered_with_gymnasium_make_and_make_vec() -> None:
    env = gym.make(ENV_ID, simulation=SimulationSettings(time_horizon=5))
    obs, _ = env.reset(seed=1)
    assert obs.shape == (4,)
    vec = gym.make_vec(ENV_ID, num_envs=3, vectorization_mode="vector_entry_point")
    obs, _ = vec.reset(seed=1)
    assert obs.shape == (3, 4)
    obs, reward, term, trunc, _ = vec.step(np.array([1, 2, 3]))
    assert reward.shape == (3,) and not term.any() and not trunc.any()


def test_vec_env_autoresets_finished_episodes() -> None:
    vec = VecExecutionEnv(2, MarketParams(N=3))
    vec.reset(seed=0)
    for _ in range(2):
        vec.step(np.array([1, 1]))
    obs, _, term, _, info = vec.step(np.array([1, 1]))
    assert term.all()
    np.testing.assert_allclose(info["final_obs"][:, :2], 0.0)  # time and inventory exhausted
    np.testing.assert_allclose(obs[:, :2], 1.0)  # fresh episodes


def test_vec_env_same_seed_same_rewards_and_different_seed_differs() -> None:
    def rewards(seed: int) -> np.ndarray:
        vec = VecExecutionEnv(4)
        vec.reset(seed=seed)
        return np.array([vec.step(np.full(4, 2))[1] for _ in range(10)])

    np.testing.assert_array_equal(rewards(5), rewards(5))
    assert not np.allclose(rewards(5), rewards(6))
