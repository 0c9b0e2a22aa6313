"""Historical replay (docs/MODEL.md, "Historical replay"): real bars as the market's price path.

A window is N consecutive bars of one session. Everything the market needs from it is computed
once, here, as (E, N) arrays over E windows, so that replayed episodes step exactly like
simulated ones (one numpy call per step for all of them):

- the price path H_k = P0 close_{t+k} / close_t, kept as increments H_{k+1} - H_k (the mid is
  S_k = H_k - alpha (Q - q_k): our permanent impact on top of the historical path);
- the temporary impact beta_k = beta vbar / clip(u_k, vbar / 10, thick vbar) of the bar's volume
  u_k (beta, alpha and thick from `impact`: relative or absolute units), and the market volume
  v_k = (V / N) u_k / vbar in model units;
- the training profile's shares w_k of the window's start position (VWAP, `volume_remaining`);
- the quoted spread (ask - bid) / (close sigma) where the file has quotes.

sigma, B, vbar and the profile come from the training sessions only (no look-ahead).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rl_order_execution.arrays import FloatArray
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
from rl_order_execution.data.bars import _row
from rl_order_execution.market.impact import Impact, ImpactSpec, absolute_impact, relative_impact
from rl_order_execution.market.positivity import WHOLE_ORDER, describe, refused_execution
from rl_order_execution.market.shocks import Shocks

if TYPE_CHECKING:
    from rl_order_execution.config import ReplaySettings, SimulationSettings

IntArray = np.ndarray[Any, np.dtype[np.int64]]
THIN_VOLUME = 10.0  # u is floored at vbar / THIN_VOLUME: beta_k <= 10 beta


@dataclass(frozen=True)
class BarTables:
    """Per-bar values of the whole file, shared by every window: a window is only its first bar,
    so the training set (every start of every training session) costs no copy of its bars."""

    close: FloatArray  # (T,)
    move: FloatArray  # (T,) close_{i+1} - close_i (0 for the file's last bar)
    beta: FloatArray  # (T,) beta_k of the bar's volume (beta without a volume column)
    volume: FloatArray  # (T,) v, the market's volume in model units (shares)
    volume_cum: FloatArray  # (T + 1,) running sum of volume
    spread: FloatArray | None  # (T,) (ask - bid) / (close sigma), files with quotes only
    profile_cum: FloatArray  # running sum of the training profile p_i over session positions


@dataclass(frozen=True)
class Windows:
    """E replayed windows of N steps over the file's `tables`. Values at (window, step) are
    gathered on demand (`*_at`, one numpy call for a batch); the (E, N) properties materialise
    them for an evaluation set."""

    N: int
    P0: float
    tables: BarTables
    start: IntArray  # (E,) the window's first bar, a row index of the file
    session: IntArray  # (E,) the window's session, an index into its split's sessions
    position: IntArray  # (E,) i0: the first bar's position in its session

    def __len__(self) -> int:
        return len(self.start)

    def rows(self, start: int, stop: int) -> Windows:
        """Windows start..stop-1."""
        return replace(
            self,
            start=self.start[start:stop],
            session=self.session[start:stop],
            position=self.position[start:stop],
        )

    def shocks(self) -> Shocks:
        """These windows as the episodes of an evaluation (z: the path's increments)."""
        return Shocks(self.increments, windows=self)

    # --- values at (window, step): arrays of window indices and steps k of one shape ----------

    def increment_at(self, window: IntArray, k: IntArray) -> FloatArray:
        """H_{k+1} - H_k = P0 (close_{t+k+1} - close_{t+k}) / close_t; 0 at the last step."""
        return self.step_at(window, k)[0]

    def step_at(self, window: IntArray, k: IntArray) -> tuple[FloatArray, FloatArray]:
        """(H_{k+1} - H_k, beta_k): what one market step needs, sharing the gathers."""
        t = self.start[window]
        bar = t + k
        scale = np.where(k < self.N - 1, self.P0 / self.tables.close[t], 0.0)
        out: FloatArray = self.tables.move[bar] * scale
        beta: FloatArray = self.tables.beta[bar]
        return out, beta

    def beta_at(self, window: IntArray, k: IntArray) -> FloatArray:
        out: FloatArray = self.tables.beta[self.start[window] + k]
        return out

    def volume_at(self, window: IntArray, k: IntArray) -> FloatArray:
        out: FloatArray = self.tables.volume[self.start[window] + k]
        return out

    def volume_done_at(self, window: IntArray, k: IntArray) -> FloatArray:
        """v_0 + ... + v_{k-1} of the window (k up to N)."""
        cum, t = self.tables.volume_cum, self.start[window]
        out: FloatArray = cum[t + k] - cum[t]
        return out

    def _profile(self, window: IntArray, k: IntArray) -> tuple[FloatArray, FloatArray]:
        """(p_{i0} + ... + p_{i0+k-1}, the window's total) of the training profile."""
        cum, i0 = self.tables.profile_cum, self.position[window]
        return cum[i0 + k] - cum[i0], cum[i0 + self.N] - cum[i0]

    def w_at(self, window: IntArray, k: IntArray) -> FloatArray:
        """w_k = p_{i0+k} / (p_{i0} + ... + p_{i0+N-1}); 1/N where the profile has no volume."""
        done, total = self._profile(window, k)
        nxt, _ = self._profile(window, k + 1)
        out: FloatArray = np.where(
            total > 0, (nxt - done) / np.where(total > 0, total, 1.0), 1.0 / self.N
        )
        return out

    def volume_left_at(self, window: IntArray, k: IntArray) -> FloatArray:
        """w_k + ... + w_{N-1} (k up to N)."""
        done, total = self._profile(window, k)
        left = (total - done) / np.where(total > 0, total, 1.0)
        out: FloatArray = np.where(total > 0, left, (self.N - k) / self.N)
        return out

    def spread_at(self, window: IntArray, k: IntArray) -> FloatArray:
        if self.tables.spread is None:
            raise ValueError("the spread feature needs replayed bars with bid and ask")
        out: FloatArray = self.tables.spread[self.start[window] + k]
        return out

    # --- (E, N) views of an evaluation set -----------------------------------------------------

    def _grid(self, steps: int) -> tuple[IntArray, IntArray]:
        window = np.arange(len(self), dtype=np.int64)[:, None]
        k = np.arange(steps, dtype=np.int64)[None, :]
        return np.broadcast_to(window, (len(self), steps)), np.broadcast_to(k, (len(self), steps))

    @property
    def increments(self) -> FloatArray:
        return self.increment_at(*self._grid(self.N))

    @property
    def beta(self) -> FloatArray:
        return self.beta_at(*self._grid(self.N))

    @property
    def volume(self) -> FloatArray:
        return self.volume_at(*self._grid(self.N))

    @property
    def w(self) -> FloatArray:
        return self.w_at(*self._grid(self.N))

    @property
    def volume_left(self) -> FloatArray:
        return self.volume_left_at(*self._grid(self.N + 1))

    def path(self, P0: float) -> FloatArray:
        """H_0..H_{N-1}: the replayed closes on the model's scale (H_0 = P0)."""
        window, k = self._grid(self.N)
        close = self.tables.close
        out: FloatArray = P0 * close[self.start[window] + k] / close[self.start[window]]
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


@dataclass(frozen=True, eq=False)
class ReplayMarket:
    """A bar file split by time, calibrated on its training sessions, cut into windows.

    Two are equal when they were built from the same version of the same file with the same
    settings (`identity`), so a market's replayed bars are part of the market's identity."""

    source: str
    splits: tuple[Split, Split, Split]
    calibration: Calibration
    train: Windows  # every window of every training session (training draws them)
    validation: Windows  # windows at multiples of replay.stride (the same for every strategy)
    test: Windows
    stride: int
    has_volume: bool
    has_quotes: bool
    impact: Impact
    identity: tuple[object, ...] = ()  # the file, its version and the settings that built it

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ReplayMarket) and self.identity == other.identity

    def __hash__(self) -> int:
        return hash(self.identity)

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

    @property
    def thinnest_bar(self) -> int:
        """The row of the bar with the largest beta_k in a session that is replayed."""
        beta = self.train.tables.beta
        rows = [
            s.start + int(beta[s.start : s.stop].argmax())
            for sp in self.splits
            for s in sp.sessions
        ]
        return max(rows, key=lambda row: (beta[row], -row))

    @property
    def largest_beta(self) -> float:
        """The largest beta_k of any bar in a session that is replayed."""
        return float(self.train.tables.beta[self.thinnest_bar])

    def profile_shares(self) -> FloatArray:
        """The training profile's w of every start position a window of N bars can have, (R, N)
        (1/N per step where the profile has no volume there, as VWAP trades)."""
        N, cum = self.train.N, self.train.tables.profile_cum
        starts = np.arange(len(cum) - N)[:, None]
        shares = cum[starts + np.arange(1, N + 1)] - cum[starts + np.arange(N)]
        total = shares.sum(axis=1, keepdims=True)
        out: FloatArray = np.where(total > 0, shares / np.where(total > 0, total, 1.0), 1.0 / N)
        return out


