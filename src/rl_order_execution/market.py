"""The execution market of MODEL.md: pure numpy dynamics over a leading batch axis, and the
Gymnasium environments (one episode, and B episodes in lockstep) that both call them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv

from rl_order_execution.settings import SimulationSettings

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
IntArray = np.ndarray[Any, np.dtype[np.int64]]
ENV_ID = "rl_order_execution/OptimalExecution-v0"
OBS_DIM = 4


@dataclass(frozen=True)
class MarketParams:
    """The numbers of one market, with MODEL.md's symbols."""

    Q: float = 1000.0
    N: int = 50
    P0: float = 100.0
    sigma: float = 0.002
    mu: float = 0.0
    alpha: float = 0.01
    beta: float = 0.05
    lam: float = 0.1
    multipliers: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0)
    rate_basis: str = "remaining"
    price_model: str = "gbm"
    kappa: float = math.log(2) / 10
    lot_size: float = 0.0
    _mult: FloatArray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_mult", np.asarray(self.multipliers, dtype=np.float64))

    @classmethod
    def from_settings(cls, sim: SimulationSettings) -> MarketParams:
        return cls(
            Q=sim.total_shares,
            N=sim.time_horizon,
            P0=sim.start_price,
            sigma=sim.volatility,
            mu=sim.drift,
            alpha=sim.liquidity_param,
            beta=sim.temp_impact_param,
            lam=sim.risk_aversion,
            multipliers=tuple(sim.action_multipliers),
            rate_basis=sim.rate_basis,
            price_model=sim.price_model,
            kappa=sim.mean_reversion,
            lot_size=sim.lot_size,
        )

    def with_(self, **changes: Any) -> MarketParams:
        return replace(self, **changes)

    @property
    def notional(self) -> float:
        return self.Q * self.P0

    @property
    def bps(self) -> float:
        """Multiply $ by this to get basis points of the arrival notional."""
        return 1e4 / self.notional

    @property
    def n_actions(self) -> int:
        return len(self.multipliers)

    @property
    def level_scale(self) -> float:
        """Denominator of the 'price vs arrival' feature."""
        return self.P0 * self.sigma * math.sqrt(self.N) if self.sigma > 0 else 1.0

    @property
    def move_scale(self) -> float:
        """Denominator of the 'last move' feature."""
        return self.P0 * self.sigma if self.sigma > 0 else 1.0

    @property
    def ou_noise(self) -> float:
        """Std of the OU price shock per step in $."""
        k = self.kappa
        return self.sigma * self.P0 * math.sqrt((1 - math.exp(-2 * k)) / (2 * k))


@dataclass
class MarketState:
    """B episodes at once: step index k, inventory q, mid price S, previous mid, OU level theta."""

    k: IntArray
    q: FloatArray
    S: FloatArray
    S_prev: FloatArray
    theta: FloatArray

    @classmethod
    def initial(cls, p: MarketParams, batch: int) -> MarketState:
        return cls(
            k=np.zeros(batch, dtype=np.int64),
            q=np.full(batch, p.Q),
            S=np.full(batch, p.P0),
            S_prev=np.full(batch, p.P0),
            theta=np.full(batch, p.P0),
        )

    def reset_where(self, p: MarketParams, mask: np.ndarray[Any, np.dtype[np.bool_]]) -> None:
        self.k[mask] = 0
        self.q[mask] = p.Q
        self.S[mask] = p.P0
        self.S_prev[mask] = p.P0
        self.theta[mask] = p.P0


def observe(p: MarketParams, s: MarketState) -> np.ndarray[Any, np.dtype[np.float32]]:
    """Features of MODEL.md, shape (B, 4), float32."""
    obs = np.empty((s.q.shape[0], OBS_DIM), dtype=np.float32)
    obs[:, 0] = (p.N - s.k) / p.N
    obs[:, 1] = s.q / p.Q
    obs[:, 2] = (s.S - p.P0) / p.level_scale
    obs[:, 3] = (s.S - s.S_prev) / p.move_scale
    return obs


def twap_rate(p: MarketParams, q: FloatArray, k: IntArray) -> FloatArray:
    """TWAP rate of the remaining order, q_k / (N - k)."""
    return q / np.maximum(p.N - k, 1)


