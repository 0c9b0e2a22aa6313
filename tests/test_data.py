"""Real data at the boundary: bar files validated with errors naming file, row and column;
sessions and time-ordered splits; calibration on the training sessions; ticks to bars."""

from __future__ import annotations

import datetime as dt
import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from rl_order_execution.data import (
    DataError,
    SplitSpec,
    calibrate,
    check_windows,
    load_bars,
    resolve_data_path,
    sessions_of,
    split_sessions,
    ticks_to_bars,
)

HEADER = "timestamp,close,volume\n"


def _three_sessions(tmp_path: Path) -> Path:
    """Three UTC dates, 4 bars each (the third bar of day 2 missing: uneven spacing)."""
    rows = []
    for day, hours in ((2, (9, 10, 11, 12)), (3, (9, 10, 12, 13)), (4, (9, 10, 11, 12))):
        for i, h in enumerate(hours):
            close = 100 + day + 0.5 * i
            rows.append(f"2024-01-0{day}T{h:02d}:00:00Z,{close},{10 * (i + 1)}")
    path = tmp_path / "bars.csv"
    path.write_text(HEADER + "\n".join(rows) + "\n")
    return path


def test_a_three_session_file_splits_in_time_order(tmp_path: Path) -> None:
    bars = load_bars(_three_sessions(tmp_path))
    sessions = sessions_of(bars, "UTC")
    assert [(s.date.day, s.size) for s in sessions] == [(2, 4), (3, 4), (4, 4)]
    train, val, test = split_sessions(sessions, 3, SplitSpec(0.34, 0.33), "bars.csv")
    # floor(0.34 * 3) = 1 train session, floor(0.67 * 3) = 2: one validation, one test
    assert [len(s.sessions) for s in (train, val, test)] == [1, 1, 1]
    assert (train.sessions[0].date, test.sessions[0].date) == (
        dt.date(2024, 1, 2),
        dt.date(2024, 1, 4),
    )
    by_dates = split_sessions(
        sessions,
        3,
        SplitSpec(train_end=dt.date(2024, 1, 3), validation_end=dt.date(2024, 1, 3)),
        "x",
    )
    assert [len(s.sessions) for s in by_dates] == [2, 0, 1]
    # training draws every start, validation/test starts at multiples of the stride
    assert train.windows(3, None)[1].tolist() == [0, 1]
    assert test.windows(3, 3)[1].tolist() == [8]


def test_a_split_without_windows_stops_with_the_counts(tmp_path: Path) -> None:
    bars = load_bars(_three_sessions(tmp_path))
    splits = split_sessions(sessions_of(bars, "UTC"), 3, SplitSpec(0.9, 0.05), "bars.csv")
    with pytest.raises(DataError, match="train 2 sessions / 4 windows, validation 0 sessions"):
        check_windows(splits, 3, 3, "bars.csv")


def test_timezone_moves_the_session_boundary(tmp_path: Path) -> None:
    path = tmp_path / "tz.csv"
    path.write_text(HEADER + "2024-01-02T22:00:00Z,1,1\n2024-01-02T23:30:00Z,1,1\n")
    assert len(sessions_of(load_bars(path), "UTC")) == 1
    assert len(sessions_of(load_bars(path), "Europe/Berlin")) == 2  # 23:00 and 00:30 local


def test_calibration_uses_training_sessions_only_and_never_returns_across_sessions(
    tmp_path: Path,
) -> None:
    bars = load_bars(_three_sessions(tmp_path))
    sessions = sessions_of(bars, "UTC")
    train, _, _ = split_sessions(sessions, 3, SplitSpec(0.67, 0.0), "x")
    cal = calibrate(bars, train)
    # days 2 and 3: closes 102 + 0.5 i and 103 + 0.5 i, no return from 103.5 to 103
    r = np.concatenate(
        [np.diff(np.log(102 + 0.5 * np.arange(4))), np.diff(np.log(103 + 0.5 * np.arange(4)))]
    )
    assert cal.sigma == pytest.approx(float(r.std(ddof=1)), rel=1e-12)
    assert cal.mean_volume == pytest.approx(25.0)
    assert cal.profile is not None
    np.testing.assert_allclose(cal.profile, [0.1, 0.2, 0.3, 0.4])


def test_epoch_seconds_and_offsets_are_read_as_utc(tmp_path: Path) -> None:
    epoch = tmp_path / "epoch.csv"
    epoch.write_text(HEADER + "1704186000,1,1\n1704189600,2,1\n")
    offset = tmp_path / "offset.csv"
    offset.write_text(HEADER + "2024-01-02T10:00:00+01:00,1,1\n2024-01-02T11:00:00+01:00,2,1\n")
    assert load_bars(epoch).time[0] == np.datetime64("2024-01-02T09:00:00")
    assert load_bars(offset).time[0] == np.datetime64("2024-01-02T09:00:00")


def test_parquet_and_a_column_mapping(tmp_path: Path) -> None:
    import pandas as pd

    frame = pd.DataFrame({"Time": ["2024-01-02 09:00", "2024-01-02 10:00"], "Px": [1.5, 1.6]})
    path = tmp_path / "bars.parquet"
    frame.to_parquet(path)
    bars = load_bars(path, {"timestamp": "Time", "close": "Px"}, "%Y-%m-%d %H:%M")
    assert bars.close.tolist() == [1.5, 1.6] and bars.volume is None


