"""The Double DQN on the book market's menu, top to bottom: collect (epsilon-greedy steps of the
lockstep `BookVecEnv` into the replay buffer, with the learner's reward), learn (replay-ratio
gradient steps of the same `DQNAgent` as on the simulated market, bootstrapping from the next
state's value averaged over the next spread and imbalance: `agents.book.exogenous`), validate
(keep the best)."""

from __future__ import annotations

import math
import time
from collections import deque
from typing import Any

import numpy as np

from rl_order_execution.agents.base import resolve_device
from rl_order_execution.agents.book.base import BookTrainResult, KeepBest
from rl_order_execution.agents.book.exogenous import ExogenousExpectation
from rl_order_execution.agents.book.reward import learner_reward, reward_unit
from rl_order_execution.agents.book.validation import BookValidator
from rl_order_execution.agents.dqn.agent import DQNAgent
from rl_order_execution.agents.dqn.network import QNetwork
from rl_order_execution.agents.dqn.replay import NStepReturns, ReplayBuffer
from rl_order_execution.agents.training import (
    ProgressFn,
    ScalarLogger,
    TrainingSeeds,
    ValidationHook,
)
from rl_order_execution.config import RLSettings, Settings
from rl_order_execution.market.book import OBS_DIM, BookParams, BookVecEnv


class BookDQN:
    """A `DQNAgent` whose actions are the menu's indices, as a `BookAgent`."""

    kind = "ddqn"
    continuous = False

    def __init__(self, p: BookParams, rl: RLSettings, seed: int) -> None:
        def network() -> QNetwork:
            return QNetwork(OBS_DIM, p.n_actions, rl.dqn.hidden_sizes, rl.dqn.dueling)

        indices = np.arange(p.n_actions, dtype=np.float64)
        device = resolve_device(rl.device)
        expected = ExogenousExpectation(p, device) if rl.dqn.exogenous_expectation else None
        self.dqn = DQNAgent(network, rl, indices, device, seed, expected)

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.dqn.speeds(np.ascontiguousarray(obs, dtype=np.float32)).astype(np.int64)

    def policy_state(self) -> dict[str, Any]:
        return self.dqn.policy_state()

    def load_policy_state(self, state: dict[str, Any]) -> None:
        self.dqn.load_policy_state(state)


def train_ddqn(
    settings: Settings,
    p: BookParams,
    validator: BookValidator,
    *,
    logger: ScalarLogger | None = None,
    progress: ProgressFn | None = None,
    validation_hook: ValidationHook | None = None,
) -> BookTrainResult:
    """Train the Double DQN for rl.episodes episodes; keep the best validated policy."""
    rl = settings.rl
    seeds = TrainingSeeds.from_master(settings.simulation.seed)
    unit = reward_unit(p)
    book = BookDQN(p, rl, seeds.agent)
    agent = book.dqn
    env = BookVecEnv(min(rl.dqn.n_envs, rl.episodes), p)
    obs, _ = env.reset(seed=seeds.env)
    buffer = ReplayBuffer(rl.dqn.memory_size, OBS_DIM, agent.device)
    returns = NStepReturns(rl.dqn.n_step, rl.gamma)
    rng = np.random.default_rng(seeds.exploration)
    replay_rng = np.random.default_rng(seeds.replay)
    best = KeepBest(book, validator, rl.eval_interval, logger, validation_hook)
    running, recent = np.zeros(env.num_envs), deque[float](maxlen=100)
    episodes, credit, step = 0, 0.0, 0
    loss = math.nan
    start = time.perf_counter()

    while episodes < rl.episodes:
        # collect
        epsilon = agent.exploration_rate(episodes)
        actions = agent.act(obs, epsilon, rng)
        next_obs, reward, terminated, _, info = env.step(actions)
        final = (
            np.where(terminated[:, None], info["final_obs"], next_obs)
            if terminated.any()
            else next_obs
        )
        shaped = learner_reward(p, rl.gamma, unit, obs, reward, final)
        ready = returns.push(obs, actions, shaped, final, terminated)
        if ready is not None:
            buffer.add(*ready)
        obs = next_obs
        running += reward
        if terminated.any():
            recent.extend(running[terminated].tolist())
            episodes += int(terminated.sum())
            running[terminated] = 0.0
            if logger is not None:
                logger.add_scalar("charts/episodic_return_bps", float(np.mean(recent)), episodes)
                logger.add_scalar("charts/epsilon", epsilon, episodes)
        step += 1

        # learn
        if buffer.size >= max(rl.dqn.learning_starts, rl.dqn.batch_size):
            credit += rl.dqn.updates_per_step
            while credit >= 1.0:
                credit -= 1.0
                loss, _ = agent.learn(
                    buffer.sample(rl.dqn.batch_size, replay_rng), episodes / rl.episodes
                )
            if logger is not None and step % settings.logging.log_interval == 0:
                logger.add_scalar("losses/td_loss", loss, agent.updates)

        # validate
        if best.due(episodes, rl.episodes):
            best.validate(episodes)
        if progress is not None:
            ret = float(np.mean(recent)) if recent else math.nan
            progress(episodes, {"return_bps": ret, "epsilon": epsilon, "loss": loss})

    if rl.keep_best:
        best.restore_best()
    return BookTrainResult(
        agent=book,
        episodes=episodes,
        updates=agent.updates,
        seconds=time.perf_counter() - start,
        best_validation_bps=float(best.bps),
        unit=unit,
        history=best.history,
    )
