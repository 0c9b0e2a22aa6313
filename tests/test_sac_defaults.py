"""SAC's start and its noise: the mean action starts at the static schedule's pace on every market
(TWAP's on a flat profile), and the default target entropy asks for a small noise in speed units.

SAC learns the soft value of its noisy policy. Noise in the trade size costs beta * Var(n) per
step and the tanh squashing's entropy rewards actions away from the box's ends, so the mean a
noisy policy learns sells faster than the optimum; the lower the entropy it settles at, the
smaller that bias.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

from rl_order_execution.agents.sb3.env import LearnerReward, MarketVecEnv
from rl_order_execution.agents.sb3.sac import build, speed_map
from rl_order_execution.config import Settings
from rl_order_execution.market import MarketParams


def _model(
    simulation: dict[str, Any], sac: dict[str, Any] | None = None
) -> tuple[Any, LearnerReward, MarketParams]:
    rl = {"agent": "sac", "sac": sac or {}}
    settings = Settings.model_validate({"simulation": simulation, "rl": rl})
    p = MarketParams.from_settings(settings.simulation, settings.replay)
    env = LearnerReward(MarketVecEnv(p, 8, 3, speed_map(settings.rl.sac)), settings.rl)
    return build(settings, env, 0, torch.device("cpu")), env, p


@pytest.mark.parametrize(
    "simulation",
    [
        {},
        {"drift": 0.0003, "risk_aversion": 0.05},
        {"price_model": "ou", "mean_reversion": 0.2, "risk_aversion": 0.0},
        {"rate_basis": "initial", "time_horizon": 100, "max_multiplier": 6.0},
    ],
)
def test_sac_mean_action_starts_at_the_static_pace(simulation: dict[str, Any]) -> None:
    model, env, p = _model(simulation)
    obs = np.asarray(env.reset())
    actions, _ = model.policy.predict(obs, deterministic=True)
    # the actor's last layer is still random (weights ~ 1/sqrt(64)): only its bias is set
    speeds = env.market_env.speed_map.speeds(p, actions, obs)
    np.testing.assert_allclose(speeds, 1.0, atol=0.1)  # the action unit is 2x that pace
    bias = float(model.actor.mu.bias[0])
    assert math.tanh(bias) == pytest.approx(2.0 / 4.0 - 1.0, abs=1e-6)  # max_relative_speed 4


def test_under_a_profile_sac_starts_at_the_static_schedules_speed() -> None:
    model, env, p = _model({"volume_profile": "u_shape"})
    obs = np.asarray(env.reset())
    actions, _ = model.policy.predict(obs, deterministic=True)
    static = obs[:, -1]  # the learner's input: the static schedule's speed, 4.0x at the open
    assert static[0] == pytest.approx(4.02, abs=0.01)
    np.testing.assert_allclose(env.market_env.speed_map.speeds(p, actions, obs), static, rtol=0.1)


@pytest.mark.parametrize(
    ("simulation", "sac"),
    [
        ({"max_multiplier": 1.0}, {"max_relative_speed": None}),
        ({"max_multiplier": 0.5}, {"max_relative_speed": None}),
        ({}, {"max_relative_speed": 1.0}),
        ({}, {"max_relative_speed": 0.5}),
    ],
)
def test_a_top_at_or_below_the_reference_pace_starts_just_inside_the_box(
    simulation: dict[str, Any], sac: dict[str, Any]
) -> None:
    model, _, _ = _model(simulation, sac)
    bias = float(model.actor.mu.bias[0])
    assert math.isfinite(bias)
    assert math.tanh(bias) == pytest.approx(0.99, abs=1e-6)


def test_the_box_map_starts_at_the_base_rate() -> None:
    """max_relative_speed None: SAC before issue 25, on [0, max_multiplier]."""
    model, _, p = _model({}, {"max_relative_speed": None})
    bias = float(model.actor.mu.bias[0])
    assert math.tanh(bias) == pytest.approx(2.0 / p.max_multiplier - 1.0, abs=1e-6)


def test_default_noise_is_small_in_speed_units() -> None:
    """A Gaussian's entropy is 0.5 ln(2 pi e) + ln(std): the default target entropy in units of
    the static pace (2 of them per action unit with max_relative_speed 4). The coefficient
    still starts high: started at 0.1, the mean ran into tanh's flat end (speed 0) and stayed."""
    sac = Settings().rl.sac
    assert sac.auto_entropy
    assert sac.max_relative_speed == 4.0
    std_action = math.exp(sac.target_entropy - 0.5 * math.log(2 * math.pi * math.e))
    std_speed = std_action * sac.max_relative_speed / 2
    assert std_speed == pytest.approx(0.0245, abs=1e-3)  # SB3's -1 would be 0.18x
    assert sac.ent_coef == 1.0