@dataclass(frozen=True)
class MarketScale:
    """The model's numbers a window needs: Q, N, P0 and how impact is set."""

    Q: float
    N: int
    P0: float
    impact: ImpactSpec


def step_impacts_of_volume(u: FloatArray, vbar: float, beta: float, thick: float) -> FloatArray:
    """beta_k = beta vbar / clip(u, vbar / 10, thick vbar) (thick inf: no upper clip)."""
    high = thick * vbar
    out: FloatArray = beta * vbar / np.minimum(np.maximum(u, vbar / THIN_VOLUME), high)
    return out


def bar_tables(
    bars: Bars, calibration: Calibration, impact: Impact, N: int, longest: int, with_spread: bool
) -> BarTables:
    """The per-bar values of every bar of the file; `longest` is the longest session kept (the
    training profile is padded with zeros to it)."""
    vbar = calibration.mean_volume
    if bars.volume is None or vbar is None:
        beta = np.full(len(bars), impact.beta)
        volume = np.full(len(bars), impact.V / N)
    else:
        beta = step_impacts_of_volume(bars.volume, vbar, impact.beta, impact.thick)
        volume = impact.V / N * bars.volume / vbar
    profile = np.zeros(longest + 1)
    if calibration.profile is not None:
        known = calibration.profile[: len(profile)]
        profile[: len(known)] = known
    spread = None
    if with_spread and bars.bid is not None and bars.ask is not None:
        sigma = calibration.sigma if calibration.sigma > 0 else 1.0
        spread = (bars.ask - bars.bid) / (bars.close * sigma)
    return BarTables(
        close=bars.close,
        move=np.append(np.diff(bars.close), 0.0),
        beta=beta,
        volume=volume,
        volume_cum=np.concatenate(([0.0], np.cumsum(volume))),
        spread=spread,
        profile_cum=np.concatenate(([0.0], np.cumsum(profile))),
    )


