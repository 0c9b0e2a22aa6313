"""Historical replay (README, "Historical replay"): real bars as the market's price path.

A window is N consecutive bars of one session. Everything the market needs from it is computed
once, here, as (E, N) arrays over E windows, so that replayed episodes step exactly like
simulated ones (one numpy call per step for all of them):

- the price path H_k = P0 close_{t+k} / close_t, kept as increments H_{k+1} - H_k (the mid is
  S_k = H_k - alpha (Q - q_k): our permanent impact on top of the historical path);
- the temporary impact beta_k = beta vbar / clip(u_k, vbar / 10, (beta / alpha) vbar) of the
  bar's volume u_k, and the market volume v_k = (V / N) u_k / vbar in model units;
- the training profile's shares w_k of the window's start position (VWAP, `volume_remaining`);
- the quoted spread (ask - bid) / (close sigma) where the file has quotes.

sigma, vbar and the profile come from the training sessions only (no look-ahead).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rl_order_execution.data import (
    Bars,
    Calibration,
    DataError,
    Split,
    SplitSpec,
    calibrate,
    check_quotes,
    check_windows,
    load_bars,
    resolve_data_path,
    sessions_of,
    split_sessions,
)
from rl_order_execution.market.shocks import FloatArray, Shocks

if TYPE_CHECKING:
    from rl_order_execution.config import ReplaySettings, SimulationSettings

IntArray = np.ndarray[Any, np.dtype[np.int64]]
THIN_VOLUME = 10.0  # u is floored at vbar / THIN_VOLUME: beta_k <= 10 beta


@dataclass(frozen=True)
class Windows:
    """E replayed windows of N steps: per-window arrays, indexed [window, step]."""

    increments: FloatArray  # (E, N) H_{k+1} - H_k in $ (0 at the last step)
    beta: FloatArray  # (E, N) beta_k
    volume: FloatArray  # (E, N) v_k, the market's volume in model units (shares)
    w: FloatArray  # (E, N) the training profile's shares of the window's positions
    volume_left: FloatArray  # (E, N + 1) w_k + ... + w_{N-1}
    volume_done: FloatArray  # (E, N + 1) v_0 + ... + v_{k-1}
    spread: FloatArray | None  # (E, N) (ask - bid) / (close sigma), files with quotes only
    session: IntArray  # (E,) the window's session, an index into its split's sessions
    start: IntArray  # (E,) the window's first bar, a row index of the file

    def __len__(self) -> int:
        return int(self.increments.shape[0])

    def rows(self, start: int, stop: int) -> Windows:
        """Windows start..stop-1."""
        parts: dict[str, Any] = {
            f.name: None if (x := getattr(self, f.name)) is None else x[start:stop]
            for f in fields(self)
        }
        return Windows(**parts)

    def shocks(self) -> Shocks:
        """These windows as the episodes of an evaluation (z: the path's increments)."""
        return Shocks(self.increments, windows=self)

    def path(self, P0: float) -> FloatArray:
        """H_0..H_{N-1}: the replayed closes on the model's scale (H_0 = P0)."""
        out: FloatArray = P0 + np.concatenate(
            (np.zeros((len(self), 1)), np.cumsum(self.increments[:, :-1], axis=1)), axis=1
        )
        return out


@dataclass(frozen=True)
class SplitSummary:
    """What a split holds: its dates, sessions and windows (the report prints it)."""

    name: str
    first: str | None
    last: str | None
    sessions: int
    windows: int

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class ReplayMarket:
    """A bar file split by time, calibrated on its training sessions, cut into windows."""

    source: str
    splits: tuple[Split, Split, Split]
    calibration: Calibration
    train: Windows  # every window of every training session (training draws them)
    validation: Windows  # windows at multiples of replay.stride (the same for every strategy)
    test: Windows
    stride: int
    has_volume: bool
    has_quotes: bool

    def summaries(self) -> list[SplitSummary]:
        out = []
        every = (self.train, self.validation, self.test)
        for split, windows in zip(self.splits, every, strict=True):
            dates = split.date_range
            out.append(
                SplitSummary(
                    split.name,
                    None if dates is None else dates[0].isoformat(),
                    None if dates is None else dates[1].isoformat(),
                    len(split.sessions),
                    len(windows),
                )
            )
        return out

    def test_dates(self) -> list[str]:
        """The calendar date of each test window's session."""
        sessions = self.splits[2].sessions
        return [sessions[int(i)].date.isoformat() for i in self.test.session]

    @property
    def largest_beta(self) -> float:
        return float(max(w.beta.max() for w in (self.train, self.validation, self.test)))


@dataclass(frozen=True)
class MarketScale:
    """The model's numbers a window needs: Q, N, P0, alpha, beta, V."""

    Q: float
    N: int
    P0: float
    alpha: float
    beta: float
    V: float


def step_impacts_of_volume(u: FloatArray, vbar: float, alpha: float, beta: float) -> FloatArray:
    """beta_k = beta vbar / clip(u, vbar / 10, (beta / alpha) vbar) (no upper clip at alpha 0)."""
    high = beta / alpha * vbar if alpha > 0 else math.inf
    out: FloatArray = beta * vbar / np.minimum(np.maximum(u, vbar / THIN_VOLUME), high)
    return out


def profile_shares(profile: FloatArray | None, position: IntArray, N: int) -> FloatArray:
    """w_k = p_{i0+k} / (p_{i0} + ... + p_{i0+N-1}) for each window's start position i0 (1/N
    where the profile is unknown or has no volume there)."""
    E = len(position)
    if profile is None:
        return np.full((E, N), 1.0 / N)
    padded = np.concatenate((profile, np.zeros(N)))  # positions past the longest training session
    p = padded[position[:, None] + np.arange(N)]
    total = p.sum(axis=1, keepdims=True)
    out: FloatArray = np.where(total > 0, p / np.where(total > 0, total, 1.0), 1.0 / N)
    return out


def build_windows(
    bars: Bars,
    split: Split,
    stride: int | None,
    calibration: Calibration,
    scale: MarketScale,
    with_spread: bool,
) -> Windows:
    """The windows of one split (every start for stride None, else multiples of stride)."""
    N = scale.N
    session, start = split.windows(N, stride)
    first_bar = np.array([s.start for s in split.sessions], dtype=np.int64)
    position = start - first_bar[session] if len(start) else start
    rows = start[:, None] + np.arange(N)
    close = bars.close[rows]
    H = scale.P0 * close / close[:, :1]
    increments = np.zeros_like(H)
    increments[:, :-1] = np.diff(H, axis=1)
    vbar = calibration.mean_volume
    if bars.volume is None or vbar is None:
        beta = np.full(H.shape, scale.beta)
        volume = np.full(H.shape, scale.V / N)
    else:
        u = bars.volume[rows]
        beta = step_impacts_of_volume(u, vbar, scale.alpha, scale.beta)
        volume = scale.V / N * u / vbar
    w = profile_shares(calibration.profile, position, N)
    zero = np.zeros((len(start), 1))
    spread = None
    if with_spread and bars.bid is not None and bars.ask is not None:
        sigma = calibration.sigma if calibration.sigma > 0 else 1.0
        spread = (bars.ask[rows] - bars.bid[rows]) / (close * sigma)
    return Windows(
        increments=increments,
        beta=beta,
        volume=volume,
        w=w,
        volume_left=np.concatenate((np.cumsum(w[:, ::-1], axis=1)[:, ::-1], zero), axis=1),
        volume_done=np.concatenate((zero, np.cumsum(volume, axis=1)), axis=1),
        spread=spread,
        session=session,
        start=start,
    )


def replay_market(
    bars: Bars, scale: MarketScale, spec: SplitSpec, timezone: str, stride: int | None,
    with_spread: bool,
) -> ReplayMarket:  # fmt: skip
    """Split the bars by time, calibrate on the training sessions, cut every split's windows."""
    source = str(bars.path)
    if with_spread:
        check_quotes(bars)
    splits = split_sessions(sessions_of(bars, timezone), scale.N, spec, source)
    step = scale.N if stride is None else stride
    check_windows(splits, scale.N, step, source)
    calibration = calibrate(bars, splits[0])
    if bars.volume is not None and not calibration.mean_volume:
        raise DataError(
            f"data file {source}: the training sessions have no volume (every bar 0): drop the "
            "volume column from replay.columns or choose other training dates"
        )
    train, validation, test = (
        build_windows(bars, split, s, calibration, scale, with_spread)
        for split, s in zip(splits, (None, step, step), strict=True)
    )
    return ReplayMarket(
        source=source,
        splits=splits,
        calibration=calibration,
        train=train,
        validation=validation,
        test=test,
        stride=step,
        has_volume=bars.volume is not None,
        has_quotes=bars.bid is not None and bars.ask is not None,
    )


def load_replay(sim: SimulationSettings, replay: ReplaySettings) -> ReplayMarket:
    """The replay market of a run's settings (read once per process and file version)."""
    from rl_order_execution.market.volume import VOLUME_FACTOR

    if replay.path is None:
        raise DataError(
            "price_model replay needs replay.path: a CSV or Parquet bar file, or "
            "builtin:eurusd_1h_2017 (the bundled EUR/USD bars)"
        )
    path = resolve_data_path(replay.path)
    stamp = (path.stat().st_mtime_ns, path.stat().st_size) if path.is_file() else None
    V = VOLUME_FACTOR * sim.total_shares if sim.market_volume is None else sim.market_volume
    scale = MarketScale(
        sim.total_shares,
        sim.time_horizon,
        sim.start_price,
        sim.liquidity_param,
        sim.temp_impact_param,
        V,
    )
    spec = SplitSpec(
        replay.train_fraction, replay.validation_fraction, replay.train_end, replay.validation_end
    )
    return _cached(
        str(path),
        stamp,
        tuple(sorted(replay.columns.items())),
        replay.timestamp_format,
        replay.timezone,
        scale,
        spec,
        replay.stride,
        "spread" in sim.extra_features,
    )


@lru_cache(maxsize=4)
def _cached(
    path: str,
    stamp: tuple[int, int] | None,
    columns: tuple[tuple[str, str], ...],
    timestamp_format: str | None,
    timezone: str,
    scale: MarketScale,
    spec: SplitSpec,
    stride: int | None,
    with_spread: bool,
) -> ReplayMarket:
    bars = load_bars(Path(path), dict(columns), timestamp_format)
    market = replay_market(bars, scale, spec, timezone, stride, with_spread)
    floor = max(scale.alpha, market.largest_beta) * scale.Q
    if floor >= scale.P0:
        raise DataError(
            f"data file {path}: impact would drive the price to zero or below on these bars: need "
            f"start_price > max(liquidity_param, the largest beta_k = {market.largest_beta:g}) * "
            f"total_shares ({scale.P0:g} <= {floor:g}); lower temp_impact_param or raise "
            "start_price"
        )
    return market
