"""SAC's speed map: its action in [-1, 1] covers speeds from 0 to max_relative_speed times the
static schedule's speed (TWAP's pace on a flat profile), at most max_multiplier; PPO keeps the
market's whole box. A SAC checkpoint saved before the map (issue 25) keeps acting on the box.

Why: SAC's entropy target, its exploration and its critic's resolution are in action units. On
the box [0, 10] an action unit is 5x TWAP's pace and the critic has to fit the values of speeds
up to 10x, while on drifting or mean-reverting markets the optimum sits within 0.5x of TWAP's
pace and saves only 2.6 to 6 bps (README, "SAC, reliable").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rl_order_execution.agents.checkpoint import load_checkpoint, save_checkpoint
from rl_order_execution.agents.features import static_speed
from rl_order_execution.agents.registry import agent_spec
from rl_order_execution.agents.sb3.agent import SB3Agent
from rl_order_execution.agents.sb3.env import BOX, MarketVecEnv, SpeedMap, speed_from_action
from rl_order_execution.config import Settings, saved_settings
from rl_order_execution.market import MarketParams, VecContinuousExecutionEnv
from rl_order_execution.runs.resume import RunManifest

ACTIONS = np.array([[-1.0], [-0.5], [0.0], [0.25], [1.0], [-7.0], [3.0]], dtype=np.float32)


def _obs(p: MarketParams, k: int, q_share: float) -> np.ndarray:
    obs = np.zeros((len(ACTIONS), p.obs_dim), dtype=np.float32)
    obs[:, 0], obs[:, 1] = (p.N - k) / p.N, q_share
    return obs


def test_the_box_map_is_the_linear_map_onto_zero_max() -> None:
    p = MarketParams()
    np.testing.assert_array_equal(
        BOX.speeds(p, ACTIONS, _obs(p, 0, 1.0)), speed_from_action(p, ACTIONS)
    )


def test_on_a_flat_profile_sacs_map_covers_zero_to_four_times_twaps_pace() -> None:
    p = MarketParams()
    speeds = SpeedMap(4.0).speeds(p, ACTIONS, _obs(p, 17, 0.4))
    np.testing.assert_allclose(speeds, [0.0, 1.0, 2.0, 2.5, 4.0, 0.0, 4.0])
    assert SpeedMap(4.0).start_action(p) == -0.5  # TWAP's pace: the mean's start
    assert SpeedMap(4.0).speed_per_action(p) == 2.0


def test_under_a_profile_the_top_follows_the_static_speed_up_to_the_cap() -> None:
    p = MarketParams.from_settings(
        Settings.model_validate({"simulation": {"volume_profile": "u_shape"}}).simulation
    )
    for k in (0, 10, 25, 49):
        obs = _obs(p, k, 1.0 - k / p.N)
        static = static_speed(p, obs)[0]
        speeds = SpeedMap(4.0).speeds(p, ACTIONS, obs)
        expected = np.minimum(4.0 * static * (np.clip(ACTIONS[:, 0], -1, 1) + 1) / 2, 10.0)
        np.testing.assert_allclose(speeds, expected, rtol=1e-12)
    assert static_speed(p, _obs(p, 0, 1.0))[0] == pytest.approx(4.02, abs=0.01)  # top 10, not 16


def test_the_vecenv_trades_the_maps_speeds() -> None:
    p = MarketParams(mu=0.0003)
    speeds = SpeedMap(4.0)
    adapter = MarketVecEnv(p, 8, 7, speeds)
    market = VecContinuousExecutionEnv(8, p)
    obs = np.asarray(adapter.reset())
    m_obs, _ = market.reset(seed=7)
    rng = np.random.default_rng(0)
    for _ in range(p.N):
        actions = rng.uniform(-1, 1, size=(8, 1)).astype(np.float32)
        adapter.step_async(actions)
        a_obs, a_reward, _, _ = adapter.step_wait()
        m_obs, m_reward, _, _, _ = market.step(speeds.speeds(p, actions, obs))
        np.testing.assert_array_equal(a_obs, m_obs)
        np.testing.assert_array_equal(a_reward, m_reward.astype(np.float32))
        obs = np.asarray(a_obs)


def _tiny_sac(**sac: object) -> Settings:
    section = {"n_envs": 16, "batch_size": 32, "gradient_steps": 1, "hidden_sizes": [16]}
    rl = {"agent": "sac", "episodes": 32, "eval_interval": 32, "validation_episodes": 50}
    return Settings.model_validate({"rl": rl | {"sac": section | sac}})


def test_an_old_sac_checkpoint_keeps_acting_on_the_box(tmp_path: Path) -> None:
    settings = _tiny_sac()
    result = agent_spec("sac").train(settings, MarketParams.of(settings))
    path = tmp_path / "model.pt"
    save_checkpoint(path, result, settings)
    loaded = load_checkpoint(path)
    assert loaded.settings.rl.sac.max_relative_speed == 4.0
    obs = _obs(MarketParams(), 5, 0.9)
    np.testing.assert_array_equal(loaded.agent.speeds(obs), result.agent.speeds(obs))
    # a checkpoint of SAC before issue 25: its settings have no max_relative_speed
    payload = torch.load(path, weights_only=True)
    del payload["settings"]["rl"]["sac"]["max_relative_speed"]
    torch.save(payload, path)
    old = load_checkpoint(path)
    assert old.settings.rl.sac.max_relative_speed is None
    assert isinstance(old.agent, SB3Agent) and old.agent.speed_map == BOX
    actions, _ = old.agent.policy.predict(obs, deterministic=True)
    np.testing.assert_array_equal(old.agent.speeds(obs), speed_from_action(MarketParams(), actions))


def test_an_old_sac_run_resumes_on_the_box() -> None:
    """A resumable run's manifest saved before issue 25 reads as that SAC acted: on the box; the
    other kinds' settings are read as they are."""
    saved = Settings().model_dump(mode="json")
    saved["rl"]["agent"] = "sac"
    del saved["rl"]["sac"]["max_relative_speed"]
    manifest = RunManifest.from_json({"command": "run", "settings": saved, "seeds": 1})
    assert manifest.settings.rl.sac.max_relative_speed is None
    saved["rl"]["agent"] = "ddqn"
    assert saved_settings(saved) == saved
    current = Settings(rl={"agent": "sac"}).model_dump(mode="json")
    assert saved_settings(current) == current