def build_windows(
    split: Split, stride: int | None, tables: BarTables, scale: MarketScale
) -> Windows:
    """The windows of one split (every start for stride None, else multiples of stride)."""
    session, start = split.windows(scale.N, stride)
    first_bar = np.array([s.start for s in split.sessions], dtype=np.int64)
    position = start - first_bar[session] if len(start) else start
    return Windows(scale.N, scale.P0, tables, start, session, position)


def replay_market(
    bars: Bars, scale: MarketScale, spec: SplitSpec, timezone: str, stride: int | None,
    with_spread: bool,
) -> ReplayMarket:  # fmt: skip
    """Split the bars by time, calibrate on the training sessions, set the impact, cut every
    split's windows."""
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
    impact = market_impact(scale, calibration, source)
    longest = max(s.size for split in splits for s in split.sessions)
    tables = bar_tables(bars, calibration, impact, scale.N, longest, with_spread)
    train, validation, test = (
        build_windows(split, s, tables, scale)
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
        impact=impact,
    )


def market_impact(scale: MarketScale, calibration: Calibration, source: str) -> Impact:
    """The impact of the settings on these bars; relative impact needs price movement and enough
    bars per training session to scale by."""
    spec, bars = scale.impact, calibration.bars_per_session
    sigma_day = calibration.sigma * math.sqrt(bars)
    if not spec.relative:
        return absolute_impact(spec, sigma_day)
    if calibration.sigma <= 0:
        raise DataError(
            f"data file {source}: the training sessions show no price movement (sigma = 0), so "
            "relative impact has nothing to scale by; set replay.impact: absolute (impact in $ "
            "from simulation.liquidity_param and temp_impact_param)"
        )
    if bars <= spec.fewest_bars():
        raise DataError(
            f"data file {source}: the training sessions average {bars:g} bars, too few for "
            f"relative impact (the cost stays convex only above 10 gamma / (2 eta) = "
            f"{spec.fewest_bars():.4g}); set replay.impact: absolute or raise "
            "replay.temporary_impact"
        )
    return relative_impact(spec, scale.Q, scale.N, scale.P0, calibration.sigma, bars)


