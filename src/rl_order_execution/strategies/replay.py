"""The references of a replayed market (docs/MODEL.md, "Historical replay"), all on the same
windows: TWAP, VWAP with the training profile, the optimum of the model calibrated on the training
sessions applied to the real path, and the hindsight schedule (a look-ahead bound, shown apart).
"""

from __future__ import annotations

import numpy as np

from rl_order_execution.exact import optimal_schedule
from rl_order_execution.exact.hindsight import hindsight_problem, solve_hindsight
from rl_order_execution.market import FloatArray, MarketParams
from rl_order_execution.market.replay import Windows
from rl_order_execution.strategies.base import TWAP, Strategy
from rl_order_execution.strategies.schedules import VWAP, WindowSchedule

CALIBRATED = "calibrated-optimal"
HINDSIGHT = "hindsight"


def calibrated_model(p: MarketParams, w: FloatArray | None) -> MarketParams:
    """The simulated market the training sessions calibrate: GBM with mu 0 and their sigma, and
    beta_k from the training profile's shares w of a window's positions (flat without volume)."""
    bins = () if w is None else tuple(float(x) for x in w)
    return MarketParams(
        Q=p.Q, N=p.N, P0=p.P0, sigma=p.sigma, mu=0.0, alpha=p.alpha, beta=p.beta, lam=p.lam,
        price_model="gbm", volume_bins=bins, market_volume=p.market_volume,
    )  # fmt: skip


def calibrated_trades(p: MarketParams, windows: Windows) -> FloatArray:
    """Each window's trades under the calibrated model's optimum (deterministic: mu = 0), solved
    once per distinct training-profile row, never from the window's own volumes or prices."""
    has_volume = p.replay is not None and p.replay.has_volume
    if not has_volume:
        trades = optimal_schedule(calibrated_model(p, None))
        return np.tile(trades, (len(windows), 1))
    rows, which = np.unique(windows.w, axis=0, return_inverse=True)
    schedules = np.array([optimal_schedule(calibrated_model(p, row)) for row in rows])
    out: FloatArray = schedules[which.reshape(-1)]
    return out


def hindsight_trades(p: MarketParams, windows: Windows) -> FloatArray:
    """Each window's cost-minimising schedule with its path known in advance (exact QP)."""
    paths = windows.path(p.P0)
    return np.array(
        [
            solve_hindsight(hindsight_problem(path, beta, p.Q, p.P0, p.alpha, p.lam))
            for path, beta in zip(paths, windows.beta, strict=True)
        ]
    )


def replay_references(p: MarketParams, windows: Windows) -> list[Strategy]:
    """TWAP, VWAP (bars with volume), the calibrated optimum and the hindsight schedule."""
    out: list[Strategy] = [TWAP()]
    if p.has_volume:
        out.append(VWAP())
    out.append(WindowSchedule(CALIBRATED, calibrated_trades(p, windows)))
    out.append(WindowSchedule(HINDSIGHT, hindsight_trades(p, windows)))
    return out
