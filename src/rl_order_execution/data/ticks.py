"""Ticks (timestamp, price, size) to bars with volume: the helper behind `rl-exec data bars`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rl_order_execution.data.bars import _row, parse_timestamps
from rl_order_execution.errors import DataError


def ticks_to_bars(
    path: Path,
    interval: str,
    timestamp: str = "timestamp",
    price: str = "price",
    size: str = "size",
    timestamp_format: str | None = None,
) -> Any:
    """OHLC and volume per `interval` (a pandas offset such as "1min", "5min", "1h") from a tick
    file; intervals without ticks are left out (bars need not be evenly spaced)."""
    import pandas as pd

    if not path.is_file():
        raise DataError(f"tick file {path} does not exist")
    try:
        offset = pd.tseries.frequencies.to_offset(interval)
    except ValueError as exc:
        raise DataError(f"--interval {interval!r} is not a pandas offset such as 1min") from exc
    head = set(pd.read_csv(path, nrows=0).columns)
    for ours, theirs in (("timestamp", timestamp), ("price", price), ("size", size)):
        if theirs not in head:
            raise DataError(
                f"tick file {path}: no column {theirs!r} for the {ours} (columns: "
                f"{', '.join(sorted(head))}; set --{ours}-column)"
            )
    frame = pd.read_csv(path, usecols=[timestamp, price, size], dtype={timestamp: str})
    time = parse_timestamps(frame[timestamp], path, timestamp, timestamp_format)
    values = {}
    for column in (price, size):
        numbers = pd.to_numeric(frame[column], errors="coerce")
        bad = numbers.isna() | (numbers < 0) | ((numbers <= 0) if column == price else False)
        if bad.any():
            i = int(bad.to_numpy().nonzero()[0][0])
            raise DataError(
                f"tick file {path}, {_row(i, path)}, column {column!r}: "
                f"{frame[column].iloc[i]!r} is not a valid {'price' if column == price else 'size'}"
            )
        values[column] = numbers.to_numpy(dtype=float)
    ticks = pd.DataFrame({"price": values[price], "size": values[size]}, index=time)
    ticks = ticks.sort_index(kind="stable")  # ticks within one timestamp keep their file order
    grouped = ticks.resample(offset, label="left", closed="left")
    bars = grouped["price"].ohlc()
    bars["volume"] = grouped["size"].sum()
    bars = bars.dropna(subset=["close"])
    bars.index = bars.index.tz_localize("UTC")
    bars.index.name = "timestamp"
    return bars.reset_index()
