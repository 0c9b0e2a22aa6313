"""What the three agents' trainings on the book market share: the market of the settings, the
trained policy behind one small protocol, the typed result and the keep-best validation record."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from rl_order_execution.agents.book.validation import BookValidator
from rl_order_execution.agents.training import (
    ScalarLogger,
    TrainingSeeds,
    ValidationHook,
    ValidationPoint,
)
from rl_order_execution.config import Settings
from rl_order_execution.market.book import BookParams, ObservationPolicy

CONTINUOUS_KINDS = ("sac",)  # act on [-M, max_depth]; the others on the menu


class BookAgent(Protocol):
    """A trained policy on the book market, whatever learned it."""

    kind: str  # "ddqn", "ppo", "sac"

    @property
    def continuous(self) -> bool:
        """Acts with a in [-M, max_depth] (SAC's action set), not a menu index."""
        ...

    def act(self, obs: np.ndarray) -> np.ndarray:
        """The deterministic policy's action for each row of a float32 (B, 6) observation batch:
        menu indices (B,), or continuous actions (B,)."""
        ...

    def policy_state(self) -> dict[str, Any]:
        """The policy's tensors, on the CPU."""
        ...

    def load_policy_state(self, state: dict[str, Any]) -> None: ...


def as_policy(agent: BookAgent, name: str = "agent") -> ObservationPolicy:
    """The agent as a strategy of the book's evaluation."""
    return ObservationPolicy(name, agent.act, agent.continuous)


def action_set(kind: str) -> str:
    """`continuous` for SAC, `menu` for the Double DQN and PPO."""
    return "continuous" if kind in CONTINUOUS_KINDS else "menu"


@dataclass
class BookTrainResult:
    """A trained book agent and how its training went (`unit`: learner units per bp)."""

    agent: BookAgent
    episodes: int
    updates: int
    seconds: float
    best_validation_bps: float
    unit: float
    history: list[ValidationPoint] = field(default_factory=list)


@dataclass
class KeepBest:
    """Validations at every `interval` episodes; the policy with the best savings so far."""

    agent: BookAgent
    validator: BookValidator
    interval: int
    logger: ScalarLogger | None = None
    hook: ValidationHook | None = None
    bps: float = -math.inf
    state: dict[str, Any] = field(default_factory=dict)
    history: list[ValidationPoint] = field(default_factory=list)
    next_at: int = 0

    def __post_init__(self) -> None:
        self.next_at = self.interval
        self.state = self.agent.policy_state()

    def due(self, episodes: int, budget: int) -> bool:
        return episodes >= self.next_at or episodes >= budget

    def validate(self, episodes: int) -> float:
        """Validate now; remember the policy if it is the best so far; call the hook (which may
        raise to stop, as the tuner's pruner does)."""
        self.next_at = episodes + self.interval
        bps = self.validator.savings_bps(as_policy(self.agent))
        self.history.append(ValidationPoint(episodes, bps))
        if bps > self.bps:
            self.bps, self.state = bps, self.agent.policy_state()
        if self.logger is not None:
            self.logger.add_scalar("eval/cost_savings_vs_twap_bps", bps, episodes)
        if self.hook is not None:
            self.hook(episodes, bps)
        return bps

    def restore_best(self) -> None:
        self.agent.load_policy_state(self.state)


def book_params(settings: Settings) -> BookParams:
    """The book market of the settings: the `book:` section and simulation's Q, N and P0,
    validated once (a BookSettingsError is a SettingsError: one line, exit 2)."""
    sim = settings.simulation
    return BookParams.from_settings(
        settings.book, sim.total_shares, sim.time_horizon, sim.start_price
    )


def validator_for(settings: Settings, p: BookParams) -> BookValidator:
    """The run's validation set: 2 x rl.validation_episodes episodes from its own seed stream."""
    stream = TrainingSeeds.from_master(settings.simulation.seed).validation
    return BookValidator.from_stream(p, stream, 2 * settings.rl.validation_episodes)


def grid_observations(p: BookParams) -> np.ndarray:
    """The observation at every (k, g, s, i) of the exact solution's table, flattened in that
    order (N G S L, 6), at the mid P0 and last move 0 (the features the optimum ignores)."""
    shape = (p.N, p.G, len(p.spreads), len(p.levels))
    k, g, s, i = (x.reshape(-1) for x in np.indices(shape))
    obs = np.zeros((len(k), 6), dtype=np.float32)
    obs[:, 0] = (p.N - k) / p.N
    obs[:, 1] = p.grid[g] / p.Q
    obs[:, 4] = p.spreads[s]
    obs[:, 5] = p.levels[i]
    return obs


def tabulate(p: BookParams, agent: BookAgent) -> np.ndarray:
    """The agent's action at every (k, g, s, i) of the exact solution's table (N, G, S, L)."""
    shape = (p.N, p.G, len(p.spreads), len(p.levels))
    return np.asarray(agent.act(grid_observations(p))).reshape(shape)
