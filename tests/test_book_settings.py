"""Settings of the book market: every rule of MODEL.md's "Valid settings", each refused with one
line naming the setting and what is allowed."""

from __future__ import annotations

import numpy as np
import pytest

from rl_order_execution.market.book import (
    DEFAULTS,
    BookParams,
    BookSettingsError,
    Limit,
    Market,
    Wait,
    parse_action,
)

IDENTITY_2 = [[1.0, 0.0], [0.0, 1.0]]

REFUSED = [
    (
        {"spread_transition": [[0.9, 0.1], [0.5, 0.4]]},
        "book.spread_transition: row 2 sums to 0.9; each row must sum to 1",
    ),
    ({"spread_transition": [[0.9, 0.1]]}, "book.spread_transition: 1 rows of 2; it must be 2 x 2"),
    (
        {"spread_transition": [[1.1, -0.1], [0.5, 0.5]]},
        "book.spread_transition: row 1 has a negative entry",
    ),
    ({"spread_transition": IDENTITY_2}, "book.spread_transition: the chain has 2 closed classes"),
    (
        {"imbalance_transition": np.eye(5).tolist()},
        "book.imbalance_transition: the chain has 5 closed classes",
    ),
    ({"imbalance_transition": [[1.0]]}, "book.imbalance_transition: 1 rows of 1; it must be 5 x 5"),
    ({"imbalance_persistence": 1.0}, "book.imbalance_persistence: 1 never moves the imbalance"),
    ({"imbalance_persistence": 1.5}, "book.imbalance_persistence: 1.5 is outside [0, 1]"),
    (
        {"spreads": [2, 1], "spread_transition": IDENTITY_2},
        "book.spreads: [2.0, 1.0] is not strictly increasing",
    ),
    ({"spreads": [0, 1]}, "book.spreads: [0.0, 1.0]: spreads must be positive integers"),
    ({"spreads": [1, 2.5]}, "book.spreads: [1.0, 2.5]: spreads must be positive integers"),
    ({"spreads": []}, "book.spreads: empty"),
    (
        {"imbalance_levels": [-1.2, 0.0]},
        "book.imbalance_levels: [-1.2, 0.0]: levels must lie in [-1, 1]",
    ),
    (
        {"imbalance_levels": [0.0, 0.0]},
        "book.imbalance_levels: [0.0, 0.0] is not strictly increasing",
    ),
    ({"move_probability": 1.2}, "book.move_probability: 1.2 is outside [0, 1]"),
    (
        {"imbalance_signal": 1.5},
        "book.imbalance_signal: 1.5 times the largest |level| 0.8 exceeds 1",
    ),
    ({"move_table": [[0.1, 0.1]] * 4}, "book.move_table: it needs 5 [up, down] pairs"),
    (
        {"move_table": [[0.1, 0.1]] * 4 + [[0.6, 0.5]]},
        "book.move_table: level 0.8: [0.6, 0.5]; up, down >= 0 with up + down <= 1",
    ),
    ({"move_table": [[-0.1, 0.1]] + [[0.1, 0.1]] * 4}, "book.move_table: level -0.8: [-0.1, 0.1]"),
    ({"fill_rate": -1}, "book.fill_rate: -1 is negative"),
    (
        {"fill_imbalance": 2},
        "book.fill_imbalance: 2 makes 1 + fill_imbalance * level negative at level -0.8",
    ),
    (
        {"fill_table": [0.5, 0.5, -0.1, 0.5, 0.5]},
        "book.fill_table: [0.5, 0.5, -0.1, 0.5, 0.5]: rates must be >= 0",
    ),
    ({"fill_table": [0.5, 0.5]}, "book.fill_table: 2 entries; it needs 5, one per imbalance level"),
    ({"fill_decay": -0.1}, "book.fill_decay: -0.1 is negative"),
    ({"book_impact": -1e-5}, "book.book_impact: -1e-05 is negative"),
    ({"book_permanent_impact": -1}, "book.book_permanent_impact: -1 is negative"),
    ({"book_risk_aversion": -1}, "book.book_risk_aversion: -1 is negative"),
    ({"clip": 0}, "book.clip: 0; it must satisfy 0 < clip <= total_shares (1000)"),
    ({"clip": 1001}, "book.clip: 1001; it must satisfy 0 < clip <= total_shares (1000)"),
    ({"book_actions": []}, "book.book_actions: []: the menu must be a non-empty list"),
    ({"book_actions": ["sell"]}, "book.book_actions: 'sell' is not an action"),
    ({"book_actions": ["limit -1"]}, "book.book_actions: 'limit -1' is not an action"),
    ({"book_actions": ["market 1.5"]}, "book.book_actions: 'market 1.5' is not an action"),
    ({"book_actions": ["market 0"]}, "book.book_actions: 'market 0' is not an action"),
    ({"book_actions": ["wait", "Wait"]}, "book.book_actions: wait appears twice"),
    ({"book_actions": ["limit 1", "limit 1.0"]}, "book.book_actions: limit 1 appears twice"),
    ({"max_depth": -1}, "book.max_depth: -1 is negative"),
    ({"tick": 0}, "book.tick: 0; it must be > 0"),
    ({"tick": "a cent"}, "book.tick: 'a cent' is not a number"),
    ({"tick": float("nan")}, "book.tick: nan is not a finite number"),
    ({"ticks": 0.01}, "book.ticks: unknown setting; allowed: tick, spreads"),
]


@pytest.mark.parametrize(("section", "message"), REFUSED)
def test_each_rule_is_refused_with_one_line_naming_the_setting(section, message) -> None:
    with pytest.raises(BookSettingsError) as caught:
        BookParams.from_settings(section)
    text = str(caught.value)
    assert "\n" not in text
    assert text.startswith(message), text