def check_positive(market: ReplayMarket, bars: Bars, scale: MarketScale) -> None:
    """The positivity rule (docs/MODEL.md, "Which markets are refused") with the beta_k of the
    thinnest bar of the replayed sessions at every step and the training profile's shares."""
    impact, bar = market.impact, market.thinnest_bar
    betas = np.full(scale.N, market.largest_beta)
    refused = refused_execution(scale.P0, impact.alpha, scale.Q, betas, market.profile_shares())
    if refused is None:
        return
    where = f"data file {market.source}"
    if impact.relative:
        fix = "lower replay.participation, replay.temporary_impact or replay.permanent_impact"
    else:
        fix = "lower simulation.temp_impact_param or liquidity_param, or raise start_price"
    if refused.schedule == WHOLE_ORDER:
        raise DataError(f"{where}: alpha {impact.alpha:.6g}: {describe(refused)}; {fix}")
    thinnest = (
        f"beta_k {market.largest_beta:.6g} of the thinnest replayed bar, {_row(bar, bars.path)} "
        f"at {np.datetime_as_string(bars.time[bar], unit='s')}Z"
    )
    raise DataError(f"{where}: {describe(refused)} ({thinnest}); {fix}")


def impact_spec(sim: SimulationSettings, replay: ReplaySettings) -> ImpactSpec:
    """How the settings set a replay's impact (relative: the replay section's, absolute: $)."""
    from rl_order_execution.market.volume import VOLUME_FACTOR

    V = VOLUME_FACTOR * sim.total_shares if sim.market_volume is None else sim.market_volume
    return ImpactSpec(
        relative=replay.impact == "relative",
        alpha=sim.liquidity_param,
        beta=sim.temp_impact_param,
        lam=sim.risk_aversion,
        V=V,
        participation=replay.participation,
        temporary_impact=replay.temporary_impact,
        permanent_impact=replay.permanent_impact,
        urgency=replay.urgency,
    )


def load_replay(sim: SimulationSettings, replay: ReplaySettings) -> ReplayMarket:
    """The replay market of a run's settings (read once per process and file version)."""
    if replay.path is None:
        raise DataError(
            "price_model replay needs replay.path: a CSV or Parquet bar file, or "
            "builtin:eurusd_1h_2017 (the bundled EUR/USD bars)"
        )
    path = resolve_data_path(replay.path)
    stamp = (path.stat().st_mtime_ns, path.stat().st_size) if path.is_file() else None
    scale = MarketScale(
        sim.total_shares, sim.time_horizon, sim.start_price, impact_spec(sim, replay)
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
    bars = load_bars(Path(path), dict(columns), timestamp_format, quotes=with_spread)
    market = replay_market(bars, scale, spec, timezone, stride, with_spread)
    check_positive(market, bars, scale)
    key = (path, stamp, columns, timestamp_format, timezone, scale, spec, stride, with_spread)
    return replace(market, identity=key)
