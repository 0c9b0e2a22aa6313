"""What every agent's training keeps the same way: the env's episode returns (as Gymnasium's
RecordEpisodeStatistics keeps them) and the best validated policy, both surviving a checkpoint."""

from __future__ import annotations

import io
import math
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rl_order_execution.agents.training import BestPolicy, EpisodeReturns, ValidationPoint
from rl_order_execution.market import ContinuousExecutionEnv, MarketParams


def _through_a_file(state: dict[str, Any]) -> dict[str, Any]:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    loaded: dict[str, Any] = torch.load(buffer, weights_only=True)
    return loaded


def test_episode_returns_are_gymnasiums_record_episode_statistics() -> None:
    p = MarketParams(N=5)
    env = gym.wrappers.RecordEpisodeStatistics(ContinuousExecutionEnv(p), buffer_length=100)
    ours = EpisodeReturns(1)
    env.reset(seed=3)
    speeds = np.random.default_rng(0).uniform(0.0, 3.0, size=600)
    for speed in speeds:  # over 100 episodes: the window of 100 fills and slides
        action: Any = np.array([speed])  # the continuous env's speed (typed as its parent's)
        _, reward, terminated, _, _ = env.step(action)
        ours.step(np.array([reward]), np.array([terminated]))
        if terminated:
            env.reset()
    assert ours.episodes == env.episode_count > 100
    np.testing.assert_allclose(list(ours.recent), list(env.return_queue), rtol=1e-12)
    assert ours.mean_return == np.mean(list(env.return_queue))


def test_episode_returns_count_each_lockstep_episode_once_and_survive_a_checkpoint() -> None:
    stats = EpisodeReturns(3, window=2)
    assert math.isnan(stats.mean_return)
    assert stats.step(np.array([1.0, 2.0, 3.0]), np.array([False, True, False])) == 1
    assert stats.step(np.array([1.0, 1.0, 1.0]), np.array([True, False, True])) == 2
    assert list(stats.recent) == [2.0, 4.0] and stats.episodes == 3  # the window keeps 2
    np.testing.assert_array_equal(stats.running, [0.0, 1.0, 0.0])
    again = EpisodeReturns(3, window=2)
    again.load_state_dict(_through_a_file(stats.state_dict()))
    for s in (stats, again):
        s.step(np.array([5.0, 5.0, 5.0]), np.array([False, True, False]))
    assert list(again.recent) == list(stats.recent) == [4.0, 6.0] and again.episodes == 4


class _Agent:
    kind = "test"

    def __init__(self) -> None:
        self.weight = torch.zeros(2)

    def speeds(self, obs: np.ndarray) -> np.ndarray:
        return np.ones(len(obs))

    def policy_state(self) -> dict[str, Any]:
        return {"w": self.weight.clone()}


def test_best_policy_keeps_the_first_best_and_survives_a_checkpoint() -> None:
    agent = _Agent()
    best = BestPolicy(agent.policy_state())
    for episodes, bps in [(10, -3.0), (20, 5.0), (30, 5.0), (40, 1.0)]:
        agent.weight += 1.0
        best.record(agent, episodes, bps)
    assert best.bps == 5.0 and torch.equal(best.state["w"], torch.full((2,), 2.0))  # at 20
    assert best.history[1] == ValidationPoint(20, 5.0) and len(best.history) == 4
    restored = BestPolicy({})
    restored.load_state_dict(_through_a_file(best.state_dict()))
    assert restored.history == best.history and restored.bps == best.bps
    assert torch.equal(restored.state["w"], best.state["w"])
