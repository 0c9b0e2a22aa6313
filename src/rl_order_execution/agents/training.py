"""What every agent's training shares: the seed streams, the hooks it calls (progress, validation,
checkpoints), the typed result."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

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


@dataclass
class TrainResult:
    """A trained agent and how its training went."""

    agent: Agent
    episodes: int
    updates: int
    seconds: float
    best_validation_bps: float
    history: list[ValidationPoint] = field(default_factory=list)
