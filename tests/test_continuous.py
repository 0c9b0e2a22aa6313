"""The continuous-action market: its spaces, the clipping of its Box, and the same physics as the
discrete market for equal trade sizes."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from rl_order_execution.config import SimulationSettings
from rl_order_execution.market import (
    CONTINUOUS_ENV_ID,
    ContinuousExecutionEnv,
    ExecutionEnv,
    MarketParams,
    MarketState,
    VecContinuousExecutionEnv,
    VecExecutionEnv,
    desired_from_speeds,
    register_envs,
)


def test_action_space_is_a_float32_box_up_to_max_multiplier() -> None:
    env = ContinuousExecutionEnv(SimulationSettings(max_multiplier=7.5))
    space = env.action_space
    assert isinstance(space, gym.spaces.Box)
    assert space.shape == (1,) and space.dtype == np.float32
    assert space.low[0] == 0.0 and space.high[0] == 7.5
    assert env.observation_space == ExecutionEnv().observation_space
    assert SimulationSettings().max_multiplier == 10.0


def test_continuous_env_passes_gymnasiums_checker() -> None:
    check_env(ContinuousExecutionEnv(), skip_render_check=True)


def test_registered_with_its_own_id_and_vector_entry_point() -> None:
    register_envs()
    single = gym.make(CONTINUOUS_ENV_ID)
    assert isinstance(single.unwrapped, ContinuousExecutionEnv)
    vec = gym.make_vec(CONTINUOUS_ENV_ID, num_envs=3, vectorization_mode="vector_entry_point")
    assert isinstance(vec.unwrapped, VecContinuousExecutionEnv)
    assert vec.action_space.shape == (3, 1)


def test_speeds_are_clipped_into_the_box_then_scale_the_base_rate() -> None:
    p = MarketParams(max_multiplier=4.0)
    s = MarketState.initial(p, 4)  # base rate q/(N - k) = 1000 / 50 = 20 shares
    desired = desired_from_speeds(p, s, np.array([-3.0, 0.5, 4.0, 9.0]))
    np.testing.assert_allclose(desired, [0.0, 10.0, 80.0, 80.0])


@pytest.mark.parametrize("action", [-1.0, 1e6])
def test_out_of_box_actions_trade_as_the_nearest_edge(action: float) -> None:
    clipped = 0.0 if action < 0 else 10.0
    a, b = ContinuousExecutionEnv(), ContinuousExecutionEnv()
    a.reset(seed=3)
    b.reset(seed=3)
    out_a = a.step(np.array([action], dtype=np.float32))
    out_b = b.step(np.array([clipped], dtype=np.float32))
    assert out_a[1] == out_b[1] and out_a[4] == out_b[4]
    assert out_a[4]["shares"] == pytest.approx(20.0 * clipped)


def test_single_env_matches_the_discrete_env_for_equal_trade_sizes() -> None:
    """Discrete action a and the continuous speed m[a]: the same episode, bit for bit."""
    discrete, continuous = ExecutionEnv(), ContinuousExecutionEnv()
    obs_d, _ = discrete.reset(seed=11)
    obs_c, _ = continuous.reset(seed=11)
    multipliers = discrete.params.multipliers
    rng = np.random.default_rng(0)
    done = False
    while not done:
        np.testing.assert_array_equal(obs_d, obs_c)
        a = int(rng.integers(len(multipliers)))
        obs_d, r_d, done, _, info_d = discrete.step(a)
        obs_c, r_c, done_c, _, info_c = continuous.step(np.array([multipliers[a]], np.float32))
        assert (r_d, done, info_d) == (r_c, done_c, info_c)


def test_vector_env_matches_the_discrete_vector_env_for_equal_trade_sizes() -> None:
    discrete, continuous = VecExecutionEnv(16), VecContinuousExecutionEnv(16)
    np.testing.assert_array_equal(discrete.reset(seed=5)[0], continuous.reset(seed=5)[0])
    mult = np.asarray(discrete.params.multipliers)
    rng = np.random.default_rng(1)
    for _ in range(120):  # more than two episodes: the same-step resets too
        actions = rng.integers(len(mult), size=16)
        out_d = discrete.step(actions)
        out_c = continuous.step(mult[actions].astype(np.float32)[:, None])
        for x, y in zip(out_d[:4], out_c[:4], strict=True):
            np.testing.assert_array_equal(x, y)
        assert out_d[4].keys() == out_c[4].keys()
        for key in out_d[4]:
            np.testing.assert_array_equal(out_d[4][key], out_c[4][key])


def test_a_speed_between_the_grid_points_trades_in_between() -> None:
    """What the grid cannot do: 0.25x TWAP's rate sells a quarter of TWAP's first trade."""
    env = ContinuousExecutionEnv()
    env.reset(seed=0)
    _, reward, _, _, info = env.step(np.array([0.25], np.float32))
    p = env.params
    n = 0.25 * p.Q / p.N
    assert info["shares"] == pytest.approx(n)
    expected = (n * (p.P0 - p.beta * n - p.P0) - p.lam * p.Q) * p.bps
    assert reward == pytest.approx(expected)
