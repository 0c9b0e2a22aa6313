"""Sessions, time-ordered splits and episode windows of replayed bars, and the statistics the
replay market calibrates on the training sessions only (no look-ahead)."""

from __future__ import annotations

import datetime as dt
import itertools
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from rl_order_execution.arrays import FloatArray
from rl_order_execution.data.bars import Bars
from rl_order_execution.errors import DataError

IntArray = np.ndarray[Any, np.dtype[np.int64]]


@dataclass(frozen=True)
class Session:
    """The bars [start, stop) of one calendar date in the replay timezone."""

    date: dt.date
    start: int
    stop: int

    @property
    def size(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class Split:
    """Consecutive sessions used for one purpose (train, validation or test)."""

    name: str
    sessions: tuple[Session, ...]

    def windows(self, horizon: int, stride: int | None) -> tuple[IntArray, IntArray]:
        """(session index, first bar) of every window of `horizon` bars inside one session:
        every start (stride None, training draws) or starts at multiples of `stride` from the
        session's first bar (validation and test)."""
        sess, starts = [], []
        for i, s in enumerate(self.sessions):
            last = s.size - horizon
            first = np.arange(0, last + 1, 1 if stride is None else stride)
            sess.append(np.full(first.size, i))
            starts.append(s.start + first)
        if not sess:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.concatenate(sess).astype(np.int64), np.concatenate(starts).astype(np.int64)

    @property
    def date_range(self) -> tuple[dt.date, dt.date] | None:
        return (self.sessions[0].date, self.sessions[-1].date) if self.sessions else None


def sessions_of(bars: Bars, timezone: str) -> list[Session]:
    """Bars grouped by calendar date in `timezone` (bars are in time order)."""
    import pandas as pd

    try:
        local = pd.DatetimeIndex(bars.time).tz_localize("UTC").tz_convert(timezone)
    except Exception as exc:  # an unknown zone name
        raise DataError(f"replay.timezone {timezone!r} is not a known time zone") from exc
    days = local.normalize().tz_localize(None).to_numpy(dtype="datetime64[D]")
    cuts = np.flatnonzero(days[1:] != days[:-1]) + 1
    bounds = np.concatenate([[0], cuts, [len(bars)]])
    return [Session(days[a].astype(dt.date), int(a), int(b)) for a, b in itertools.pairwise(bounds)]


@dataclass(frozen=True)
class SplitSpec:
    """How sessions are split: fractions, or inclusive end dates that replace them."""

    train_fraction: float = 0.6
    validation_fraction: float = 0.2
    train_end: dt.date | None = None
    validation_end: dt.date | None = None


def split_sessions(
    sessions: list[Session], horizon: int, spec: SplitSpec, source: str
) -> tuple[Split, Split, Split]:
    """Drop sessions shorter than `horizon`, then split the rest in time order."""
    if not sessions:
        raise DataError(f"{source}: no sessions")
    kept = [s for s in sessions if s.size >= horizon]
    if not kept:
        longest = max(s.size for s in sessions)
        raise DataError(
            f"{source}: simulation.time_horizon {horizon} is longer than every session "
            f"(longest: {longest} bars); lower it"
        )
    if spec.train_end is not None or spec.validation_end is not None:
        train_end = spec.train_end or dt.date.min
        validation_end = spec.validation_end or dt.date.max
        train = [s for s in kept if s.date <= train_end]
        validation = [s for s in kept if train_end < s.date <= validation_end]
        test = [s for s in kept if s.date > validation_end]
    else:
        # exact decimal arithmetic: in floats 0.7 + 0.1 < 0.8 would lose a session to rounding
        n, share = len(kept), Fraction(repr(spec.train_fraction))
        a = math.floor(share * n)
        b = math.floor((share + Fraction(repr(spec.validation_fraction))) * n)
        train, validation, test = kept[:a], kept[a:b], kept[b:]
    splits = Split("train", tuple(train)), Split("validation", tuple(validation))
    return (*splits, Split("test", tuple(test)))


def check_windows(splits: tuple[Split, ...], horizon: int, stride: int, source: str) -> None:
    """Every split needs at least one window, or the run stops saying what each split got."""
    counts = {
        s.name: len(s.windows(horizon, None if s.name == "train" else stride)[0]) for s in splits
    }
    if min(counts.values()) == 0:
        got = ", ".join(
            f"{s.name} {len(s.sessions)} sessions / {counts[s.name]} windows" for s in splits
        )
        raise DataError(
            f"{source}: every split needs at least one window of {horizon} bars; got {got} "
            "(change replay.train_fraction / validation_fraction or the end dates)"
        )


@dataclass(frozen=True)
class Calibration:
    """What the replay market learns from the training sessions only."""

    sigma: float  # std (ddof 1) of log returns between consecutive bars of one session
    mean_volume: float | None  # vbar: mean bar volume over the training sessions
    profile: FloatArray | None  # p_i: mean share of its session's volume of the bar at position i
    bars_per_session: (
        float  # B: mean number of bars in a training session (sigma_day = sigma sqrt B)
    )


def calibrate(bars: Bars, train: Split) -> Calibration:
    """sigma, B, vbar and the intraday volume profile of the training sessions."""
    returns = [np.diff(np.log(bars.close[s.start : s.stop])) for s in train.sessions]
    r = np.concatenate(returns) if returns else np.zeros(0)
    sigma = float(r.std(ddof=1)) if r.size > 1 else 0.0
    B = float(np.mean([s.size for s in train.sessions])) if train.sessions else 0.0
    if bars.volume is None:
        return Calibration(sigma, None, None, B)
    volumes = [bars.volume[s.start : s.stop] for s in train.sessions]
    mean_volume = float(np.concatenate(volumes).mean())
    longest = max(v.size for v in volumes)
    total, count = np.zeros(longest), np.zeros(longest)
    for v in volumes:
        day = v.sum()
        if day > 0:  # a session without volume says nothing about the profile
            total[: v.size] += v / day
            count[: v.size] += 1
    profile = np.divide(total, count, out=np.zeros(longest), where=count > 0)
    return Calibration(sigma, mean_volume, profile, B)
