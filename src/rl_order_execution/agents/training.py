"""What every agent's training shares: the seed streams, the hooks it calls, the typed result."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from rl_order_execution.agents.base import Agent


class ScalarLogger(Protocol):
    """TensorBoard's SummaryWriter, as far as training uses it."""

    def add_scalar(self, tag: str, value: float, step: int) -> None: ...


ProgressFn = Callable[[int, dict[str, float]], None]  # (episodes done, stats), every env step
ValidationHook = Callable[[int, float], None]  # (episodes done, savings bps); raise to stop


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