def base_rate(p: MarketParams, s: MarketState) -> FloatArray:
    """The rate the multipliers scale: q_k / (N - k) (rate_basis remaining) or Q / N (initial)."""
    return twap_rate(p, s.q, s.k) if p.rate_basis == "remaining" else np.full_like(s.q, p.Q / p.N)


def desired_from_actions(p: MarketParams, s: MarketState, actions: IntArray) -> FloatArray:
    """Shares an action index asks for: m[a] times the configured base rate."""
    return p._mult[actions] * base_rate(p, s)


def trade_size(p: MarketParams, s: MarketState, desired: FloatArray) -> FloatArray:
    """What actually trades: within [0, q_k], lot-rounded, and everything at the last step."""
    n = np.minimum(np.maximum(desired, 0.0), s.q)  # np.clip, without its per-call overhead
    if p.lot_size > 0:
        n = np.floor(n / p.lot_size + 1e-9) * p.lot_size
        n = np.minimum(n, s.q)
    return np.where(s.k >= p.N - 1, s.q, n)


def execution_price(p: MarketParams, S: FloatArray, n: FloatArray) -> FloatArray:
    """P~ = S - beta * n."""
    return S - p.beta * n


def step_reward(
    p: MarketParams, q: FloatArray, n: FloatArray, exec_price: FloatArray
) -> FloatArray:
    """r_k in bps of Q*P0: execution gain vs arrival minus the inventory penalty on q_k."""
    return (n * (exec_price - p.P0) - p.lam * q * q / p.Q) * p.bps


