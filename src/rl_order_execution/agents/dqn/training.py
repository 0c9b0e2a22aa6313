"""Double-DQN training, top to bottom: collect (epsilon-greedy steps of lockstep envs into the
replay buffer), learn (replay-ratio gradient steps; the agent keeps its own schedules), validate
(greedy on fixed shocks, keeping the best policy), checkpoint (every piece of state the rest of
training depends on, so a resumed run ends exactly where the uninterrupted one does)."""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from rl_order_execution.agents.base import resolve_device
from rl_order_execution.agents.dqn.agent import DQNAgent
from rl_order_execution.agents.dqn.replay import NStepReturns, ReplayBuffer
from rl_order_execution.agents.shaping import learner_reward
from rl_order_execution.agents.training import (
    NO_HOOKS,
    BestPolicy,
    Checkpoints,
    EpisodeReturns,
    TrainHooks,
    TrainingSeeds,
    TrainResult,
)
from rl_order_execution.agents.validation import Validator
from rl_order_execution.config import RLSettings, Settings
from rl_order_execution.market import MarketParams, VecExecutionEnv
from rl_order_execution.market.shocks import generator_from_state, generator_state

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
    stats: EpisodeReturns = field(init=False)  # the env's returns, for the charts

    def __post_init__(self) -> None:
        self.returns = NStepReturns(self.rl.dqn.n_step, self.rl.gamma)
        self.stats = EpisodeReturns(self.env.num_envs)

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
        return self.stats.step(reward, terminated)

    @property
    def episodes(self) -> int:
        return self.stats.episodes

    @property
    def mean_return(self) -> float:
        """Mean env return (bps) of the last 100 finished episodes."""
        return self.stats.mean_return

    def state_dict(self) -> dict[str, Any]:
        """The live episodes (market state, env and exploration generators), the n-step window,
        the running returns and the counters."""
        env = self.env.state_dict()
        return {
            "obs": torch.from_numpy(self.obs.copy()),
            "market": {name: torch.from_numpy(a) for name, a in env["market"].items()},
            "env_rng": env["rng"],
            "rng": generator_state(self.rng),
            "window": self.returns.state_dict(),
            **self.stats.state_dict(),  # running, recent, episodes
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.obs = state["obs"].numpy()
        market = {name: t.numpy() for name, t in state["market"].items()}
        self.env.load_state_dict({"market": market, "rng": state["env_rng"]})
        self.rng = generator_from_state(state["rng"])
        self.returns.load_state_dict(state["window"])
        self.stats.load_state_dict(state)


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
class Counters:
    """The loop's own bookkeeping: vectorised steps, the next validation, the last statistics,
    and the seconds spent in earlier sessions of a resumed run."""

    next_eval: int
    step: int = 0
    loss: float = math.nan
    mean_q: float = math.nan
    seconds_before: float = 0.0


@dataclass
class Session:
    """Everything a training run carries from one loop iteration to the next."""

    agent: DQNAgent
    collector: Collector
    buffer: ReplayBuffer
    replay_rng: np.random.Generator
    ratio: ReplayRatio
    best: BestPolicy
    counters: Counters
    started: float = field(default_factory=time.perf_counter)

    @property
    def seconds(self) -> float:
        return self.counters.seconds_before + time.perf_counter() - self.started

    def state_dict(self) -> dict[str, Any]:
        c = self.counters
        return {
            "agent": self.agent.training_state(),
            "collector": self.collector.state_dict(),
            "buffer": self.buffer.state_dict(),
            "replay_rng": generator_state(self.replay_rng),
            "ratio_credit": self.ratio.credit,
            "best": self.best.state_dict(),
            "counters": dataclasses.asdict(c) | {"seconds_before": self.seconds},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.agent.load_training_state(state["agent"])
        self.collector.load_state_dict(state["collector"])
        self.buffer.load_state_dict(state["buffer"])
        self.replay_rng = generator_from_state(state["replay_rng"])
        self.ratio.credit = float(state["ratio_credit"])
        self.best.load_state_dict(state["best"])
        self.counters = Counters(**state["counters"])
        self.started = time.perf_counter()


def start_session(
    settings: Settings, p: MarketParams, checkpoints: Checkpoints | None = None
) -> Session:
    """A fresh training run from the seed, or the saved one continued."""
    rl = settings.rl
    seeds = TrainingSeeds.from_master(settings.simulation.seed)
    saved = checkpoints.restore() if checkpoints is not None else None
    agent = DQNAgent.for_market(p, rl, resolve_device(rl.device), seeds.agent)
    # a resumed run keeps its lockstep width, even under a larger episode budget
    running = None if saved is None else len(saved["collector"]["running"])
    n_envs = min(rl.dqn.n_envs, rl.episodes) if running is None else running
    env = VecExecutionEnv(n_envs, p)
    obs, _ = env.reset(seed=seeds.env)
    buffer = ReplayBuffer(rl.dqn.memory_size, p.obs_dim, agent.device)
    session = Session(
        agent=agent,
        collector=Collector(p, rl, env, obs, buffer, np.random.default_rng(seeds.exploration)),
        buffer=buffer,
        replay_rng=np.random.default_rng(seeds.replay),
        ratio=ReplayRatio(rl.dqn.updates_per_step),
        best=BestPolicy(agent.policy_state()),
        counters=Counters(next_eval=rl.eval_interval),
    )
    if saved is not None:
        session.load_state_dict(saved)
    return session


def train(settings: Settings, market: MarketParams, hooks: TrainHooks = NO_HOOKS) -> TrainResult:
    """Train a Double-DQN agent on `market` with settings.rl; `hooks` as for every agent
    (`agents.training.TrainHooks`: progress, TensorBoard, validation, checkpoints)."""
    rl = settings.rl
    logger, progress, checkpoints = hooks.logger, hooks.progress, hooks.checkpoints
    validator = hooks.validator or Validator.from_settings(settings, market)
    run = start_session(settings, market, checkpoints)
    agent, collector, buffer, best, c = run.agent, run.collector, run.buffer, run.best, run.counters
    log_every = settings.logging.log_interval

    while collector.episodes < rl.episodes:
        # collect
        epsilon = agent.exploration_rate(collector.episodes)
        finished = collector.step(agent, epsilon)
        c.step += 1
        if finished and logger is not None:
            episodes = collector.episodes
            logger.add_scalar("charts/episodic_return_bps", collector.mean_return, episodes)
            logger.add_scalar("charts/epsilon", epsilon, episodes)

        # learn
        if buffer.size >= max(rl.dqn.learning_starts, rl.dqn.batch_size):
            done = collector.episodes / rl.episodes
            for _ in range(run.ratio.due()):
                batch = buffer.sample(rl.dqn.batch_size, run.replay_rng)
                c.loss, c.mean_q = agent.learn(batch, done)
            if logger is not None and c.step % log_every == 0:
                logger.add_scalar("losses/td_loss", c.loss, agent.updates)
                logger.add_scalar("losses/q_values", c.mean_q / rl.reward_scale, agent.updates)

        # validate
        episodes = collector.episodes
        if episodes >= c.next_eval or episodes >= rl.episodes:
            c.next_eval = episodes + rl.eval_interval
            bps = validator.savings_bps(agent)
            best.record(agent, episodes, bps)
            log.debug("validation after %d episodes: %.2f bps cost savings vs TWAP", episodes, bps)
            if logger is not None:
                logger.add_scalar("eval/cost_savings_vs_twap_bps", bps, episodes)
            if hooks.validation is not None:
                hooks.validation(episodes, bps)

        if progress is not None:
            ret = collector.mean_return
            progress(episodes, {"return_bps": ret, "epsilon": epsilon, "loss": c.loss})

        # checkpoint (a clean point: the iteration is whole)
        if checkpoints is not None:
            checkpoints.reached(episodes, episodes >= rl.episodes, run.state_dict)

    if rl.keep_best:
        agent.load_policy_state(best.state)
    return TrainResult(
        agent=agent,
        episodes=collector.episodes,
        updates=agent.updates,
        seconds=run.seconds,
        best_validation_bps=float(best.bps),
        history=best.history,
    )
