"""The Gymnasium environments: one episode (`ExecutionEnv`) and B episodes in lockstep
(`VecExecutionEnv`), both over the batched functions of `dynamics`."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv

from rl_order_execution.arrays import FloatArray
from rl_order_execution.market.dynamics import (
    desired_from_actions,
    desired_from_speeds,
    market_step,
    observe,
)
from rl_order_execution.market.params import MarketParams, MarketState
from rl_order_execution.market.shocks import (
    Shocks,
    generator_from_state,
    generator_state,
)

if TYPE_CHECKING:
    from rl_order_execution.config import SimulationSettings

ENV_ID = "rl_order_execution/OptimalExecution-v0"


# (low, high) of each optional feature (docs/MODEL.md, "Observation")
_FEATURE_RANGES = {
    "volume_remaining": (0.0, 1.0),
    "vwap_deviation": (-np.inf, np.inf),
    "realised_vol": (0.0, np.inf),
    "spread": (0.0, np.inf),
}
NO_SHOCK = Shocks(np.zeros(0))  # replayed episodes move with their window's bars


def _start(p: MarketParams, batch: int, rng: np.random.Generator) -> MarketState:
    """B episodes at their start; on replayed bars each draws a training window uniformly."""
    state = MarketState.initial(p, batch)
    if p.replay is not None:
        state.windows = p.replay.train
        state.window = rng.integers(len(p.replay.train), size=batch)
    return state


def _draw(p: MarketParams, state: MarketState, rng: np.random.Generator) -> Shocks:
    """This step's shocks: drawn by the price model, or none on replayed bars."""
    return NO_SHOCK if state.windows is not None else p.prices.draw_step(p, rng, len(state.q))