def next_price(
    p: MarketParams, S: FloatArray, theta: FloatArray, n: FloatArray, z: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Mid price and OU level after the trade n and shock z (permanent impact included)."""
    if p.price_model == "gbm":
        S_next = S * np.exp(p.mu - 0.5 * p.sigma**2 + p.sigma * z) - p.alpha * n
        return S_next, theta
    theta_next = theta - p.alpha * n
    decay = math.exp(-p.kappa)
    S_next = theta + (S - theta) * decay + p.ou_noise * z - p.alpha * n
    return S_next, theta_next


@dataclass
class StepResult:
    n: FloatArray
    exec_price: FloatArray
    reward: FloatArray
    terminated: np.ndarray[Any, np.dtype[np.bool_]]


def market_step(p: MarketParams, s: MarketState, desired: FloatArray, z: FloatArray) -> StepResult:
    """Advance every episode one step in place: trade, reward, price move, inventory."""
    n = trade_size(p, s, desired)
    px = execution_price(p, s.S, n)
    reward = step_reward(p, s.q, n, px)
    S_next, theta_next = next_price(p, s.S, s.theta, n, z)
    s.S_prev, s.S, s.theta = s.S, S_next, theta_next
    s.q = np.maximum(s.q - n, 0.0)
    s.k = s.k + 1
    terminated = (s.k >= p.N) | (s.q <= 0.0)
    return StepResult(n=n, exec_price=px, reward=reward, terminated=terminated)


def state_from_obs(p: MarketParams, obs: np.ndarray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(steps left m, inventory q, mid price S) recovered from observations."""
    m = np.rint(obs[:, 0].astype(np.float64) * p.N)
    q = obs[:, 1].astype(np.float64) * p.Q
    S = p.P0 + obs[:, 2].astype(np.float64) * p.level_scale
    return m, q, S


def expected_next_price(p: MarketParams, S: FloatArray, q: FloatArray, n: FloatArray) -> FloatArray:
    """E[S_{k+1} | S_k, q_k, n_k]; the OU level is theta_k = P0 - alpha (Q - q_k)."""
    if p.price_model == "gbm":
        return S * math.exp(p.mu) - p.alpha * n
    theta = p.P0 - p.alpha * (p.Q - q)
    return theta + (S - theta) * math.exp(-p.kappa) - p.alpha * n


def _geometric_sums(log_ratio: float, m: FloatArray) -> tuple[FloatArray, FloatArray]:
    """sum_{i<m} r^i and sum_{i<m} (r^i - 1)/(r - 1) for r = e^log_ratio, stable near r = 1."""
    if abs(log_ratio) < 1e-12:
        return m, m * (m - 1) / 2
    powers = np.expm1(log_ratio * m) / math.expm1(log_ratio)
    return powers, (powers - m) / math.expm1(log_ratio)


def twap_value(p: MarketParams, m: FloatArray, q: FloatArray, S: FloatArray) -> FloatArray:
    """Expected return ($) of selling q evenly over the m steps left, from mid price S.

    Exact under the model: sum over the steps left of n (E[S] - beta n - P0) minus the inventory
    penalty, with n = q / m. Linear in S. 0 once m or q is 0.
    """
    m_safe = np.maximum(m, 1.0)
    n = q / m_safe
    penalty = p.lam * q * q * (m_safe + 1) * (2 * m_safe + 1) / (6 * m_safe * p.Q)
    if p.price_model == "gbm":  # E[S_{k+i}] = e^{mu i} S - alpha n sum_{j<i} e^{mu j}
        growth, impact = _geometric_sums(p.mu, m_safe)
        proceeds = n * S * growth - p.alpha * n * n * impact
    else:  # E[S_{k+i}] = theta_k - alpha n i + (S - theta_k) e^{-kappa i}
        theta = p.P0 - p.alpha * (p.Q - q)
        reversion, _ = _geometric_sums(-p.kappa, m_safe)
        proceeds = q * theta - p.alpha * n * n * m_safe * (m_safe - 1) / 2
        proceeds = proceeds + n * (S - theta) * reversion
    value = proceeds - q * (p.beta * n + p.P0) - penalty
    return np.where((m > 0) & (q > 0), value, 0.0)


def _spaces(p: MarketParams) -> tuple[spaces.Box, spaces.Discrete]:
    low = np.array([0.0, 0.0, -np.inf, -np.inf], dtype=np.float32)
    high = np.array([1.0, 1.0, np.inf, np.inf], dtype=np.float32)
    return spaces.Box(low, high, dtype=np.float32), spaces.Discrete(p.n_actions)


def _params(simulation: SimulationSettings | MarketParams | None) -> MarketParams:
    if isinstance(simulation, MarketParams):
        return simulation
    return MarketParams.from_settings(simulation or SimulationSettings())


class ExecutionEnv(gym.Env[np.ndarray, np.int64]):
    """One liquidation episode; the action indexes the speed multipliers."""

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
        z = np.array([self.np_random.standard_normal()])
        desired = desired_from_actions(self.params, self._state, np.array([int(action)]))
        res = market_step(self.params, self._state, desired, z)
        info = {"shares": float(res.n[0]), "execution_price": float(res.exec_price[0])}
        obs = observe(self.params, self._state)[0]
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
        z = self._rng.standard_normal(self.num_envs)
        desired = desired_from_actions(
            self.params, self._state, np.asarray(actions, dtype=np.int64)
        )
        res = market_step(self.params, self._state, desired, z)
        obs = observe(self.params, self._state)
        info: dict[str, Any] = {"shares": res.n, "execution_price": res.exec_price}
        if res.terminated.any():
            info["final_obs"] = obs.copy()
            info["_final_obs"] = res.terminated.copy()
            self._state.reset_where(self.params, res.terminated)
            obs = observe(self.params, self._state)
        truncated = np.zeros(self.num_envs, dtype=np.bool_)
        return obs, res.reward, res.terminated, truncated, info


def register_envs() -> None:
    if ENV_ID not in gym.registry:
        gym.register(
            id=ENV_ID,
            entry_point="rl_order_execution.market:ExecutionEnv",
            vector_entry_point="rl_order_execution.market:VecExecutionEnv",
        )


def shock_matrix(
    seed: int | np.random.SeedSequence, episodes: int, horizon: int, antithetic: bool = False
) -> FloatArray:
    """Shared price shocks Z[i, k] for a set of evaluation episodes.

    antithetic: episode i + E/2 gets -Z of episode i (E even), which cancels most of the noise of
    mean costs; statistics then use pair averages as the independent units.
    """
    rng = np.random.default_rng(seed)
    if not antithetic:
        return rng.standard_normal((episodes, horizon))
    if episodes % 2:
        raise ValueError("antithetic shocks need an even number of episodes")
    half = rng.standard_normal((episodes // 2, horizon))
    return np.concatenate([half, -half])
