"""Calibration of the book market from a top-of-book file, on the bundled sample drawn from the
model at its defaults, and the errors that bad files get."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from rl_order_execution.market.book import (
    BookDataError,
    BookParams,
    calibrate_book,
    calibration_yaml,
    read_top_of_book,
)
from rl_order_execution.market.book.calibration import fill_log_likelihood, nearest_level

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "src" / "rl_order_execution" / "data" / "datasets" / "book_sample.csv"
P = BookParams.default()


@pytest.fixture(scope="module")
def calibration():
    return calibrate_book(SAMPLE)


def z_scores(estimate, se, truth) -> np.ndarray:
    """(estimate - truth) / SE entry by entry; an entry with SE 0 must be exact (0 or 1)."""
    estimate, se, truth = (np.asarray(x, dtype=float).ravel() for x in (estimate, se, truth))
    exact = np.where(estimate == truth, 0.0, np.inf)
    return np.where(se > 0, (estimate - truth) / np.where(se > 0, se, 1), exact)


def test_calibration_recovers_the_defaults_within_4_standard_errors(calibration) -> None:
    c = calibration
    assert c.spreads.tolist() == [1, 2] and c.step_seconds == 5
    assert c.rows == 18_720 and c.pairs == 18_716  # 4 sessions: the 3 overnight gaps open none
    assert c.fills is not None
    z = np.concatenate(
        [
            z_scores(c.spread_transition.matrix, c.spread_transition.se, P.spread_transition),
            z_scores(
                c.imbalance_transition.matrix, c.imbalance_transition.se, P.imbalance_transition
            ),
            z_scores(c.move_table, c.move_table_se, np.stack([P.up, P.down], axis=1)),
            z_scores(c.fills.fill_table, c.fills.fill_table_se, P.fill),
            z_scores(c.fills.fill_decay, c.fills.fill_decay_se, P.fill_decay),
        ]
    )
    assert z.size == 45
    assert np.abs(z).max() < 4, np.round(z, 2)


def test_linear_summaries_recover_p_theta_a_phi_and_pass_their_fit_tests(calibration) -> None:
    moves, fills = calibration.moves, calibration.fill_summary
    assert fills is not None
    for fit, truth in ((moves, (0.3, 0.6)), (fills, (0.6, 0.5))):
        for value, se, true in zip(fit.values, fit.se, truth, strict=True):
            assert abs(value - true) < 4 * se
        assert fit.p_value > 0.001  # the data come from the linear form
    assert (moves.dof, fills.dof) == (8, 3)


def test_the_written_config_runs_as_it_is(calibration) -> None:
    text = calibration_yaml(calibration)
    config = yaml.safe_load(text)
    assert config["simulation"] == {"price_model": "book"}
    p = BookParams.from_settings(config["book"])
    np.testing.assert_allclose(p.spread_transition, calibration.spread_transition.matrix, atol=1e-6)
    np.testing.assert_allclose(np.stack([p.up, p.down], 1), calibration.move_table, atol=1e-6)
    assert calibration.fills is not None
    np.testing.assert_allclose(p.fill, calibration.fills.fill_table, atol=1e-6)
    assert "# SE" in text and "chi-square of the linear form" in text and "move_probability" in text


def test_the_bundled_sample_is_what_the_script_draws() -> None:
    spec = importlib.util.spec_from_file_location(
        "make_book_sample", ROOT / "scripts" / "make_book_sample.py"
    )
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.sample_text() == SAMPLE.read_text()


def test_parquet_gives_the_same_calibration(tmp_path: Path, calibration) -> None:
    frame = pd.read_csv(SAMPLE, dtype={"timestamp": str})
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    path = tmp_path / "book.parquet"
    frame.to_parquet(path)
    again = calibrate_book(path)
    np.testing.assert_allclose(again.move_table, calibration.move_table)
    assert again.fills is not None and calibration.fills is not None
    assert again.fills.fill_decay == pytest.approx(calibration.fills.fill_decay, rel=1e-9)


def test_the_fill_likelihood_gradient_is_its_derivative() -> None:
    rng = np.random.default_rng(0)
    none, at = rng.integers(5, 50, size=3), rng.integers(0, 30, size=(3, 6))
    theta = np.array([0.4, 0.6, 0.8, 0.7])
    _, grad = fill_log_likelihood(theta, none, at)
    for k in range(4):
        h = np.zeros(4)
        h[k] = 1e-6
        numeric = (
            fill_log_likelihood(theta + h, none, at)[0]
            - fill_log_likelihood(theta - h, none, at)[0]
        ) / 2e-6
        assert grad[k] == pytest.approx(numeric, rel=1e-6)


def test_a_tie_between_levels_goes_to_the_lower_one() -> None:
    levels = np.array([-0.8, -0.4, 0.0, 0.4, 0.8])
    got = nearest_level(np.array([0.2, -0.6, 0.59, 0.61, 1.0]), levels)
    assert got.tolist() == [2, 0, 3, 4, 4]


# --- sessions and bad data --------------------------------------------------------------------


def rows(n: int = 200, start: str = "2024-01-02T10:00:00Z", seconds: int = 5) -> pd.DataFrame:
    """A valid file: alternating spreads of 1 and 2 ticks and all five levels, buys reaching
    depths 0 to 2 (and none)."""
    k = np.arange(n)
    spread = np.where(k % 7 < 5, 1, 2)
    mid = 100 + 0.01 * np.cumsum(np.where(k % 3 == 0, 1, np.where(k % 3 == 1, -1, 0)))
    levels = np.array([-0.8, -0.4, 0.0, 0.4, 0.8])[(k // 3) % 5]
    bid_size = np.round(500 * (1 + levels)).astype(int) + 10
    ask_size = np.round(500 * (1 - levels)).astype(int) + 10
    ask = mid + spread * 0.005
    buy = np.where(k % 4 == 0, np.nan, ask + 0.01 * (k % 3))
    return pd.DataFrame(
        {
            "timestamp": pd.date_range(start, periods=n, freq=f"{seconds}s").strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
            "bid": np.round(mid - spread * 0.005, 4),
            "ask": np.round(ask, 4),
            "bid_size": bid_size,
            "ask_size": ask_size,
            "buy_high": np.round(buy, 4),
        }
    )


def write(tmp_path: Path, frame: pd.DataFrame) -> Path:
    path = tmp_path / "book.csv"
    frame.to_csv(path, index=False)
    return path


def test_a_valid_file_calibrates_and_gaps_break_sessions(tmp_path: Path) -> None:
    two = pd.concat([rows(200), rows(200, start="2024-01-03T10:00:00Z")], ignore_index=True)
    c = calibrate_book(write(tmp_path, two))
    assert c.step_seconds == 5 and c.pairs == 398  # the overnight pair is not one step apart


def test_the_step_is_the_modal_spacing_unless_given(tmp_path: Path) -> None:
    frame = rows(200, seconds=10)
    path = write(tmp_path, frame)
    assert calibrate_book(path).step_seconds == 10
    with pytest.raises(
        BookDataError, match="spread of 1 tick has 0 rows followed by a row one step apart"
    ):
        calibrate_book(path, step_seconds=5)


def test_no_buy_high_column_leaves_the_fill_settings_at_their_defaults(tmp_path: Path) -> None:
    c = calibrate_book(write(tmp_path, rows().drop(columns="buy_high")))
    assert c.fills is None and "fill_table" not in c.book_section()
    assert "keep their defaults" in calibration_yaml(c)


def broken(column: str, row: int, value: object) -> pd.DataFrame:
    frame = rows()
    frame[column] = frame[column].astype(object)
    frame.loc[row, column] = value
    return frame


BAD = [
    (rows().drop(columns="ask_size"), "no column 'ask_size'"),
    (broken("ask", 7, 99.0), "row 8 (line 9), columns 'bid'/'ask': crossed quotes, ask 99 < bid"),
    (broken("bid_size", 3, 0), "row 4 (line 5), column 'bid_size': 0 is not a number > 0"),
    (broken("ask_size", 5, -2), "row 6 (line 7), column 'ask_size': -2 is not a number > 0"),
    (broken("bid", 9, None), "row 10 (line 11), column 'bid': missing"),
    (
        broken("timestamp", 12, "2024-01-02T09:00:00Z"),
        "row 13 (line 14), column 'timestamp': not after the previous row's",
    ),
    (
        broken("timestamp", 2, "yesterday"),
        "row 3 (line 4), column 'timestamp': 'yesterday' is not an ISO 8601 time",
    ),
    (broken("buy_high", 4, -1.0), "row 5 (line 6), column 'buy_high': -1 is not a number > 0"),
    (
        rows(40),
        "columns 'bid'/'ask': spread of 1 tick has 29 rows followed by a row one step apart",
    ),
]


@pytest.mark.parametrize(("frame", "message"), BAD)
def test_bad_data_is_one_line_naming_the_file_row_and_column(
    tmp_path: Path, frame, message
) -> None:
    path = write(tmp_path, frame)
    with pytest.raises(BookDataError) as caught:
        calibrate_book(path)
    text = str(caught.value)
    assert "\n" not in text and text.startswith(f"data file {path}"), text
    assert message in text, text


def test_a_level_without_rows_is_named(tmp_path: Path) -> None:
    frame = rows(400)
    frame["bid_size"], frame["ask_size"] = 500, 500  # imbalance 0 everywhere
    with pytest.raises(BookDataError, match=r"imbalance level -0\.8 has 0 rows"):
        calibrate_book(write(tmp_path, frame))


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(BookDataError, match="does not exist"):
        read_top_of_book(tmp_path / "nothing.csv")
