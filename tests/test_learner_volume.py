"""What the learners see under an intraday volume profile: the static schedule's value as the
shaping potential, the static speed as a derived input, the continuous policies' start at the
base rate; and that a flat profile keeps every learner input as it was."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rl_order_execution.agents.dqn.network import build_network
from rl_order_execution.agents.features import (
    StaticSpeed,
    learner_obs,
    static_speed,
    uses_static_speed,
)
from rl_order_execution.agents.registry import agent_spec
from rl_order_execution.agents.sb3.env import (
    LearnerReward,
    MarketVecEnv,
    SpeedMap,
    speed_from_action,
)
from rl_order_execution.agents.sb3.ppo import ALGORITHM as PPO_ALGORITHM
from rl_order_execution.agents.sb3.ppo import build as build_ppo
from rl_order_execution.agents.sb3.sac import ALGORITHM as SAC_ALGORITHM
from rl_order_execution.agents.sb3.sac import build as build_sac
from rl_order_execution.agents.shaping import (
    _static_value_at,
    learner_reward,
    static_fractions,
    static_value,
)
from rl_order_execution.config import Settings
from rl_order_execution.exact import optimal_cost
from rl_order_execution.exact.lq import solve_lq
from rl_order_execution.market import MarketParams, VecContinuousExecutionEnv, twap_value
from rl_order_execution.market.volume import profile_bins

U = profile_bins("u_shape")
MIDDAY = (2.0, 4.0, 7.0, 9.0, 9.0, 7.0, 4.0, 2.0)  # a profile no market file lists


def _states(p: MarketParams, count: int = 40) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    m = rng.integers(1, p.N + 1, count).astype(np.float64)
    return m, rng.uniform(1.0, p.Q, count), rng.uniform(95.0, 105.0, count)


def test_static_schedule_is_twap_on_a_flat_profile_and_follows_liquidity_otherwise() -> None:
    np.testing.assert_allclose(static_fractions(MarketParams(), 30), np.full(20, 0.05))
    p = MarketParams(volume_bins=U)
    f = static_fractions(p, 0)
    c = 1.0 / (p.betas - p.alpha / 2)
    np.testing.assert_allclose(f, c / c.sum())
    assert f[0] > 3 / p.N and f[p.N // 2] < 0.6 / p.N  # the open is liquid, midday is not


def test_flat_profile_potential_is_the_twap_value_itself() -> None:
    p = MarketParams()
    m, q, S = _states(p)
    np.testing.assert_array_equal(static_value(p, m, q, S), twap_value(p, m, q, S))
    # ... and the general computation agrees with TWAP's closed form on equal bins
    equal = MarketParams(volume_bins=(1.0,) * 10)
    for mm, qq, ss in zip(m[:5], q[:5], S[:5], strict=True):
        direct = _static_value_at(equal, equal.N - int(mm), np.array([qq]), np.array([ss]))
        assert direct[0] == pytest.approx(
            twap_value(p, np.array([mm]), np.array([qq]), np.array([ss]))[0]
        )


@pytest.mark.parametrize("model", ["gbm", "ou", "jump", "garch"])
@pytest.mark.parametrize("lam", [0.0, 0.1])
def test_static_value_closed_form_matches_stepping_the_expected_price(
    model: str, lam: float
) -> None:
    p = MarketParams(
        volume_bins=MIDDAY, price_model=model, lam=lam, mu=2e-4 if model == "gbm" else 0.0
    )
    m, q, S = _states(p)
    direct = [
        _static_value_at(p, p.N - int(a), np.array([b]), np.array([c]))[0]
        for a, b, c in zip(m, q, S, strict=True)
    ]
    np.testing.assert_allclose(static_value(p, m, q, S), direct, rtol=1e-10, atol=1e-7)
    assert np.all(static_value(p, np.zeros(3), np.full(3, 10.0), np.full(3, 100.0)) == 0.0)


def test_risk_neutral_potential_is_the_exact_optimum_value() -> None:
    # martingale GBM, lambda = 0: the static schedule is the optimum, E[C_opt] = 5856.16 $
    p = MarketParams(volume_bins=U, lam=0.0)
    start = static_value(p, np.array([50.0]), np.array([p.Q]), np.array([p.P0]))[0]
    assert -start == pytest.approx(5856.16, abs=0.01)
    assert -start == pytest.approx(optimal_cost(p), rel=1e-12)
    sol = solve_lq(p)
    for k, q, S in [(10, 600.0, 99.0), (37, 150.0, 101.5), (49, 20.0, 100.0)]:
        v = static_value(p, np.array([p.N - k * 1.0]), np.array([q]), np.array([S]))[0]
        assert -v == pytest.approx(sol.value(k, q, S), rel=1e-9)


@pytest.mark.parametrize("bins", [U, MIDDAY, ()])
@pytest.mark.parametrize("lam", [0.0, 0.1])
def test_following_the_static_schedule_the_learner_sees_zero_reward(
    bins: tuple[float, ...], lam: float
) -> None:
    """Phi is the static schedule's value: on its path the shaped reward, with the price noise
    removed, is exactly 0 at every step (its Bellman equation), whatever the shocks."""
    p = MarketParams(volume_bins=bins, lam=lam)
    rl = Settings().rl.model_copy(update={"reward_scale": 1.0})
    env = VecContinuousExecutionEnv(16, p)
    obs, _ = env.reset(seed=3)
    for _ in range(p.N):
        nxt, reward, done, _, info = env.step(static_speed(p, obs) if bins else np.ones(16))
        final = np.where(done[:, None], info["final_obs"], nxt) if done.any() else nxt
        shaped = learner_reward(p, rl, obs, reward, final, done)
        np.testing.assert_allclose(shaped, 0.0, atol=2e-3)  # float32 observations
        assert np.abs(reward).max() > 0.1  # the env's own reward is not small
        obs = nxt


def test_static_speed_input_follows_the_profile_in_numpy_and_torch() -> None:
    p = MarketParams(volume_bins=U)
    obs = np.zeros((p.N, p.obs_dim), dtype=np.float32)
    obs[:, 0] = (p.N - np.arange(p.N)) / p.N
    obs[:, 1] = np.linspace(1.0, 0.05, p.N)
    speeds = static_speed(p, obs)
    assert speeds[0] == pytest.approx(p.N * static_fractions(p, 0)[0])
    assert speeds[-1] == pytest.approx(1.0)  # the last step sells what is left
    torch_speeds = StaticSpeed(p)(torch.from_numpy(obs))[:, -1].numpy()
    np.testing.assert_allclose(torch_speeds, speeds, rtol=1e-6)
    widened = learner_obs(p, obs)
    assert widened.shape == (p.N, p.obs_dim + 1)
    np.testing.assert_array_equal(widened[:, :-1], obs)
    initial = MarketParams(volume_bins=U, rate_basis="initial")  # speeds of Q / N
    i_speed = static_speed(initial, obs)
    i_torch = StaticSpeed(initial)(torch.from_numpy(obs))[:, -1].numpy()
    np.testing.assert_allclose(i_torch, i_speed, rtol=1e-6)
    assert i_speed[0] == pytest.approx(p.N * static_fractions(p, 0)[0])  # q = Q at the start


def test_flat_profile_keeps_the_learners_inputs_and_networks() -> None:
    p, rl = MarketParams(), Settings().rl
    assert not uses_static_speed(p)
    obs = np.ones((3, p.obs_dim), dtype=np.float32)
    assert learner_obs(p, obs) is obs
    flat_net = build_network(p, rl)
    assert flat_net.static_speed is None and flat_net.body[0].in_features == p.obs_dim + 1
    assert set(flat_net.state_dict()) == set(
        build_network(MarketParams(volume_bins=U), rl).state_dict()
    )
    u_net = build_network(MarketParams(volume_bins=U), rl)
    assert u_net.body[0].in_features == p.obs_dim + 2


@pytest.mark.parametrize("kind", ["ppo", "sac"])
def test_continuous_policies_start_at_their_reference_pace_under_a_profile(kind: str) -> None:
    """PPO at the base rate everywhere; SAC at the static schedule's speed (its action is a
    multiple of it), which is the base rate on a flat profile."""
    build = build_ppo if kind == "ppo" else build_sac
    settings = Settings.model_validate({"rl": {"agent": kind}})
    speeds = agent_spec_speeds(kind, settings)
    for bins in [U, ()]:
        p = MarketParams(volume_bins=bins)
        env = LearnerReward(MarketVecEnv(p, 4, 0, speeds), settings.rl)
        model = build(settings, env, 0, torch.device("cpu"))
        obs = np.asarray(env.reset())
        assert obs.shape[1] == p.obs_dim + (1 if bins else 0)
        actions, _ = model.policy.predict(obs, deterministic=True)
        start = 1.0 if kind == "ppo" or not bins else obs[:, -1]  # 4.0x at the open
        np.testing.assert_allclose(speeds.speeds(p, actions, obs), start, rtol=0.1, atol=0.3)
        if kind == "ppo":
            np.testing.assert_array_equal(
                speeds.speeds(p, actions, obs), speed_from_action(p, actions)
            )


def agent_spec_speeds(kind: str, settings: Settings) -> SpeedMap:
    return (PPO_ALGORITHM if kind == "ppo" else SAC_ALGORITHM).speeds(settings)


def test_continuous_checkpoint_under_a_profile_restores_the_policy() -> None:
    settings = Settings.model_validate(
        {
            "simulation": {"volume_profile": "u_shape"},
            "rl": {
                "agent": "ppo",
                "episodes": 32,
                "eval_interval": 16,
                "validation_episodes": 20,
                "ppo": {
                    "n_envs": 16,
                    "n_steps": 8,
                    "batch_size": 64,
                    "n_epochs": 1,
                    "hidden_sizes": [8],
                },
            },
        }
    )
    spec = agent_spec("ppo")
    result = spec.train(settings, MarketParams.of(settings))
    restored = spec.load(settings, result.agent.policy_state(), torch.device("cpu"))
    p = MarketParams(volume_bins=U)
    obs = np.zeros((8, p.obs_dim), dtype=np.float32)
    obs[:, 0] = np.linspace(1.0, 0.02, 8)
    obs[:, 1] = np.linspace(1.0, 0.1, 8)
    np.testing.assert_array_equal(restored.speeds(obs), result.agent.speeds(obs))
    assert math.isfinite(float(restored.speeds(obs).sum()))