@pytest.mark.parametrize(
    ("shares", "horizon", "price", "message"),
    [
        (0, None, 100.0, "simulation.total_shares: 0; it must be > 0"),
        (1000, 0, 100.0, "simulation.time_horizon: 0; it must be an integer >= 1"),
        (1000, 2.5, 100.0, "simulation.time_horizon: 2.5; it must be an integer >= 1"),
        (1000, None, -1.0, "simulation.start_price: -1; it must be > 0"),
    ],
)
def test_simulation_numbers_are_checked(shares, horizon, price, message) -> None:
    with pytest.raises(BookSettingsError, match=f"^{message}"):
        BookParams.from_settings({}, shares, horizon, price)


def test_a_market_where_twap_would_sell_at_a_price_at_or_below_zero_is_refused() -> None:
    """P0 - max(s) tau / 2 - alpha_b Q (N - 1) / N - beta_b Q / N <= 0: at P0 = 0.01 with the
    widest spread 2 ticks of 0.01 and no impact, the price is exactly 0."""
    flat = {"book_impact": 0.0, "book_permanent_impact": 0.0}
    with pytest.raises(BookSettingsError) as caught:
        BookParams.from_settings(flat, start_price=0.01)
    text = str(caught.value)
    assert "\n" not in text and text.startswith(
        "simulation.start_price: TWAP would sell at $0 <= 0"
    )
    for name in ("book.spreads", "book.tick", "book.book_permanent_impact", "book.book_impact"):
        assert name in text
    BookParams.from_settings(flat, start_price=0.0101)  # just above: accepted
    with pytest.raises(BookSettingsError, match=r"TWAP would sell at \$-"):
        BookParams.from_settings({"book_permanent_impact": 0.2}, start_price=100.0)


def test_defaults_resolve_to_the_model_table() -> None:
    p = BookParams.from_settings(DEFAULTS)
    assert (p.Q, p.N, p.P0, p.tick, p.clip) == (1000, 60, 100, 0.01, 50)
    np.testing.assert_allclose(p.up, 0.3 * (1 + 0.6 * p.levels) / 2)
    np.testing.assert_allclose(p.down, 0.3 * (1 - 0.6 * p.levels) / 2)
    np.testing.assert_allclose(p.fill, 0.6 * (1 + 0.5 * p.levels))
    ends = [[0.9, 0.1, 0, 0, 0], [0, 0, 0, 0.1, 0.9]]
    np.testing.assert_allclose(p.imbalance_transition[[0, -1]], ends)
    np.testing.assert_allclose(p.imbalance_transition[2], [0, 0.1, 0.8, 0.1, 0])
    assert p.actions == (Wait(), Limit(0), Limit(1), Limit(2), Market(1), Market(2))
    assert p.max_market == 2
    assert not p.spreads.flags.writeable  # frozen all the way down


def test_tables_replace_the_linear_forms() -> None:
    table = [[0.1, 0.2], [0.1, 0.1], [0.2, 0.2], [0.0, 0.0], [0.5, 0.5]]
    P = [
        [0.5, 0.5, 0, 0, 0],
        [0, 0.5, 0.5, 0, 0],
        [0, 0, 0.5, 0.5, 0],
        [0, 0, 0, 0.5, 0.5],
        [0.5, 0, 0, 0, 0.5],
    ]
    p = BookParams.from_settings(
        {"move_table": table, "fill_table": [0, 1, 2, 3, 4], "imbalance_transition": P}
    )
    np.testing.assert_array_equal(np.stack([p.up, p.down], axis=1), table)
    np.testing.assert_array_equal(p.fill, [0, 1, 2, 3, 4])
    np.testing.assert_allclose(p.stationary_imbalance, np.full(5, 0.2), atol=1e-12)
    assert p.fill_probability(0.0)[0] == 0  # a level where nothing fills


def test_one_spread_and_one_level_are_a_valid_market() -> None:
    """A 1 x 1 identity has a unique stationary law; only larger identities are refused."""
    p = BookParams.from_settings(
        {"spreads": [1], "spread_transition": [[1.0]], "imbalance_levels": [0.0]}
    )
    assert p.stationary_spread.tolist() == [1.0] and p.imbalance_transition.tolist() == [[1.0]]


def test_a_chain_with_a_transient_state_has_a_unique_law() -> None:
    p = BookParams.from_settings(
        {
            "spreads": [1, 2, 3],
            "spread_transition": [[0.9, 0.1, 0.0], [0.5, 0.5, 0.0], [0.3, 0.3, 0.4]],
        }
    )
    np.testing.assert_allclose(p.stationary_spread, [5 / 6, 1 / 6, 0.0], atol=1e-14)
    assert p.spread_cdf[0, 1] == np.inf  # a draw from 1 tick never lands on 3 ticks


def test_rows_within_a_millionth_of_one_are_renormalised() -> None:
    p = BookParams.from_settings({"spread_transition": [[0.9, 0.1000005], [0.5, 0.5]]})
    assert p.spread_transition[0].sum() == pytest.approx(1.0, abs=1e-15)


def test_the_horizon_defaults_to_60_and_a_clip_that_does_not_divide_q_adds_a_zero() -> None:
    p = BookParams.from_settings({"clip": 300}, total_shares=1000)
    assert p.N == 60
    assert p.grid.tolist() == [1000, 700, 400, 100, 0]


@pytest.mark.parametrize(
    ("text", "action"),
    [
        ("wait", Wait()),
        (" Limit 2.5 ", Limit(2.5)),
        ("limit 0", Limit(0.0)),
        ("market 3", Market(3)),
    ],
)
def test_actions_parse(text, action) -> None:
    assert parse_action(text) == action
