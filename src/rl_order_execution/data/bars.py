"""Bars read from a CSV or Parquet file and validated once, at the boundary: what leaves this
module is plain numpy arrays in time order, and every problem names the file, the row and the
column."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rl_order_execution.arrays import FloatArray
from rl_order_execution.errors import DataError

REQUIRED = ("timestamp", "close")
OPTIONAL_COLUMNS = ("volume", "open", "high", "low", "bid", "ask")


@dataclass(frozen=True)
class Bars:
    """Validated bars in strictly increasing time: UTC timestamps (datetime64[ns]) and prices."""

    path: Path
    time: np.ndarray[Any, np.dtype[np.datetime64]]
    close: FloatArray
    volume: FloatArray | None = None
    bid: FloatArray | None = None
    ask: FloatArray | None = None

    def __len__(self) -> int:
        return len(self.close)


CHUNK_ROWS = 1_000_000  # CSV rows parsed at once: memory stays near that of the numeric arrays


def _read_frames(path: Path, wanted: Mapping[str, str]) -> Iterator[tuple[int, Any]]:
    """(index of the first row, DataFrame) of the file's wanted columns, in blocks of rows: only
    those columns are read, and a CSV's text never exists all at once."""
    import pandas as pd

    suffix = path.suffix.lower()
    file_columns = list(dict.fromkeys(wanted.values()))
    try:
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            # ignore_metadata: a column pandas wrote as the frame's index stays a column
            table = pq.read_table(path, columns=file_columns)
            yield 0, table.to_pandas(ignore_metadata=True)
            return
        reader = pd.read_csv(
            path, usecols=file_columns, dtype={wanted["timestamp"]: str}, chunksize=CHUNK_ROWS
        )
        first = 0
        with reader:
            for frame in reader:
                yield first, frame
                first += len(frame)
    except (OSError, ValueError, ImportError) as exc:  # unreadable, not CSV/Parquet, bad bytes
        raise DataError(f"data file {path}: cannot be read as {suffix or 'CSV'} ({exc})") from exc


def _check_columns(path: Path, wanted: Mapping[str, str], present: set[str]) -> None:
    for ours, theirs in wanted.items():
        if theirs not in present:
            shown = ", ".join(sorted(map(str, present))) or "none"
            raise DataError(
                f"data file {path}: no column {theirs!r} for {ours} (columns: {shown}; map ours "
                "to the file's with replay.columns)"
            )


def _row(i: int, path: Path) -> str:
    """How a user finds data row i (0-based) in the file: the CSV line (header = line 1)."""
    if path.suffix.lower() in (".parquet", ".pq"):
        return f"row {i + 1}"
    return f"row {i + 1} (line {i + 2})"


def _parse_text(text: Any, timestamp_format: str | None) -> tuple[Any, str]:
    """(UTC timestamps with NaT where unreadable, what was expected). Without a format, a column
    that is mostly numbers is epoch seconds (its non-numbers are then the errors), else ISO 8601."""
    import pandas as pd

    if timestamp_format is not None:
        parsed = pd.to_datetime(text, format=timestamp_format, utc=True, errors="coerce")
        return parsed, f"format {timestamp_format!r}"
    numbers = pd.to_numeric(text, errors="coerce")
    given = text.notna() & (text.str.strip() != "")
    if numbers.notna().sum() > given.sum() / 2:
        return pd.to_datetime(numbers, unit="s", utc=True, errors="coerce"), "epoch seconds"
    parsed = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    return parsed, "ISO 8601 or epoch seconds"


def parse_timestamps(
    values: Any, path: Path, column: str, timestamp_format: str | None, first: int = 0
) -> np.ndarray[Any, np.dtype[np.datetime64]]:
    """UTC datetime64[ns] from ISO 8601 text (UTC unless it carries an offset), epoch seconds,
    or a strftime format; the first unreadable value is an error naming its row."""
    import pandas as pd

    if isinstance(values, pd.Series) and pd.api.types.is_datetime64_any_dtype(values.dtype):
        text = values.astype("string")  # a datetime column (Parquet): UTC unless it has a zone
        parsed, how = pd.to_datetime(values, utc=True), "a date and time"
    else:
        text = pd.Series(values, dtype="string")
        parsed, how = _parse_text(text, timestamp_format)
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if bad.size:
        i = int(bad[0])
        raise DataError(
            f"data file {path}, {_row(first + i, path)}, column {column!r}: timestamp "
            f"{text.iloc[i]!r} is not {how} (set replay.timestamp_format)"
        )
    # datetime64[ns] spans 1678 to 2261: outside it a value would wrap around silently
    low, high = pd.Timestamp("1678-01-01", tz="UTC"), pd.Timestamp("2261-12-31", tz="UTC")
    outside = np.flatnonzero(((parsed < low) | (parsed > high)).to_numpy())
    if outside.size:
        i = int(outside[0])
        raise DataError(
            f"data file {path}, {_row(first + i, path)}, column {column!r}: timestamp "
            f"{text.iloc[i]!r} is outside the years 1678 to 2261 (epoch milliseconds? divide "
            "by 1000, or set replay.timestamp_format)"
        )
    out: np.ndarray[Any, np.dtype[np.datetime64]] = (
        parsed.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")
    )
    return out


