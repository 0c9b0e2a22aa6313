"""SAC's reward unit: the learner's reward is rescaled by how sharply it bends in the action.

SAC's entropy coefficient and target entropy are in action units and its critic must fit the
values in reward units, so the same settings mean different things where a step off the static
pace costs 28 times as much (N = 10, lambda = 1). The unit is computed from the market alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from rl_order_execution.agents.sb3.env import LearnerReward, MarketVecEnv, SpeedMap
from rl_order_execution.agents.sb3.sac import (
    ALGORITHM,
    action_curvature_bps,
    build,
    reference_curvature_bps,
    reward_unit,
)
from rl_order_execution.config import Settings
from rl_order_execution.market import MarketParams

SHORT = {"time_horizon": 10, "risk_aversion": 1.0}


def _setup(simulation: dict[str, Any]) -> tuple[Settings, MarketParams]:
    settings = Settings.model_validate({"simulation": simulation, "rl": {"agent": "sac"}})
    return settings, MarketParams.from_settings(settings.simulation, settings.replay)


def _first_step_rewards(settings: Settings, p: MarketParams, speeds: np.ndarray) -> np.ndarray:
    """The learner's reward of the first step at each speed, stepping the market itself.

    With the shaping and the control variate (the defaults) it is deterministic at the start:
    the step's reward plus the static value of where the expected price leaves the order."""
    env = LearnerReward(MarketVecEnv(p, len(speeds), seed=5), settings.rl)
    env.reset()
    actions = (speeds * 2.0 / p.max_multiplier - 1.0).astype(np.float32)[:, None]
    env.step_async(actions)
    _, reward, _, _ = env.step_wait()
    return np.asarray(reward, dtype=np.float64) / settings.rl.reward_scale


@pytest.mark.parametrize(
    "simulation",
    [{}, SHORT, {"drift": 0.0003, "risk_aversion": 0.05}, {"max_multiplier": 6.0}],
)
def test_curvature_is_the_second_difference_of_the_learners_first_reward(
    simulation: dict[str, Any],
) -> None:
    settings, p = _setup(simulation)
    a = _first_step_rewards(settings, p, np.array([0.0, 1.0, 2.0]))
    per_base_rate = -(a[0] - 2 * a[1] + a[2])
    expected = per_base_rate * (p.max_multiplier / 2) ** 2
    assert action_curvature_bps(p) == pytest.approx(expected, rel=1e-4)
    # quadratic in the speed: any three speeds give the same bend
    b = _first_step_rewards(settings, p, np.array([0.5, 1.5, 2.5]))
    assert -(b[0] - 2 * b[1] + b[2]) == pytest.approx(per_base_rate, rel=1e-3)


def test_the_short_risk_averse_market_bends_28_times_as_sharply() -> None:
    default = action_curvature_bps(_setup({})[1])
    short = action_curvature_bps(_setup(SHORT)[1])
    assert default == pytest.approx(95.2, abs=0.1)
    assert short == pytest.approx(2676, abs=1)
    assert reference_curvature_bps() == default
    assert reward_unit(_setup({})[1]) == 1.0  # exactly: the default market learns as before
    assert reward_unit(_setup(SHORT)[1]) == pytest.approx(1 / 28.11, rel=1e-3)


def test_sacs_map_measures_the_bend_in_its_own_action_unit() -> None:
    """SAC's default map: an action unit is 2 static paces (max_relative_speed 4), so the default
    market bends (2/5)^2 as sharply per action unit as with the box map, and every flat market
    keeps its unit; under a volume profile the unit follows the static speed at the open."""
    sac = SpeedMap(4.0)
    default, short = _setup({})[1], _setup(SHORT)[1]
    assert action_curvature_bps(default, sac) == pytest.approx(95.2 * 0.16, abs=0.02)
    assert reference_curvature_bps(sac) == action_curvature_bps(default, sac)
    assert reward_unit(default, sac) == 1.0
    assert reward_unit(short, sac) == pytest.approx(reward_unit(short), rel=1e-12)
    u_shape = _setup({"volume_profile": "u_shape"})[1]
    open_pace = sac.speed_per_action(u_shape) / 2.0  # the static speed at the open, 4.0x
    assert open_pace == pytest.approx(4.02, abs=0.01)
    ratio = action_curvature_bps(u_shape, sac) / action_curvature_bps(u_shape)
    assert ratio == pytest.approx((2 * open_pace / 5) ** 2, rel=1e-9)


def test_a_one_step_market_keeps_the_learners_reward() -> None:
    _, p = _setup({"time_horizon": 1})
    assert np.isnan(action_curvature_bps(p))
    assert reward_unit(p) == 1.0


def test_sac_learns_from_the_learners_reward_times_the_unit() -> None:
    settings, p = _setup(SHORT)
    speeds = ALGORITHM.speeds(settings)
    learner = ALGORITHM.learner_env(settings, MarketVecEnv(p, 4, 3, speeds))
    model = build(settings, learner, 0, torch.device("cpu"))
    plain = LearnerReward(MarketVecEnv(p, 4, 3, speeds), settings.rl)
    vec = model.get_env()
    assert vec is not None
    np.testing.assert_array_equal(vec.reset(), plain.reset())
    for step in range(12):
        actions = np.full((4, 1), -0.8 + 0.05 * step, dtype=np.float32)
        scaled = vec.step(actions)
        plain.step_async(actions)
        base = plain.step_wait()
        np.testing.assert_array_equal(scaled[0], base[0])
        np.testing.assert_array_equal(scaled[2], base[2])
        unit = np.float32(reward_unit(p, speeds))
        np.testing.assert_allclose(scaled[1], base[1] * unit, rtol=1e-6)
