"""What every agent's training shares: the seed streams, the hooks it calls (progress, validation,
checkpoints), the episode returns it reports, the best policy it keeps, the typed result."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch

if TYPE_CHECKING:
    from rl_order_execution.agents.base import Agent
    from rl_order_execution.agents.validation import Validator


class ScalarLogger(Protocol):
    """TensorBoard's SummaryWriter, as far as training uses it."""

    def add_scalar(self, tag: str, value: float, step: int) -> None: ...


ProgressFn = Callable[[int, dict[str, float]], None]  # (episodes done, stats), every env step
ValidationHook = Callable[[int, float], None]  # (episodes done, savings bps); raise to stop


class TrainingInterrupted(Exception):
    """Training stopped on request (Ctrl-C) at a clean point, after saving its checkpoint."""

    def __init__(self, episodes: int) -> None:
        super().__init__(f"training interrupted after {episodes:,} episodes")
        self.episodes = episodes


class Checkpoints(Protocol):
    """Where a training loop saves the state it needs to continue, and finds it again."""

    def restore(self) -> dict[str, Any] | None:
        """The saved training state to continue from; None to start afresh."""
        ...

    def reached(self, episodes: int, finished: bool, state: Callable[[], dict[str, Any]]) -> None:
        """Called at the end of every loop iteration (a clean point). Saves state() when the
        episode count crosses a checkpoint boundary, when training has finished, or when a stop
        was requested; after saving on a stop request it raises TrainingInterrupted."""
        ...


@dataclass(frozen=True)
class TrainHooks:
    """What a training reports to and asks of its caller; every hook is optional.

    `progress(episodes_done, stats)` after every vectorised step; `validation(episodes,
    savings_bps)` after every validation (the tuner prunes by raising); `validator` replaces the
    validation set drawn from the seed (a benchmark that varies the training seed keeps one fixed
    set this way); `checkpoints` restores a saved run and is offered the state at every clean
    point (agent kinds whose spec is `resumable`)."""

    logger: ScalarLogger | None = None
    progress: ProgressFn | None = None
    validation: ValidationHook | None = None
    validator: Validator | None = None
    checkpoints: Checkpoints | None = None


NO_HOOKS = TrainHooks()


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


@dataclass(frozen=True)
class ValidationPoint:
    """One greedy validation during training."""

    episodes: int
    savings_bps: float  # risk-adjusted cost savings vs TWAP on the validation shocks


class EpisodeReturns:
    """The env return of each of B lockstep episodes so far and of the last 100 finished ones,
    as Gymnasium's `RecordEpisodeStatistics` keeps them (its episode_returns, return_queue)."""

    def __init__(self, num_envs: int, window: int = 100) -> None:
        self.running = np.zeros(num_envs)  # return so far of each live episode
        self.recent: deque[float] = deque(maxlen=window)  # returns of the last finished ones
        self.episodes = 0  # finished so far

    def reset(self) -> None:
        """Every episode starts afresh (a reset of all B)."""
        self.running[:] = 0.0

    def step(self, reward: np.ndarray, terminated: np.ndarray) -> int:
        """Add one step's env rewards (B,); returns how many episodes it finished."""
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

    def state_dict(self) -> dict[str, Any]:
        return {
            "running": torch.from_numpy(self.running.copy()),
            "recent": list(self.recent),
            "episodes": self.episodes,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.running = state["running"].numpy()
        self.recent.clear()
        self.recent.extend(state["recent"])
        self.episodes = int(state["episodes"])


@dataclass
class BestPolicy:
    """The validation history and the policy with the best validation savings so far."""

    state: dict[str, Any]  # policy_state() of the best policy (the initial one until validated)
    bps: float = -math.inf
    history: list[ValidationPoint] = field(default_factory=list)

    def record(self, agent: Agent, episodes: int, bps: float) -> None:
        self.history.append(ValidationPoint(episodes, bps))
        if bps > self.bps:
            self.bps, self.state = bps, agent.policy_state()

    def state_dict(self) -> dict[str, Any]:
        history = [[point.episodes, point.savings_bps] for point in self.history]
        return {"weights": self.state, "bps": self.bps, "history": history}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.state, self.bps = state["weights"], float(state["bps"])
        self.history = [ValidationPoint(int(e), float(b)) for e, b in state["history"]]


@dataclass
class TrainResult:
    """A trained agent and how its training went."""

    agent: Agent
    episodes: int
    updates: int
    seconds: float
    best_validation_bps: float
    history: list[ValidationPoint] = field(default_factory=list)
