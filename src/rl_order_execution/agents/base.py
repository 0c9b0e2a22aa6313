"""The agent seam: what evaluation, the training entry points and checkpoints need of an agent,
and the spec by which the registry knows how to train, restore and tune each kind."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch

if TYPE_CHECKING:
    import optuna

    from rl_order_execution.agents.training import TrainHooks, TrainResult
    from rl_order_execution.config import OptimizationSettings, Settings
    from rl_order_execution.market import FloatArray, MarketParams


class Agent(Protocol):
    """A trained policy, whatever learned it."""

    kind: str  # the registry's name for it, saved in checkpoints ("ddqn")

    def speeds(self, obs: np.ndarray) -> FloatArray:
        """The deterministic policy's speed for each row of a float32 observation batch
        (B, obs_dim), as a float64 multiple of the market's base rate, shape (B,)."""
        ...

    def policy_state(self) -> dict[str, Any]:
        """Tensors (on the CPU) that `AgentSpec.load` turns back into this policy."""
        ...


class TrainFn(Protocol):
    """Train an agent of one kind on `market` (built once from the settings) with settings.rl."""

    def __call__(
        self, settings: Settings, market: MarketParams, hooks: TrainHooks = ...
    ) -> TrainResult: ...


LoadFn = Callable[["Settings", dict[str, Any], torch.device], Agent]
SuggestFn = Callable[["optuna.trial.BaseTrial", "OptimizationSettings"], dict[str, Any]]


@dataclass(frozen=True)
class AgentSpec:
    """How the toolkit handles one kind of agent."""

    kind: str
    train: TrainFn
    load: LoadFn  # (settings it was trained with, policy_state(), device) -> the agent
    suggest: SuggestFn  # one Optuna configuration: the rl settings it changes
    continuous: bool  # acts with a speed in [0, max_multiplier], not an action_multipliers index
    resumable: bool = False  # train honours hooks.checkpoints: a run can resume (--resume)

    def largest_speed(self, p: MarketParams) -> float:
        """The largest multiple of the TWAP rate this kind of agent can ask for on market p."""
        return p.max_multiplier if self.continuous else max(p.multipliers)


def resolve_device(device: str) -> torch.device:
    """`auto` picks CUDA when present; asking for CUDA without it is a user error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("rl.device cuda: no CUDA device is available (use cpu or auto)")
    return torch.device(device)
