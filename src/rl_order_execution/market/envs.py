"""The Gymnasium environments: one episode (`ExecutionEnv`) and B episodes in lockstep
(`VecExecutionEnv`), both over the batched functions of `dynamics`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv

from rl_order_execution.market.dynamics import desired_from_actions, market_step, observe
from rl_order_execution.market.params import MarketParams, MarketState

if TYPE_CHECKING:
    from rl_order_execution.config import SimulationSettings

ENV_ID = "rl_order_execution/OptimalExecution-v0"


def _spaces(p: MarketParams) -> tuple[spaces.Box, spaces.Discrete]:
    low = np.array([0.0, 0.0, -np.inf, -np.inf], dtype=np.float32)
    high = np.array([1.0, 1.0, np.inf, np.inf], dtype=np.float32)
    return spaces.Box(low, high, dtype=np.float32), spaces.Discrete(p.n_actions)


def _params(simulation: SimulationSettings | MarketParams | None) -> MarketParams:
    if isinstance(simulation, MarketParams):
        return simulation
    from rl_order_execution.config import SimulationSettings

    return MarketParams.from_settings(simulation or SimulationSettings())


class ExecutionEnv(gym.Env[np.ndarray, np.int64]):
    """Sell Q shares over N steps against temporary and permanent price impact.

    ## Action Space
    `Discrete(len(action_multipliers))`: action a sells m[a] times the base rate, q_k / (N - k)
    (`rate_basis: remaining`) or Q / N (`initial`), never more than held. The last step sells
    whatever is left, whatever the action.

    ## Observation Space
    `Box(4,)` float32:

    | index | feature | value | range |
    | ----- | ------- | ----- | ----- |
    | 0 | time remaining | (N - k) / N | [1/N, 1] (0 after the end) |
    | 1 | inventory remaining | q_k / Q | [0, 1] |
    | 2 | price vs arrival | (S_k - P0) / (P0 sigma sqrt(N)) | unbounded |
    | 3 | last move | (S_k - S_{k-1}) / (P0 sigma), 0 at k = 0 | unbounded |

    With sigma = 0 the scales are 1.

    ## Rewards
    In basis points of the arrival notional Q P0: r_k = [n_k (P~_k - P0) - lambda q_k^2 / Q]
    * 1e4 / (Q P0), with the execution price P~_k = S_k - beta n_k. The undiscounted return is
    minus the risk-adjusted cost C.

    ## Starting State
    k = 0, q_0 = Q, S_0 = P0 (the price model's own state at its start: the OU level at P0, the
    GARCH variance at sigma^2).

    ## Episode End
    `terminated` after step N - 1 or as soon as the inventory reaches 0; never `truncated` (the
    horizon is part of the task, not a time limit).

    ## Arguments
    `gym.make("rl_order_execution/OptimalExecution-v0", simulation=SimulationSettings(...))`;
    `gym.make_vec(..., num_envs=B, vectorization_mode="vector_entry_point")` for B in lockstep.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012

    def __init__(self, simulation: SimulationSettings | MarketParams | None = None) -> None:
        self.params = _params(simulation)
        self.observation_space, self.action_space = _spaces(self.params)
        self._state = MarketState.initial(self.params, 1)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._state = MarketState.initial(self.params, 1)
        return observe(self.params, self._state)[0], {}

    def step(self, action: np.int64 | int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        p = self.params
        shock = p.prices.draw_step(p, self.np_random, 1)
        desired = desired_from_actions(p, self._state, np.array([int(action)]))
        res = market_step(p, self._state, desired, shock)
        info = {"shares": float(res.n[0]), "execution_price": float(res.exec_price[0])}
        obs = observe(p, self._state)[0]
        return obs, float(res.reward[0]), bool(res.terminated[0]), False, info


class VecExecutionEnv(VectorEnv[np.ndarray, np.ndarray, np.ndarray]):
    """B episodes in lockstep; a finished episode restarts in the same step (final obs in info)."""

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.SAME_STEP}  # noqa: RUF012

    def __init__(
        self, num_envs: int = 1, simulation: SimulationSettings | MarketParams | None = None
    ) -> None:
        self.params = _params(simulation)
        self.num_envs = num_envs
        self.single_observation_space, self.single_action_space = _spaces(self.params)
        self.observation_space = gym.vector.utils.batch_space(
            self.single_observation_space, num_envs
        )
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, num_envs)
        self._state = MarketState.initial(self.params, num_envs)
        self._rng = np.random.default_rng()

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if isinstance(seed, list):
            seed = seed[0]
        if seed is not None:
            self._rng = np.random.default_rng(seed)
            self.action_space.seed(seed)
        self._state = MarketState.initial(self.params, self.num_envs)
        return observe(self.params, self._state), {}

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        p = self.params
        shock = p.prices.draw_step(p, self._rng, self.num_envs)
        desired = desired_from_actions(p, self._state, np.asarray(actions, dtype=np.int64))
        res = market_step(p, self._state, desired, shock)
        obs = observe(p, self._state)
        info: dict[str, Any] = {"shares": res.n, "execution_price": res.exec_price}
        if res.terminated.any():
            info["final_obs"] = obs.copy()
            info["_final_obs"] = res.terminated.copy()
            self._state.reset_where(p, res.terminated)
            obs = observe(p, self._state)
        truncated = np.zeros(self.num_envs, dtype=np.bool_)
        return obs, res.reward, res.terminated, truncated, info


def register_envs() -> None:
    if ENV_ID not in gym.registry:
        gym.register(
            id=ENV_ID,
            entry_point="rl_order_execution.market.envs:ExecutionEnv",
            vector_entry_point="rl_order_execution.market.envs:VecExecutionEnv",
        )
