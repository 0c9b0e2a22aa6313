"""Double-DQN training, top to bottom: collect (epsilon-greedy steps of lockstep envs into the
replay buffer), learn (replay-ratio gradient steps; the agent keeps its own schedules), validate
(greedy on fixed shocks, keeping the best policy)."""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rl_order_execution.agents.base import resolve_device
from rl_order_execution.agents.dqn.agent import DQNAgent
from rl_order_execution.agents.dqn.replay import NStepReturns, ReplayBuffer
from rl_order_execution.agents.shaping import learner_reward
from rl_order_execution.agents.training import (
    ProgressFn,
    ScalarLogger,
    TrainingSeeds,
    TrainResult,
    ValidationHook,
    ValidationPoint,
)
from rl_order_execution.agents.validation import Validator
from rl_order_execution.config import RLSettings, Settings
from rl_order_execution.market import OBS_DIM, MarketParams, VecExecutionEnv

log = logging.getLogger(__name__)


@dataclass
class Collector:
    """B lockstep episodes acted on epsilon-greedily; their n-step transitions, with the learner's
    reward, go to the replay buffer."""

    p: MarketParams
    rl: RLSettings
    env: VecExecutionEnv
    obs: np.ndarray
    buffer: ReplayBuffer
    rng: np.random.Generator
    returns: NStepReturns = field(init=False)
    running: np.ndarray = field(init=False)  # env return so far of each live episode
    recent: deque[float] = field(init=False)  # returns of the last 100 finished episodes
    episodes: int = 0

    def __post_init__(self) -> None:
        self.returns = NStepReturns(self.rl.n_step, self.rl.gamma)
        self.running = np.zeros(self.env.num_envs)
        self.recent = deque(maxlen=100)

    def step(self, agent: DQNAgent, epsilon: float) -> int:
        """One vectorised env step; returns how many episodes it finished."""
        actions = agent.act(self.obs, epsilon, self.rng)
        next_obs, reward, terminated, _, info = self.env.step(actions)
        stored_next = (
            np.where(terminated[:, None], info["final_obs"], next_obs)
            if terminated.any()
            else next_obs
        )
        shaped = learner_reward(self.p, self.rl, self.obs, reward, stored_next, terminated)
        ready = self.returns.push(self.obs, actions, shaped, stored_next, terminated)
        if ready is not None:
            self.buffer.add(*ready)
        self.obs = next_obs
        self.running += reward
        finished = int(terminated.sum())
        if finished:
            self.recent.extend(self.running[terminated].tolist())
            self.episodes += finished
            self.running[terminated] = 0.0
        return finished

    @property
    def mean_return(self) -> float:
        """Mean env return (bps) of the last 100 finished episodes."""
        return float(np.mean(self.recent)) if self.recent else math.nan


@dataclass
class ReplayRatio:
    """Gradient updates owed at `per_step` per env step; fractions carry over."""

    per_step: float
    credit: float = 0.0

    def due(self) -> int:
        self.credit += self.per_step
        updates = 0
        while self.credit >= 1.0:
            self.credit -= 1.0
            updates += 1
        return updates


@dataclass
class BestPolicy:
    """The validation history and the policy with the best validation savings so far."""

    state: dict[str, Any]
    bps: float = -math.inf
    history: list[ValidationPoint] = field(default_factory=list)

    def record(self, agent: DQNAgent, episodes: int, bps: float) -> None:
        self.history.append(ValidationPoint(episodes, bps))
        if bps > self.bps:
            self.bps, self.state = bps, agent.policy_state()


def train(
    settings: Settings,
    *,
    logger: ScalarLogger | None = None,
    progress: ProgressFn | None = None,
    validation_hook: ValidationHook | None = None,
    validator: Validator | None = None,
) -> TrainResult:
    """Train a Double-DQN agent on settings.simulation with settings.rl.

    `progress(episodes_done, stats)` is called after every vectorised step;
    `validation_hook(episodes, savings_bps)` after every validation (the tuner prunes by raising).
    `validator` replaces the validation set drawn from the seed (a benchmark that varies the
    training seed keeps one fixed validation set this way).
    """
    rl, p = settings.rl, MarketParams.from_settings(settings.simulation)
    seeds = TrainingSeeds.from_master(settings.simulation.seed)
    agent = DQNAgent.for_market(p, rl, resolve_device(rl.device), seeds.agent)
    env = VecExecutionEnv(min(rl.n_envs, rl.episodes), p)
    obs, _ = env.reset(seed=seeds.env)
    buffer = ReplayBuffer(rl.memory_size, OBS_DIM, agent.device)
    collector = Collector(p, rl, env, obs, buffer, np.random.default_rng(seeds.exploration))
    replay_rng = np.random.default_rng(seeds.replay)
    ratio = ReplayRatio(rl.updates_per_step)
    if validator is None:
        validator = Validator.from_settings(settings)
    best = BestPolicy(agent.policy_state())
    log_every = settings.logging.log_interval

    start = time.perf_counter()
    step, next_eval = 0, rl.eval_interval
    loss = mean_q = math.nan
    while collector.episodes < rl.episodes:
        # collect
        epsilon = agent.exploration_rate(collector.episodes)
        finished = collector.step(agent, epsilon)
        step += 1
        if finished and logger is not None:
            episodes = collector.episodes
            logger.add_scalar("charts/episodic_return_bps", collector.mean_return, episodes)
            logger.add_scalar("charts/epsilon", epsilon, episodes)

        # learn
        if buffer.size >= max(rl.learning_starts, rl.batch_size):
            done = collector.episodes / rl.episodes
            for _ in range(ratio.due()):
                loss, mean_q = agent.learn(buffer.sample(rl.batch_size, replay_rng), done)
            if logger is not None and step % log_every == 0:
                logger.add_scalar("losses/td_loss", loss, agent.updates)
                logger.add_scalar("losses/q_values", mean_q / rl.reward_scale, agent.updates)

        # validate
        episodes = collector.episodes
        if episodes >= next_eval or episodes >= rl.episodes:
            next_eval = episodes + rl.eval_interval
            bps = validator.savings_bps(agent)
            best.record(agent, episodes, bps)
            log.debug("validation after %d episodes: %.2f bps cost savings vs TWAP", episodes, bps)
            if logger is not None:
                logger.add_scalar("eval/cost_savings_vs_twap_bps", bps, episodes)
            if validation_hook is not None:
                validation_hook(episodes, bps)

        if progress is not None:
            ret = collector.mean_return
            progress(episodes, {"return_bps": ret, "epsilon": epsilon, "loss": loss})

    if rl.keep_best:
        agent.load_policy_state(best.state)
    return TrainResult(
        agent=agent,
        episodes=collector.episodes,
        updates=agent.updates,
        seconds=time.perf_counter() - start,
        best_validation_bps=float(best.bps),
        history=best.history,
    )
