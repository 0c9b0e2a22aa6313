"""Double-DQN training: vectorised collection, replay, greedy validation on shared shocks."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from rl_order_execution.agents import (
    DQNAgent,
    QNetwork,
    ReplayBuffer,
    UnaffectedPrice,
    resolve_device,
)
from rl_order_execution.evaluation import rollout
from rl_order_execution.market import (
    OBS_DIM,
    MarketParams,
    VecExecutionEnv,
    expected_next_price,
    shock_matrix,
    state_from_obs,
    twap_value,
)
from rl_order_execution.settings import RLSettings, Settings
from rl_order_execution.strategies import TWAP, GreedyAgent, Strategy


class ScalarLogger(Protocol):
    def add_scalar(self, tag: str, value: float, step: int) -> None: ...


@dataclass
class TrainingSeeds:
    """Independent streams split from the master seed."""

    env: int
    agent: int
    exploration: np.random.SeedSequence
    replay: np.random.SeedSequence
    validation: np.random.SeedSequence

    @classmethod
    def from_master(cls, seed: int) -> TrainingSeeds:
        env, agent, exploration, replay, validation = np.random.SeedSequence(seed).spawn(5)
        return cls(
            env=int(env.generate_state(1)[0]),
            agent=int(agent.generate_state(1)[0]),
            exploration=exploration,
            replay=replay,
            validation=validation,
        )


def learner_reward(
    p: MarketParams,
    rl: RLSettings,
    obs: np.ndarray,
    reward: np.ndarray,
    next_obs: np.ndarray,
    terminated: np.ndarray,
) -> np.ndarray:
    """The reward the learner sees; the env's reward and every reported number are untouched.

    Phi(s) = expected value of finishing with TWAP from s, under the model (0 at the end).
    - reward_shaping adds gamma Phi(s') - Phi(s): a potential, so the optimal policy is unchanged
      (Ng, Harada & Russell 1999), and Q-values become small advantages over TWAP;
    - price_control_variate subtracts gamma (Phi(s') - Phi(s' at E[S'])), which has mean zero given
      (s, a) because Phi is linear in S', and removes the price noise of the held inventory.
    """
    m, q, S = state_from_obs(p, obs)
    m_next, q_next, S_next = state_from_obs(p, next_obs)
    live = ~terminated

    def phi_next(price: np.ndarray) -> np.ndarray:  # Phi(s') in bps, 0 after the last step
        return np.where(live, twap_value(p, m_next, q_next, price), 0.0) * p.bps

    r = reward.astype(np.float64)
    phi_realised = phi_next(S_next) if rl.reward_shaping or rl.price_control_variate else 0.0
    if rl.reward_shaping:
        r = r + rl.gamma * phi_realised - twap_value(p, m, q, S) * p.bps
    if rl.price_control_variate:
        expected = expected_next_price(p, S, q, q - q_next)
        r = r - rl.gamma * (phi_realised - phi_next(expected))
    return (r * rl.reward_scale).astype(np.float32)


def build_network(p: MarketParams, rl: RLSettings) -> QNetwork:
    """The Q-network for a market and the agent settings (also used to load checkpoints)."""
    features = None
    if rl.unaffected_price_input:
        features = UnaffectedPrice(p.level_scale / p.move_scale, p.alpha * p.Q / p.move_scale)
    return QNetwork(OBS_DIM, p.n_actions, rl.hidden_sizes, rl.dueling, features)


class NStepReturns:
    """Turns one-step transitions of B lockstep envs into n-step ones, oldest first.

    A transition leaves the window n steps after it entered, carrying sum_l gamma^l r_l up to the
    episode's end, the state n steps later (or the final one) and the discount gamma^m to bootstrap.
    """

    def __init__(self, n: int, gamma: float) -> None:
        self.n, self.gamma = n, gamma
        self.window: deque[tuple[np.ndarray, ...]] = deque(maxlen=n)

    def push(self, *transition: np.ndarray) -> tuple[np.ndarray, ...] | None:
        """transition = (obs, actions, rewards, next_obs, terminated); returns the n-step one."""
        self.window.append(transition)
        if len(self.window) < self.n:
            return None
        obs, actions = self.window[0][0], self.window[0][1]
        alive = np.ones(len(actions), dtype=np.bool_)
        total = np.zeros(len(actions))
        discount = np.ones(len(actions))
        last_next = self.window[0][3]
        for _, _, reward, next_obs, terminated in self.window:
            total += np.where(alive, discount * reward, 0.0)
            last_next = np.where(alive[:, None], next_obs, last_next)
            discount = np.where(alive, discount * self.gamma, discount)
            alive = alive & ~terminated
        return obs, actions, total.astype(np.float32), last_next, ~alive, discount


def linear_decay(progress: float, end_fraction: float) -> float:
    """Factor going linearly from 1 at the start of training to end_fraction at its end."""
    return 1.0 - (1.0 - end_fraction) * min(max(progress, 0.0), 1.0)


def epsilon_at(episodes_done: int, start: float, end: float, decay: float) -> float:
    """The original schedule: multiplicative decay per episode, floored at `end`."""
    return max(end, start * decay**episodes_done)


@dataclass
class Validator:
    """Greedy cost of the agent on fixed validation shocks, as savings vs TWAP in bps."""

    params: MarketParams
    shocks: np.ndarray
    twap_cost: float = field(init=False)

    def __post_init__(self) -> None:
        self.twap_cost = float(rollout(self.params, TWAP(), self.shocks).cost(self.params).mean())

    @classmethod
    def from_settings(cls, settings: Settings) -> Validator:
        """A run's validation set: 2 x validation_episodes antithetic episodes from its seed."""
        p = MarketParams.from_settings(settings.simulation)
        stream = TrainingSeeds.from_master(settings.simulation.seed).validation
        return cls(p, shock_matrix(stream, 2 * settings.rl.validation_episodes, p.N, True))

    def cost(self, strategy: Strategy) -> float:
        """Mean risk-adjusted cost ($) of a strategy on the validation shocks."""
        return float(rollout(self.params, strategy, self.shocks).cost(self.params).mean())

    def savings_bps(self, agent: DQNAgent) -> float:
        return (self.twap_cost - self.cost(GreedyAgent(agent.policy))) * self.params.bps


@dataclass
class TrainResult:
    agent: DQNAgent
    episodes: int
    updates: int
    seconds: float
    best_validation_bps: float
    history: list[dict[str, float]]


ProgressFn = Callable[[int, dict[str, float]], None]


def train(
    settings: Settings,
    logger: ScalarLogger | None = None,
    progress: ProgressFn | None = None,
    validation_hook: Callable[[int, float], None] | None = None,
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
    device = resolve_device(rl.device)
    agent = DQNAgent(
        lambda: build_network(p, rl), rl.lr, rl.gamma, rl.grad_clip, device, seeds.agent
    )
    buffer = ReplayBuffer(rl.memory_size, OBS_DIM, device)
    returns = NStepReturns(rl.n_step, rl.gamma)
    explore_rng = np.random.default_rng(seeds.exploration)
    replay_rng = np.random.default_rng(seeds.replay)
    if validator is None:
        validator = Validator.from_settings(settings)
    env = VecExecutionEnv(min(rl.n_envs, rl.episodes), p)
    obs, _ = env.reset(seed=seeds.env)

    start = time.perf_counter()
    episodes = updates = step = 0
    credit, next_eval = 0.0, rl.eval_interval
    running = np.zeros(env.num_envs)
    recent: deque[float] = deque(maxlen=100)
    best_bps, best_weights = -np.inf, agent.weights()
    history: list[dict[str, float]] = []
    loss = mean_q = float("nan")

    while episodes < rl.episodes:
        epsilon = epsilon_at(episodes, rl.epsilon_start, rl.epsilon_end, rl.epsilon_decay)
        actions = agent.act(obs, epsilon, explore_rng)
        next_obs, reward, terminated, _, info = env.step(actions)
        stored_next = (
            np.where(terminated[:, None], info["final_obs"], next_obs)
            if (terminated.any())
            else next_obs
        )
        shaped = learner_reward(p, rl, obs, reward, stored_next, terminated)
        ready = returns.push(obs, actions, shaped, stored_next, terminated)
        if ready is not None:
            buffer.add(*ready)
        obs = next_obs
        step += 1

        running += reward
        if terminated.any():
            recent.extend(running[terminated].tolist())
            episodes += int(terminated.sum())
            running[terminated] = 0.0
            if logger is not None:
                logger.add_scalar("charts/episodic_return_bps", float(np.mean(recent)), episodes)
                logger.add_scalar("charts/epsilon", epsilon, episodes)

        if buffer.size >= max(rl.learning_starts, rl.batch_size):
            credit += rl.updates_per_step
            agent.optimizer.lr = rl.lr * linear_decay(episodes / rl.episodes, rl.lr_end_fraction)
            while credit >= 1.0:
                credit -= 1.0
                loss, mean_q = agent.update(buffer.sample(rl.batch_size, replay_rng))
                updates += 1
                if updates % rl.target_update == 0:
                    agent.sync_target()
            if logger is not None and step % settings.logging.log_interval == 0:
                logger.add_scalar("losses/td_loss", loss, updates)
                logger.add_scalar("losses/q_values", mean_q / rl.reward_scale, updates)

        if episodes >= next_eval or episodes >= rl.episodes:
            next_eval = episodes + rl.eval_interval
            bps = validator.savings_bps(agent)
            history.append({"episodes": episodes, "savings_bps": bps, "epsilon": epsilon})
            if logger is not None:
                logger.add_scalar("eval/cost_savings_vs_twap_bps", bps, episodes)
            if bps > best_bps:
                best_bps, best_weights = bps, agent.weights()
            if validation_hook is not None:
                validation_hook(episodes, bps)

        if progress is not None:
            ret = float(np.mean(recent)) if recent else float("nan")
            progress(episodes, {"return_bps": ret, "epsilon": epsilon, "loss": loss})

    if rl.keep_best:
        agent.load_weights(best_weights)
    return TrainResult(
        agent=agent,
        episodes=episodes,
        updates=updates,
        seconds=time.perf_counter() - start,
        best_validation_bps=float(best_bps),
        history=history,
    )


def checkpoint_payload(result: TrainResult, settings: Settings) -> dict[str, Any]:
    """Everything needed to rebuild and audit the agent."""
    import gymnasium

    return {
        "format": 1,
        "weights": result.agent.weights(),
        "settings": settings.model_dump(mode="json"),
        "seed": settings.simulation.seed,
        "versions": {
            "torch": str(torch.__version__),
            "numpy": str(np.__version__),
            "gymnasium": str(gymnasium.__version__),
        },
        "training": {
            "episodes": result.episodes,
            "updates": result.updates,
            "seconds": result.seconds,
            "best_validation_bps": result.best_validation_bps,
        },
    }
