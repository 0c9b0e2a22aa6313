"""Gymnasium environments of the book market: one episode (`BookEnv`) and B episodes in lockstep
(`BookVecEnv`, a native vector env), both over the batched functions of `dynamics`."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv

from rl_order_execution.market.book.dynamics import (
    BookState,
    Menu,
    Orders,
    continuous_bounds,
    continuous_orders,
    draw_reset,
    features,
    menu_orders,
    start,
    step,
)
from rl_order_execution.market.book.params import BookParams, BoolArray

BOOK_ENV_ID = "rl_order_execution/BookExecution-v0"
BOOK_CONTINUOUS_ENV_ID = "rl_order_execution/BookExecutionContinuous-v0"


def observation_space(p: BookParams) -> spaces.Box:
    """The six features' ranges: time and inventory in [0, 1], price unbounded, the last move in
    [-1, 1], the spread and the imbalance within their levels."""
    low = [0.0, 0.0, -np.inf, -1.0, p.spreads[0], p.levels[0]]
    high = [1.0, 1.0, np.inf, 1.0, p.spreads[-1], p.levels[-1]]
    return spaces.Box(np.array(low, np.float32), np.array(high, np.float32), dtype=np.float32)


def action_space(p: BookParams, continuous: bool) -> spaces.Discrete | spaces.Box:
    """Discrete(menu), or SAC's Box [-M, max_depth] of shape (1,)."""
    if not continuous:
        return spaces.Discrete(p.n_actions)
    low, high = continuous_bounds(p)
    return spaces.Box(low, high, shape=(1,), dtype=np.float32)


def _orders(p: BookParams, menu: Menu, actions: Any, continuous: bool) -> Orders:
    if continuous:
        return continuous_orders(p, actions)
    return menu_orders(p, np.asarray(actions, dtype=np.int64).reshape(-1), menu)


def _params(params: BookParams | None) -> BookParams:
    return params if params is not None else BookParams.default()


def restart_where(
    p: BookParams, s: BookState, mask: BoolArray, rng: np.random.Generator
) -> tuple[BookState, BookState]:
    """Finished episodes (mask) start afresh, drawing their (s_0, iota_0) from rng (one uniform
    for the spreads of all of them, then one for the imbalances). Returns the whole batch's
    state and the fresh episodes' own (in the order of the mask's rows)."""
    fresh = start(p, draw_reset(rng, int(mask.sum())))
    arrays = {}
    for name in ("k", "q", "S", "spread", "imbalance", "last_move"):
        a = getattr(s, name).copy()
        a[mask] = getattr(fresh, name)
        arrays[name] = a
    return BookState(**arrays), fresh


class BookEnv(gym.Env[np.ndarray, Any]):
    """Sell Q shares over N steps in a limit-order book with a tick, a spread and a queue
    imbalance, with limit orders (earn the spread, fill by chance) and market orders (pay it).

    ## Action Space
    `Discrete(len(book_actions))`: an index into the menu (`wait`, `limit d`, `market m`); or, with
    `continuous=True`, `Box(-M, max_depth, (1,), float32)`: a < 0 is `market ceil(-a)`, a >= 0 a
    limit order a ticks behind the ask (values outside are clipped into the box). The last step
    sells whatever is left at the bid, whatever the action.

    ## Observation Space
    `Box(6,)` float32: (N - k)/N, q_k/Q, (S_k - P0)/(tau sqrt(pbar N)), D_{k-1} (the last exogenous
    mid move, ticks), s_k (ticks), iota_k.

    ## Rewards
    In basis points of Q P0: r_k = [proceeds_k - n_k P0 - lambda_b q_k^2 / Q] * 1e4 / (Q P0); the
    undiscounted return is minus the risk-adjusted cost C.

    ## Starting State
    k = 0, q = Q, S = P0, (s_0, iota_0) from the stationary laws of their chains.

    ## Episode End
    `terminated` after step N - 1 or as soon as the inventory reaches 0; never `truncated`.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012

    def __init__(self, params: BookParams | None = None, continuous: bool = False) -> None:
        self.params = _params(params)
        self.continuous = continuous
        self.observation_space = observation_space(self.params)
        self.action_space = action_space(self.params, continuous)
        self._menu = Menu.of(self.params)
        self._state = start(self.params, np.zeros((2, 1)))  # reset() starts the first episode

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._state = start(self.params, draw_reset(self.np_random, 1))
        return features(self.params, self._state)[0], {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        p = self.params
        orders = _orders(p, self._menu, np.reshape(action, (1, -1))[:, 0], self.continuous)
        self._state, res = step(p, self._state, orders, self.np_random)
        info = {
            "shares": float(res.shares[0]),
            "proceeds": float(res.proceeds[0]),
            "limit_posted": bool(res.posted[0]),
            "limit_filled": bool(res.filled[0]),
            "passive_shares": float(res.passive[0]),
        }
        obs = features(p, self._state)[0]
        return obs, float(res.reward[0]), bool(res.terminated[0]), False, info


class BookVecEnv(VectorEnv[np.ndarray, np.ndarray, np.ndarray]):
    """B book episodes in lockstep; a finished episode restarts in the same step (its last
    observation in info["final_obs"]). With one episode it draws exactly what `BookEnv` does."""

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.SAME_STEP}  # noqa: RUF012

    def __init__(
        self, num_envs: int = 1, params: BookParams | None = None, continuous: bool = False
    ) -> None:
        self.params = _params(params)
        self.num_envs = num_envs
        self.continuous = continuous
        self.single_observation_space = observation_space(self.params)
        self.single_action_space = action_space(self.params, continuous)
        self.observation_space = gym.vector.utils.batch_space(
            self.single_observation_space, num_envs
        )
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, num_envs)
        self._menu = Menu.of(self.params)
        self._rng = np.random.default_rng()
        self._state = start(self.params, draw_reset(self._rng, num_envs))

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if isinstance(seed, list):
            seed = seed[0]
        if seed is not None:
            self._rng = np.random.default_rng(seed)
            self.action_space.seed(seed)
        self._state = start(self.params, draw_reset(self._rng, self.num_envs))
        return features(self.params, self._state), {}

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        p = self.params
        a = np.asarray(actions).reshape(self.num_envs, -1)[:, 0]
        orders = _orders(p, self._menu, a, self.continuous)
        self._state, res = step(p, self._state, orders, self._rng)
        obs = features(p, self._state)
        info: dict[str, Any] = {
            "shares": res.shares,
            "proceeds": res.proceeds,
            "limit_posted": res.posted,
            "limit_filled": res.filled,
            "passive_shares": res.passive,
        }
        if res.terminated.any():
            done = res.terminated
            info["final_obs"] = obs.copy()
            info["_final_obs"] = done.copy()
            self._state, fresh = restart_where(p, self._state, done, self._rng)
            obs[done] = features(p, fresh)  # only the restarted rows change
        truncated = np.zeros(self.num_envs, dtype=np.bool_)
        return obs, res.reward, res.terminated, truncated, info


def register_book_envs() -> None:
    """Register both envs (menu and continuous actions) with Gymnasium; gym.make(id, params=...,
    ) and gym.make_vec(id, num_envs=B, vectorization_mode="vector_entry_point", params=...)."""
    for env_id, continuous in ((BOOK_ENV_ID, False), (BOOK_CONTINUOUS_ENV_ID, True)):
        if env_id not in gym.registry:
            gym.register(
                id=env_id,
                entry_point="rl_order_execution.market.book.envs:BookEnv",
                vector_entry_point="rl_order_execution.market.book.envs:BookVecEnv",
                kwargs={"continuous": continuous},
            )
