"""The numbers of one market (the model's symbols) and the state of B episodes."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from rl_order_execution.market.prices import PriceModel, price_model
from rl_order_execution.market.shocks import FloatArray

if TYPE_CHECKING:
    from rl_order_execution.config import SimulationSettings

IntArray = np.ndarray[Any, np.dtype[np.int64]]


@dataclass(frozen=True)
class MarketParams:
    """The numbers of one market, with the model's symbols; `prices` is its price model."""

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
    jump_intensity: float = 0.02
    jump_mean: float = -0.005
    jump_std: float = 0.01
    garch_alpha: float = 0.10
    garch_beta: float = 0.85
    _mult: FloatArray = field(init=False, repr=False, compare=False)
    prices: PriceModel = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_mult", np.asarray(self.multipliers, dtype=np.float64))
        object.__setattr__(self, "prices", price_model(self.price_model))

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
            jump_intensity=sim.jump_intensity,
            jump_mean=sim.jump_mean,
            jump_std=sim.jump_std,
            garch_alpha=sim.garch_alpha,
            garch_beta=sim.garch_beta,
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


@dataclass
class MarketState:
    """B episodes at once: step index k, inventory q, mid price S, previous mid, and the price
    model's own state `latent` (the OU level theta, the GARCH variance)."""

    k: IntArray
    q: FloatArray
    S: FloatArray
    S_prev: FloatArray
    latent: FloatArray

    @classmethod
    def initial(cls, p: MarketParams, batch: int) -> MarketState:
        return cls(
            k=np.zeros(batch, dtype=np.int64),
            q=np.full(batch, p.Q),
            S=np.full(batch, p.P0),
            S_prev=np.full(batch, p.P0),
            latent=p.prices.initial_latent(p, batch),
        )

    def reset_where(self, p: MarketParams, mask: np.ndarray[Any, np.dtype[np.bool_]]) -> None:
        self.k[mask] = 0
        self.q[mask] = p.Q
        self.S[mask] = p.P0
        self.S_prev[mask] = p.P0
        self.latent[mask] = p.prices.initial_latent(p, int(mask.sum()))