def _spaces(p: MarketParams) -> tuple[spaces.Box, spaces.Discrete]:
    extra = [_FEATURE_RANGES[name] for name in p.extra_features]
    low = np.array([0.0, 0.0, -np.inf, -np.inf] + [lo for lo, _ in extra], dtype=np.float32)
    high = np.array([1.0, 1.0, np.inf, np.inf] + [hi for _, hi in extra], dtype=np.float32)
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
    `Box(4 + len(extra_features),)` float32:

    | index | feature | value | range |
    | ----- | ------- | ----- | ----- |
    | 0 | time remaining | (N - k) / N | [1/N, 1] (0 after the end) |
    | 1 | inventory remaining | q_k / Q | [0, 1] |
    | 2 | price vs arrival | (S_k - P0) / (P0 sigma sqrt(N)) | unbounded |
    | 3 | last move | (S_k - S_{k-1}) / (P0 sigma), 0 at k = 0 | unbounded |

    Then the `extra_features` asked for, in the order of that list:

    | feature | value | range |
    | ------- | ----- | ----- |
    | volume_remaining | w_k + ... + w_{N-1}: the market's volume still to come | [0, 1] |
    | vwap_deviation | (VWAP_k - S_k) / (P0 sigma), 0 at k = 0 | unbounded |
    | realised_vol | sqrt(e_k) / sigma | [0, inf) |
    | spread | (ask - bid) / (close sigma) of the bar seen (replayed bars with quotes) | [0, inf) |

    VWAP_k = sum_{j<k} v_j S_j / sum_{j<k} v_j is the market's VWAP of the mids so far;
    e_0 = sigma^2, e_k = d e_{k-1} + (1 - d) r_k^2 with d = 2^(-1/10) (half-life 10 steps) and
    r_k = (S_k + alpha n_{k-1} - S_{k-1}) / P0 (our own permanent impact removed).

    With sigma = 0 the scales are 1.

    ## Rewards
    In basis points of the arrival notional Q P0: r_k = [n_k (P~_k - P0) - lambda q_k^2 / Q]
    * 1e4 / (Q P0), with the execution price P~_k = S_k - beta_k n_k (beta_k = beta on the flat
    volume profile; it grows with the step's participation otherwise). The undiscounted return
    is minus the risk-adjusted cost C.

    ## Starting State
    k = 0, q_0 = Q, S_0 = P0 (the price model's own state at its start: the OU level at P0, the
    GARCH variance at sigma^2). On replayed bars (`price_model: replay`) each episode replays a
    window of N bars of one training session, drawn uniformly with the env's generator; sigma is
    then the training sessions' and beta_k follows each bar's volume.

    ## Episode End
    `terminated` after step N - 1 or as soon as the inventory reaches 0; never `truncated` (the
    horizon is part of the task, not a time limit).

    ## Arguments
    `gym.make("rl_order_execution/OptimalExecution-v0", simulation=SimulationSettings(...))`;
    `gym.make_vec(..., num_envs=B, vectorization_mode="vector_entry_point")` for B in lockstep.

    ## Examples
    >>> import gymnasium as gym
    >>> from rl_order_execution.market import register_envs
    >>> register_envs()
    >>> env = gym.make("rl_order_execution/OptimalExecution-v0")
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape, env.action_space
    ((4,), Discrete(7))
    >>> obs, reward, terminated, truncated, info = env.step(2)  # 1x TWAP's rate: 1000 / 50
    >>> info["shares"], round(info["execution_price"], 6), round(reward, 6)
    (20.0, 99.0, -12.0)
    >>> envs = gym.make_vec(
    ...     "rl_order_execution/OptimalExecution-v0",
    ...     num_envs=4,
    ...     vectorization_mode="vector_entry_point",
    ... )
    >>> obs, info = envs.reset(seed=0)
    >>> obs.shape
    (4, 4)
    >>> obs, reward, terminated, truncated, info = envs.step([0, 2, 4, 6])
    >>> info["shares"].tolist()
    [0.0, 20.0, 40.0, 100.0]
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012

    def __init__(self, simulation: SimulationSettings | MarketParams | None = None) -> None:
        self.params = _params(simulation)
        self.observation_space, self.action_space = _spaces(self.params)
        self._state = MarketState.initial(self.params, 1)  # reset() starts the first episode

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._state = _start(self.params, 1, self.np_random)
        return observe(self.params, self._state)[0], {}

    def step(self, action: np.int64 | int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        p = self.params
        shock = _draw(p, self._state, self.np_random)
        desired = self._desired(action)
        res = market_step(p, self._state, desired, shock)
        info = {"shares": float(res.n[0]), "execution_price": float(res.exec_price[0])}
        obs = observe(p, self._state)[0]
        return obs, float(res.reward[0]), bool(res.terminated[0]), False, info

    def _desired(self, action: Any) -> FloatArray:
        """Shares the action asks for (the continuous env overrides this one line of physics)."""
        return desired_from_actions(self.params, self._state, np.array([int(action)]))


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
        self.np_random = np.random.default_rng()
        self._state = _start(self.params, num_envs, self.np_random)

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if isinstance(seed, list):
            seed = seed[0]
        if seed is not None:
            self.np_random = np.random.default_rng(seed)  # gymnasium's seeding, same stream
            self.action_space.seed(seed)
        self._state = _start(self.params, self.num_envs, self.np_random)
        return observe(self.params, self._state), {}

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        p = self.params
        shock = _draw(p, self._state, self.np_random)
        desired = self._desired(actions)
        res = market_step(p, self._state, desired, shock)
        obs = observe(p, self._state)
        info: dict[str, Any] = {"shares": res.n, "execution_price": res.exec_price}
        if res.terminated.any():
            info["final_obs"] = obs.copy()
            info["_final_obs"] = res.terminated.copy()
            self._state.reset_where(p, res.terminated)
            if p.replay is not None:
                draws = self.np_random.integers(len(p.replay.train), size=int(res.terminated.sum()))
                self._state.window[res.terminated] = draws
            obs = observe(p, self._state)
        truncated = np.zeros(self.num_envs, dtype=np.bool_)
        return obs, res.reward, res.terminated, truncated, info

    def state_dict(self) -> dict[str, Any]:
        """The live episodes (the market state's arrays, copied) and the generator's exact
        position: everything a checkpoint needs to continue these episodes bit for bit."""
        market = {
            f.name: np.array(getattr(self._state, f.name), copy=True)
            for f in dataclasses.fields(self._state)
            if f.name != "windows"  # the replayed bars: the market's, not the checkpoint's
        }
        return {"market": market, "rng": generator_state(self.np_random)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the episodes state_dict() saved."""
        replay = self.params.replay
        windows = None if replay is None else replay.train
        self._state = MarketState(**state["market"], windows=windows)
        self.np_random = generator_from_state(state["rng"])

    def _desired(self, actions: np.ndarray) -> FloatArray:
        """Shares each action asks for (the continuous env overrides this)."""
        return desired_from_actions(self.params, self._state, np.asarray(actions, dtype=np.int64))


def register_envs() -> None:
    if ENV_ID not in gym.registry:
        gym.register(
            id=ENV_ID,
            entry_point="rl_order_execution.market.envs:ExecutionEnv",
            vector_entry_point="rl_order_execution.market.envs:VecExecutionEnv",
        )
    if CONTINUOUS_ENV_ID not in gym.registry:
        gym.register(
            id=CONTINUOUS_ENV_ID,
            entry_point="rl_order_execution.market.envs:ContinuousExecutionEnv",
            vector_entry_point="rl_order_execution.market.envs:VecContinuousExecutionEnv",
        )


# --- continuous actions (PPO, SAC) ------------------------------------------------------------

CONTINUOUS_ENV_ID = "rl_order_execution/OptimalExecutionContinuous-v0"


def _speed_space(p: MarketParams) -> spaces.Box:
    """One float32 speed in [0, max_multiplier], a multiple of the base rate."""
    return spaces.Box(0.0, p.max_multiplier, shape=(1,), dtype=np.float32)


class ContinuousExecutionEnv(ExecutionEnv):
    """`ExecutionEnv` with a continuous speed: the same market, observation, reward and end.

    ## Action Space
    `Box(0, max_multiplier, (1,), float32)`: action a sells a times the base rate (as for the
    discrete multipliers), never more than held; values outside the box are clipped into it.
    """

    def __init__(self, simulation: SimulationSettings | MarketParams | None = None) -> None:
        super().__init__(simulation)
        self.action_space = _speed_space(self.params)  # type: ignore[assignment]

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        return super().step(action)

    def _desired(self, action: Any) -> FloatArray:
        speed = np.asarray(action, dtype=np.float64).reshape(1)
        return desired_from_speeds(self.params, self._state, speed)


class VecContinuousExecutionEnv(VecExecutionEnv):
    """B continuous-action episodes in lockstep, actions of shape (B, 1) (or (B,))."""

    def __init__(
        self, num_envs: int = 1, simulation: SimulationSettings | MarketParams | None = None
    ) -> None:
        super().__init__(num_envs, simulation)
        self.single_action_space = _speed_space(self.params)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, num_envs)

    def _desired(self, actions: np.ndarray) -> FloatArray:
        speeds = np.asarray(actions, dtype=np.float64).reshape(self.num_envs)
        return desired_from_speeds(self.params, self._state, speeds)
