"""The numbers of one market (the model's symbols) and the state of B episodes."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from rl_order_execution.arrays import FloatArray, IntArray
from rl_order_execution.errors import SettingsError
from rl_order_execution.market.positivity import (
    WHOLE_ORDER,
    Execution,
    describe,
    largest_trades,
    refused_execution,
    risky_largest_trade,
)
from rl_order_execution.market.prices import PriceModel, price_model
from rl_order_execution.market.replay import ReplayMarket, Windows
from rl_order_execution.market.volume import VOLUME_FACTOR, profile_bins, step_impacts, step_shares

if TYPE_CHECKING:
    from rl_order_execution.config import ReplaySettings, Settings, SimulationSettings


BASE_OBS_DIM = 4  # time remaining, inventory remaining, price vs arrival, last move
# optional observation features, appended in this order of the settings' list
SIMULATED_FEATURES = ("volume_remaining", "vwap_deviation", "realised_vol")
REPLAY_FEATURES = (*SIMULATED_FEATURES, "spread")  # spread: bars with bid and ask only


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
    max_multiplier: float = 10.0  # upper end of the continuous action, a multiple of the base rate
    volume_bins: tuple[float, ...] = ()  # bin volumes of the intraday profile; () = flat
    market_volume: float | None = None  # V in shares; None = VOLUME_FACTOR * Q
    extra_features: tuple[str, ...] = ()
    # price_model replay: the bar file's windows (sigma is then the training sessions')
    replay: ReplayMarket | None = field(default=None, repr=False)  # compared by its identity
    _mult: FloatArray = field(init=False, repr=False, compare=False)
    prices: PriceModel = field(init=False, repr=False, compare=False)
    # derived from the volume profile (docs/MODEL.md, "Intraday volume"):
    w: FloatArray = field(init=False, repr=False, compare=False)  # (N,) share of volume
    betas: FloatArray = field(init=False, repr=False, compare=False)  # (N,) beta_k
    volume: FloatArray = field(init=False, repr=False, compare=False)  # (N,) v_k = V w_k
    volume_left: FloatArray = field(init=False, repr=False, compare=False)  # (N+1,) sum_{j>=k} w_j
    volume_done: FloatArray = field(init=False, repr=False, compare=False)  # (N+1,) sum_{j<k} v_j
    beta_left: FloatArray = field(init=False, repr=False, compare=False)  # (N+1,) last m betas

    def __post_init__(self) -> None:
        if (self.price_model == "replay") != (self.replay is not None):
            raise ValueError("price_model replay goes with the replayed bars (replay), and only it")
        quotes = self.replay is not None and self.replay.has_quotes
        available = REPLAY_FEATURES if quotes else SIMULATED_FEATURES
        unknown = [f for f in self.extra_features if f not in available]
        if unknown:
            raise ValueError(f"observation features not available on this market: {unknown}")
        object.__setattr__(self, "_mult", np.asarray(self.multipliers, dtype=np.float64))
        object.__setattr__(self, "prices", price_model(self.price_model))
        self._set_volume()

    def _set_volume(self) -> None:
        w = step_shares(self.volume_bins, self.N)
        # flat: beta_k is beta itself, so every number of the flat market stays bit-identical
        flat = np.full(self.N, self.beta)
        betas = flat if self.is_flat else step_impacts(self.beta, self.alpha, w)
        volume = self.V * w
        derived = {
            "w": w,
            "betas": betas,
            "volume": volume,
            "volume_left": np.concatenate((np.cumsum(w[::-1])[::-1], [0.0])),
            "volume_done": np.concatenate(([0.0], np.cumsum(volume))),
            "beta_left": np.concatenate(([0.0], np.cumsum(betas[::-1]))),
        }
        for name, value in derived.items():
            object.__setattr__(self, name, value)

    @classmethod
    def from_settings(
        cls, sim: SimulationSettings, replay: ReplaySettings | None = None
    ) -> MarketParams:
        """The market of a run's settings; price_model replay reads (once) the bars that the
        replay section names, sigma becomes the training sessions' (mu 0), and with relative
        impact alpha, beta, lambda and V are the bars' (docs/MODEL.md, "Historical replay")."""
        if sim.price_model == "replay":
            from rl_order_execution.config import ReplaySettings
            from rl_order_execution.market.replay import load_replay

            market = load_replay(sim, replay or ReplaySettings())
            calibrated: dict[str, Any] = {"volatility": market.calibration.sigma, "drift": 0.0}
            impact = market.impact
            if impact.relative:
                calibrated |= {
                    "liquidity_param": impact.alpha,
                    "temp_impact_param": impact.beta,
                    "risk_aversion": impact.lam,
                    "market_volume": impact.V,
                }
            return cls._of(sim.model_copy(update=calibrated), market)
        p = cls._of(sim)
        refused = p.refused(sim.volume_profile)
        if refused is not None:
            raise SettingsError(f"setting simulation: {refused}")
        return p

    @classmethod
    def of(cls, settings: Settings) -> MarketParams:
        """The market of a command's settings: built once per command and passed down."""
        return cls.from_settings(settings.simulation, settings.replay)

    def refused(self, profile: str = "") -> str | None:
        """Why a simulated market is refused, in words (docs/MODEL.md, "Which markets are refused"):
        alpha Q >= P0, or TWAP or VWAP would execute a step at a price <= 0 without shocks."""
        e = refused_execution(self.P0, self.alpha, self.Q, self.betas, self.w)
        if e is None:
            return None
        if e.schedule == WHOLE_ORDER:
            return (
                f"liquidity_param {self.alpha:g} x total_shares {self.Q:g} >= start_price "
                f"{self.P0:g}: {describe(e)}; lower liquidity_param"
            )
        shown = (
            "" if self.is_flat else f" (volume_profile {profile}: beta_k {self.betas[e.step]:.6g})"
        )
        return (
            f"temp_impact_param {self.beta:g}{shown}: {describe(e)}; lower temp_impact_param "
            "or liquidity_param, or raise start_price"
        )

    def largest_trade_risk(self, speed: float) -> Execution | None:
        """Where the largest trade at `speed` times the TWAP rate, with the whole order held,
        would execute at a price <= 0 on the path without shocks (docs/MODEL.md, "Which markets are
        refused"; replayed bars: at the thinnest bar's beta_k in every step)."""
        betas = self.betas if self.replay is None else np.full(self.N, self.replay.largest_beta)
        trades = largest_trades(self.Q, self.N, speed, self.rate_basis)
        return risky_largest_trade(self.P0, betas, trades)

    @classmethod
    def _of(cls, sim: SimulationSettings, replay: ReplayMarket | None = None) -> MarketParams:
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
            max_multiplier=sim.max_multiplier,
            volume_bins=profile_bins(sim.volume_profile),
            market_volume=sim.market_volume,
            extra_features=tuple(sim.extra_features),
            replay=replay,
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
    def is_flat(self) -> bool:
        """Every step equally liquid (in expectation): beta_k = beta and VWAP = TWAP."""
        return not self.volume_bins

    @property
    def has_volume(self) -> bool:
        """The market's volume varies: a profile, or replayed bars with a volume column (VWAP,
        VWAP slippage and participation are then reported)."""
        return not self.is_flat or (self.replay is not None and self.replay.has_volume)

    @property
    def V(self) -> float:
        """The market's volume over the episode, in shares."""
        return VOLUME_FACTOR * self.Q if self.market_volume is None else self.market_volume

    @property
    def obs_dim(self) -> int:
        """Width of an observation: the four model features and the extra ones."""
        return BASE_OBS_DIM + len(self.extra_features)

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
    model's own state `latent` (the OU level theta, the GARCH variance).

    The optional observation features keep two running sums, updated only when asked for:
    `vwap_sum` = sum_{j<k} v_j S_j and `realised_var` = e_k (zeros when not given).

    Replayed episodes read their bars from `windows`: episode i replays window `window[i]`."""

    k: IntArray
    q: FloatArray
    S: FloatArray
    S_prev: FloatArray
    latent: FloatArray
    vwap_sum: FloatArray = field(default_factory=lambda: np.zeros(0))
    realised_var: FloatArray = field(default_factory=lambda: np.zeros(0))
    windows: Windows | None = None
    window: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __post_init__(self) -> None:
        if self.vwap_sum.shape != self.q.shape:
            self.vwap_sum = np.zeros_like(self.q)
        if self.realised_var.shape != self.q.shape:
            self.realised_var = np.zeros_like(self.q)

    @classmethod
    def initial(cls, p: MarketParams, batch: int, windows: Windows | None = None) -> MarketState:
        """B episodes at their start; with `windows` (B of them), episode i replays window i."""
        return cls(
            k=np.zeros(batch, dtype=np.int64),
            q=np.full(batch, p.Q),
            S=np.full(batch, p.P0),
            S_prev=np.full(batch, p.P0),
            latent=p.prices.initial_latent(p, batch),
            realised_var=np.full(batch, p.sigma**2),
            windows=windows,
            window=np.arange(batch if windows is not None else 0, dtype=np.int64),
        )

    def reset_where(self, p: MarketParams, mask: np.ndarray[Any, np.dtype[np.bool_]]) -> None:
        self.k[mask] = 0
        self.q[mask] = p.Q
        self.S[mask] = p.P0
        self.S_prev[mask] = p.P0
        self.latent[mask] = p.prices.initial_latent(p, int(mask.sum()))
        self.vwap_sum[mask] = 0.0
        self.realised_var[mask] = p.sigma**2
