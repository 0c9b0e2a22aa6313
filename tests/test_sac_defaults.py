"""SAC's start and its noise: the mean action starts at the base rate on every market, and the
default target entropy asks for a small noise in speed units.

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

from rl_order_execution.agents.sb3.env import LearnerReward, MarketVecEnv, speed_from_action
from rl_order_execution.agents.sb3.sac import build
from rl_order_execution.config import Settings
from rl_order_execution.market import MarketParams


def _model(simulation: dict[str, Any]) -> tuple[Any, LearnerReward, MarketParams]:
    settings = Settings.model_validate({"simulation": simulation, "rl": {"agent": "sac"}})
    p = MarketParams.from_settings(settings.simulation, settings.replay)
    env = LearnerReward(MarketVecEnv(p, 8, seed=3), settings.rl)
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
def test_sac_mean_action_starts_at_the_base_rate(simulation: dict[str, Any]) -> None:
    model, env, p = _model(simulation)
    obs = np.asarray(env.reset())
    actions, _ = model.policy.predict(obs, deterministic=True)
    # the actor's last layer is still random (weights ~ 1/sqrt(64)): only its bias is set
    np.testing.assert_allclose(speed_from_action(p, actions), 1.0, atol=0.25)
    bias = float(model.actor.mu.bias[0])
    assert math.tanh(bias) == pytest.approx(2.0 / p.max_multiplier - 1.0, abs=1e-6)


@pytest.mark.parametrize("cap", [1.0, 0.5])
def test_a_cap_of_one_or_less_starts_just_inside_the_box(cap: float) -> None:
    model, _, _ = _model({"max_multiplier": cap})
    bias = float(model.actor.mu.bias[0])
    assert math.isfinite(bias)
    assert math.tanh(bias) == pytest.approx(0.99, abs=1e-6)


def test_default_noise_is_small_in_speed_units() -> None:
    """A Gaussian's entropy is 0.5 ln(2 pi e) + ln(std): the default target entropy in
    TWAP-pace units at the default cap of 10 (5 speed units per action unit). The coefficient
    still starts high: started at 0.1, the mean ran into tanh's flat end (speed 0) and stayed."""
    sac = Settings().rl.sac
    assert sac.auto_entropy
    std_action = math.exp(sac.target_entropy - 0.5 * math.log(2 * math.pi * math.e))
    std_speed = std_action * Settings().simulation.max_multiplier / 2
    assert std_speed == pytest.approx(0.0612, abs=1e-3)  # SB3's -1 would be 0.44x
    assert sac.ent_coef == 1.0
