"""Intraday volume profiles (docs/MODEL.md, "Intraday volume"): a named profile's bin volumes, or a
file of them (CSV with one column and an optional header, or a YAML list), read and checked once;
every error names the file and the row."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import yaml

from rl_order_execution.errors import DataError

# US-equity volume by 15-minute bin, 09:30 to 16:00, in % of the day (mean over AAPL's sessions
# of 2019-01 to 2019-06, from the intradayModel R package's data); sums to 100.02.
U_SHAPE: tuple[float, ...] = (
    12.29, 6.83, 6.09, 5.04, 4.44, 3.99, 4.01, 3.46, 3.25, 2.98, 2.69, 2.44, 2.33,
    2.28, 2.16, 2.20, 2.23, 2.23, 2.60, 2.42, 2.62, 2.76, 3.00, 3.05, 4.13, 8.50,
)  # fmt: skip
NAMED_PROFILES: dict[str, tuple[float, ...]] = {"flat": (), "u_shape": U_SHAPE}


class ProfileError(DataError):
    """A volume profile file that is missing or malformed (the message names the file)."""


def _number(path: Path, row: int, text: object) -> float:
    """One bin volume: a finite number >= 0, or an error naming the file and the row."""
    if isinstance(text, bool):
        raise ProfileError(f"volume profile {path}: row {row} is not a number ({text!r})")
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ProfileError(f"volume profile {path}: row {row} is not a number ({text!r})") from None
    if not math.isfinite(value):
        raise ProfileError(f"volume profile {path}: row {row} is not a finite number ({text!r})")
    if value < 0:
        raise ProfileError(f"volume profile {path}: row {row} is negative ({value:g})")
    return value


def _csv_values(path: Path, text: str) -> list[float]:
    """One column, an optional header in the first row; blank rows are skipped."""
    values: list[float] = []
    for row, cells in enumerate(csv.reader(text.splitlines()), start=1):
        cells = [c.strip() for c in cells if c.strip()]
        if not cells:
            continue
        if len(cells) > 1:
            raise ProfileError(
                f"volume profile {path}: row {row} has {len(cells)} columns (expected one)"
            )
        if row == 1 and not values:
            try:
                float(cells[0])
            except ValueError:
                continue  # a header
        values.append(_number(path, row, cells[0]))
    return values


def _yaml_values(path: Path, text: str) -> list[float]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        raise ProfileError(f"volume profile {path}: not valid YAML") from None
    if not isinstance(data, list):
        raise ProfileError(f"volume profile {path}: expected a YAML list of bin volumes")
    return [_number(path, i, x) for i, x in enumerate(data, start=1)]


def load_profile(path: Path) -> tuple[float, ...]:
    """Bin volumes from a CSV (one column, optional header) or YAML list file, checked: at least
    one value, every value a finite number >= 0, a positive sum."""
    if not path.is_file():
        raise ProfileError(f"volume profile {path}: file does not exist")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"volume profile {path}: cannot read ({exc})") from None
    is_yaml = path.suffix.lower() in (".yaml", ".yml")
    values = _yaml_values(path, text) if is_yaml else _csv_values(path, text)
    if not values:
        raise ProfileError(f"volume profile {path}: no bin volumes in the file")
    if sum(values) <= 0:
        raise ProfileError(f"volume profile {path}: the bin volumes sum to 0 (need a positive sum)")
    return tuple(values)


def profile_bins(profile: str) -> tuple[float, ...]:
    """The bin volumes of a profile setting: () for flat, the u_shape bins, or a file's."""
    if profile in NAMED_PROFILES:
        return NAMED_PROFILES[profile]
    return load_profile(Path(profile))