def _numbers(
    frame: Any, path: Path, column: str, ours: str, minimum: float, strict: bool, first: int = 0
) -> FloatArray:
    """A numeric column; missing, non-numeric or out-of-range values name their first row."""
    import pandas as pd

    values: FloatArray = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
    bad_value = ~np.isfinite(values) | ((values <= minimum) if strict else (values < minimum))
    bad = np.flatnonzero(bad_value)
    if bad.size:
        i = int(bad[0])
        raw = frame[column].iloc[i]
        need = f"> {minimum:g}" if strict else f">= {minimum:g}"
        what = "missing" if pd.isna(raw) else f"{raw!r} is not a number {need}"
        where = f"{_row(first + i, path)}, column {column!r}"
        raise DataError(f"data file {path}, {where} ({ours}): {what}")
    return values


def load_bars(
    path: Path,
    columns: Mapping[str, str] | None = None,
    timestamp_format: str | None = None,
    quotes: bool = True,
) -> Bars:
    """Read and validate a bar file. `columns` maps our names (timestamp, close, volume, bid,
    ask, ...) to the file's; names it does not map are looked up as they are. `quotes` False
    leaves bid and ask unread (and unchecked): only the spread feature uses them."""
    path = Path(path)
    mapping = dict(columns or {})
    unknown = set(mapping) - set(REQUIRED) - set(OPTIONAL_COLUMNS)
    if unknown:
        allowed = ", ".join(REQUIRED + OPTIONAL_COLUMNS)
        raise DataError(f"replay.columns: unknown name(s) {sorted(unknown)} (allowed: {allowed})")
    wanted = {ours: mapping.get(ours, ours) for ours in REQUIRED}
    present = _file_columns(path)
    for ours in ("volume", "bid", "ask") if quotes else ("volume",):
        if ours in mapping or ours in present:
            wanted[ours] = mapping.get(ours, ours)
    _check_columns(path, wanted, present)
    stamp = wanted["timestamp"]
    times: list[np.ndarray[Any, np.dtype[np.datetime64]]] = []
    columns_read: dict[str, list[FloatArray]] = {o: [] for o in wanted if o != "timestamp"}
    for first, frame in _read_frames(path, wanted):
        times.append(parse_timestamps(frame[stamp], path, stamp, timestamp_format, first))
        for ours, parts in columns_read.items():
            strict = ours != "volume"  # prices > 0, volume >= 0
            parts.append(_numbers(frame, path, wanted[ours], ours, 0.0, strict, first))
    if not times or sum(map(len, times)) == 0:
        raise DataError(f"data file {path}: no rows")
    time = np.concatenate(times)
    del times
    _check_increasing(time, path, stamp)
    values = {ours: np.concatenate(parts) for ours, parts in columns_read.items()}
    close = values.pop("close")
    return Bars(path, time, close, **values)


def _file_columns(path: Path) -> set[str]:
    """The column names of a file, without reading its rows."""
    import pandas as pd

    if not path.is_file():
        raise DataError(f"data file {path} does not exist")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            return set(pq.read_schema(path).names)
        return set(map(str, pd.read_csv(path, nrows=0).columns))
    except (OSError, ValueError, ImportError) as exc:
        raise DataError(f"data file {path}: cannot be read ({exc})") from exc


def _check_increasing(
    time: np.ndarray[Any, np.dtype[np.datetime64]], path: Path, column: str
) -> None:
    step = np.diff(time.astype(np.int64))
    bad = np.flatnonzero(step <= 0)
    if bad.size:
        i = int(bad[0]) + 1
        what = "duplicates" if step[i - 1] == 0 else "is earlier than"
        raise DataError(
            f"data file {path}, {_row(i, path)}, column {column!r}: timestamp {time[i]} {what} "
            f"the previous row's (rows must be strictly increasing in time)"
        )


def check_quotes(bars: Bars) -> None:
    """The spread feature needs bid and ask on every bar, with ask >= bid."""
    if bars.bid is None or bars.ask is None:
        raise DataError(
            f"data file {bars.path}: the spread feature needs bid and ask columns (map them with "
            "replay.columns, or drop spread from simulation.extra_features)"
        )
    bad = np.flatnonzero(bars.ask < bars.bid)
    if bad.size:
        i = int(bad[0])
        raise DataError(
            f"data file {bars.path}, {_row(i, bars.path)}, columns bid/ask: ask {bars.ask[i]:g} "
            f"is below bid {bars.bid[i]:g}"
        )