BAD_ROWS = {
    "unparsable timestamp": (
        "2024-01-02T10:00:00Z,1,1\nyesterday,1,1\n",
        ("row 2 (line 3), column 'timestamp'", "'yesterday' is not ISO 8601"),
    ),
    "duplicate timestamp": (
        "2024-01-02T10:00:00Z,1,1\n2024-01-02T10:00:00Z,1,1\n",
        ("row 2 (line 3), column 'timestamp'", "duplicates"),
    ),
    "decreasing timestamps": (
        "2024-01-02T10:00:00Z,1,1\n2024-01-02T09:00:00Z,1,1\n",
        ("row 2 (line 3), column 'timestamp'", "earlier"),
    ),
    "non-positive price": (
        "2024-01-02T10:00:00Z,1,1\n2024-01-02T11:00:00Z,0,1\n",
        ("row 2 (line 3), column 'close'", "is not a number > 0"),
    ),
    "missing price": ("2024-01-02T10:00:00Z,,1\n", ("row 1 (line 2), column 'close'", "missing")),
    "NaN price": ("2024-01-02T10:00:00Z,nan,1\n", ("row 1 (line 2), column 'close'",)),
    "negative volume": (
        "2024-01-02T10:00:00Z,1,-3\n",
        ("row 1 (line 2), column 'volume'", "is not a number >= 0"),
    ),
}


@pytest.mark.parametrize("case", list(BAD_ROWS))
def test_bad_rows_name_the_file_the_row_and_the_column(tmp_path: Path, case: str) -> None:
    body, parts = BAD_ROWS[case]
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + body)
    with pytest.raises(DataError) as info:
        load_bars(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    for part in parts:
        assert part in message


def test_missing_file_and_column_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_bars(tmp_path / "nope.csv")
    path = tmp_path / "cols.csv"
    path.write_text("Time,Close\n2024-01-02T10:00:00Z,1\n")
    with pytest.raises(
        DataError, match=r"no column 'timestamp' for timestamp \(columns: Close, Time"
    ):
        load_bars(path)
    with pytest.raises(DataError, match="unknown name"):
        load_bars(path, {"time": "Time"})


def test_a_horizon_longer_than_every_session_is_an_error(tmp_path: Path) -> None:
    bars = load_bars(_three_sessions(tmp_path))
    with pytest.raises(
        DataError, match=r"time_horizon 5 is longer than every session \(longest: 4"
    ):
        split_sessions(sessions_of(bars, "UTC"), 5, SplitSpec(), "bars.csv")


def test_the_bundled_eurusd_set_loads() -> None:
    bars = load_bars(
        resolve_data_path("builtin:eurusd_1h_2017"),
        {"timestamp": "Time", "close": "Close", "volume": "Volume"},
        "%d.%m.%Y %H:%M:%S.%f",
    )
    assert len(bars) == 6225 and bars.volume is not None
    assert bars.time[0] == np.datetime64("2017-01-01T22:00:00")
    with pytest.raises(DataError, match="no bundled data set 'btc'"):
        resolve_data_path("builtin:btc")


def test_ticks_to_bars_on_the_emini_sample_keeps_every_share() -> None:
    """The E-mini S&P 500 tick sample of the mlfinpy package (installed by make install-dev)."""
    import pandas as pd

    spec = importlib.util.find_spec("mlfinpy")
    assert spec is not None and spec.submodule_search_locations, "pip install --no-deps mlfinpy"
    ticks = Path(next(iter(spec.submodule_search_locations))) / "dataset/data/tick_data.csv"
    bars = ticks_to_bars(ticks, "5min", timestamp="DateTime", price="Price", size="Volume")
    raw = pd.read_csv(ticks)
    assert bars["volume"].sum() == raw["Volume"].sum()
    assert (bars["low"] <= bars["close"]).all() and (bars["close"] <= bars["high"]).all()
    assert bars["timestamp"].is_monotonic_increasing
    first = raw[raw["DateTime"] < "2013-09-01 17:05"]
    assert bars["volume"].iloc[0] == first["Volume"].sum()
    assert (
        bars["open"].iloc[0] == first["Price"].iloc[0]
        and bars["close"].iloc[0] == first["Price"].iloc[-1]
    )
    assert math.isclose(bars["high"].iloc[0], first["Price"].max())


def test_rl_exec_data_bars_writes_bars_that_replay_can_read(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from rl_order_execution.cli import app

    ticks = tmp_path / "ticks.csv"
    ticks.write_text(
        "DateTime,Price,Volume\n2013-09-01 17:00:00.083,1640.25,8\n"
        "2013-09-01 17:00:30.1,1640.5,2\n2013-09-01 17:03:00.0,1641,5\n"
    )
    out = tmp_path / "bars.csv"
    args = ["data", "bars", str(ticks), "-o", str(out), "--timestamp-column", "DateTime"]
    args += ["--price-column", "Price", "--size-column", "Volume"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    bars = load_bars(out)
    assert bars.close.tolist() == [1640.5, 1641.0]
    assert bars.volume is not None and bars.volume.tolist() == [10.0, 5.0]
    missing = CliRunner().invoke(app, ["data", "bars", str(ticks), "-o", str(out)])
    assert missing.exit_code == 2 and "no column 'timestamp'" in missing.output
