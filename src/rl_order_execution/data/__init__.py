"""Real market data at the boundary: bar files read and validated once (bars), split into
sessions and time-ordered train/validation/test sets (sessions), ticks turned into bars (ticks),
and the bundled data sets (datasets/)."""

from __future__ import annotations

from pathlib import Path

from rl_order_execution.data.bars import (
    Bars,
    check_quotes,
    load_bars,
    parse_timestamps,
)
from rl_order_execution.data.sessions import (
    Calibration,
    Session,
    Split,
    SplitSpec,
    calibrate,
    check_windows,
    sessions_of,
    split_sessions,
)
from rl_order_execution.data.ticks import ticks_to_bars
from rl_order_execution.errors import DataError

DATASETS = Path(__file__).parent / "datasets"
BUILTIN_PREFIX = "builtin:"


def resolve_data_path(text: str | Path) -> Path:
    """A file path, or `builtin:<name>` for a data set shipped with the package."""
    value = str(text)
    if not value.startswith(BUILTIN_PREFIX):
        return Path(value)
    name = value.removeprefix(BUILTIN_PREFIX)
    path = DATASETS / f"{name}.csv"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in DATASETS.glob("*.csv")))
        raise DataError(f"replay.path {value!r}: no bundled data set {name!r} (bundled: {known})")
    return path


__all__ = [
    "BUILTIN_PREFIX",
    "DATASETS",
    "Bars",
    "Calibration",
    "DataError",
    "Session",
    "Split",
    "SplitSpec",
    "calibrate",
    "check_quotes",
    "check_windows",
    "load_bars",
    "parse_timestamps",
    "resolve_data_path",
    "sessions_of",
    "split_sessions",
    "ticks_to_bars",
]
