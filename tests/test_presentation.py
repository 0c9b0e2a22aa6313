"""Tables and plots that cannot be misread: VWAP slippage without our own impact next to
MODEL.md's, participation only where it varies, the best and worst test session marked, legends
off the data, a smooth frontier and no marker hidden behind another."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pytest

from rl_order_execution.data.profiles import U_SHAPE
from rl_order_execution.evaluation import evaluate, frontier
from rl_order_execution.evaluation.replay import ImpactSummary, ReplaySummary, SessionCosts
from rl_order_execution.market import MarketParams, shock_matrix
from rl_order_execution.reporting import plots
from rl_order_execution.reporting.tables import (
    MAX_SESSION_ROWS,
    PARTICIPATION_MAX,
    PARTICIPATION_MEAN,
    VWAP_EX,
    VWAP_INCL,
    metrics_table,
    session_extremes,
    session_rows,
    sessions_table,
    volume_columns,
)
from rl_order_execution.strategies import TWAP, reference_strategies

FLAT = MarketParams()
U = MarketParams(volume_bins=U_SHAPE)


def _evaluation(p: MarketParams, episodes: int = 200) -> Any:
    return evaluate(p, reference_strategies(p), shock_matrix(p, 3, episodes, True), True)


@pytest.fixture(scope="module")
def flat() -> Any:
    return _evaluation(FLAT)


@pytest.fixture(scope="module")
def u_shape() -> Any:
    return _evaluation(U)


# --- VWAP slippage: against the market's VWAP without our own impact, and MODEL.md's ---------


def test_without_price_moves_the_ex_impact_vwap_is_the_arrival_price_for_every_strategy() -> None:
    """sigma = 0: the only move is our permanent impact; added back, the market's VWAP is P0 and
    the slippage against it is the shortfall itself (bps of Q*P0), schedule by schedule."""
    for p in (FLAT.with_(sigma=0.0), U.with_(sigma=0.0)):
        ev = evaluate(p, reference_strategies(p), shock_matrix(p, 1, 4))
        for name, tr in ev.trajectories.items():
            np.testing.assert_allclose(tr.market_vwap_ex_impact(p), p.P0, rtol=1e-12)
            np.testing.assert_allclose(
                tr.vwap_slippage_ex_impact(p), tr.shortfall(p) * p.bps, rtol=1e-9, err_msg=name
            )


def test_front_loading_beats_vwap_mkt_only_through_its_own_impact(flat: Any) -> None:
    """On a flat martingale market no schedule beats TWAP's expected shortfall. Against
    VWAP_mkt (our impact included) the front-loaded optimum seems to beat VWAP by far; against
    the market's VWAP without our impact it costs more than TWAP, as its shortfall does."""
    m = flat.metrics()
    twap, optimal = m["twap"], m["optimal"]
    assert twap.volume is not None and optimal.volume is not None
    assert optimal.volume.vwap_slippage_bps.mean < 0 < twap.volume.vwap_slippage_bps.mean
    ex_twap, ex_optimal = (
        twap.volume.vwap_slippage_ex_impact_bps,
        optimal.volume.vwap_slippage_ex_impact_bps,
    )
    assert ex_twap is not None and ex_optimal is not None and ex_twap.mean is not None
    assert ex_optimal.mean is not None and ex_optimal.mean > ex_twap.mean
    saved = optimal.volume.savings_vwap_slippage_ex_impact
    assert saved is not None and saved.ci95_high_bps < 0  # a loss, significantly
    assert saved.avg_savings_bps == pytest.approx(optimal.savings_is.avg_savings_bps, abs=1.0)


def test_metrics_json_keeps_its_volume_keys_and_adds_the_ex_impact_ones(u_shape: Any) -> None:
    out = u_shape.metrics()["vwap"].to_json()
    keys = list(out)
    old = ["vwap_slippage_bps", "savings_vwap_slippage", "participation_mean", "participation_max"]
    new = ["vwap_slippage_ex_impact_bps", "savings_vwap_slippage_ex_impact"]
    assert keys[-6:] == old + new  # the new keys after every key a file had before
    assert set(out["vwap_slippage_ex_impact_bps"]) == {"mean", "std", "se"}
    assert out["savings_vwap_slippage_ex_impact"]["avg_savings_bps"] > 0  # VWAP beats TWAP there


def test_the_two_vwap_slippages_have_headers_that_cannot_be_confused(flat: Any) -> None:
    headers = [c.header for c in metrics_table(flat.metrics(), 200).columns]
    assert VWAP_EX in headers and VWAP_INCL in headers
    assert "ex own impact" in VWAP_EX and "incl. own impact" in VWAP_INCL
    assert "VWAP slippage" not in headers  # the old, unqualified name is gone


# --- participation only where it varies --------------------------------------------------------


def test_participation_columns_are_absent_on_a_flat_market_and_present_on_u_shape(
    flat: Any, u_shape: Any
) -> None:
    flat_metrics = flat.metrics()
    # on a flat market every strategy's mean participation is Q / V: it carries no news
    means = {m.volume.participation_mean.mean for m in flat_metrics.values() if m.volume}
    assert max(means) == pytest.approx(FLAT.Q / FLAT.V) == pytest.approx(min(means))
    for metrics, shown in ((flat_metrics, False), (u_shape.metrics(), True)):
        headers = [c.header for c in metrics_table(metrics, 200).columns]
        assert (PARTICIPATION_MEAN in headers) is shown
        assert (PARTICIPATION_MAX in headers) is shown
        assert VWAP_EX in headers and VWAP_INCL in headers


def test_a_participation_column_whose_cells_agree_is_left_out() -> None:
    """Two strategies that trade alike: no participation column tells them apart."""
    p = U
    vwap = next(s for s in reference_strategies(p) if s.name == "vwap")
    ev = evaluate(p, [TWAP(), vwap], shock_matrix(p, 1, 50))
    metrics = {"vwap": ev.metrics()["vwap"], "vwap-copy": ev.metrics()["vwap"]}
    assert PARTICIPATION_MEAN not in volume_columns(metrics)
    assert PARTICIPATION_MEAN in volume_columns(ev.metrics())


# --- the replay per-session table marks each agent's best and worst ----------------------------


def _summary(days: list[SessionCosts]) -> ReplaySummary:
    impact = ImpactSummary("relative", 0.01, 0.47, 0.314, 1e-5, 1e-3, 2.35)
    return ReplaySummary("x.csv", 0.001, None, 4, impact, [], days)


def test_best_and_worst_sessions_are_marked_per_agent_in_rich_and_markdown() -> None:
    # margins vs TWAP: a +1, +5, -2, -7 (best 2nd, worst 4th); b -1, -3, +4, 0 (best 3rd, worst 2nd)
    a, b = [99.0, 95.0, 102.0, 107.0], [101.0, 103.0, 96.0, 100.0]
    days = [
        SessionCosts(f"2024-01-0{i + 1}", 2, {"twap": 100.0, "a": a[i], "b": b[i]})
        for i in range(4)
    ]
    summary = _summary(days)
    assert session_extremes(summary, "a") == (1, 3)
    assert session_extremes(summary, "b") == (2, 1)
    plain = session_rows(summary, ["a", "b"])
    column = {"a": 3, "b": 4}  # date, windows, twap, a, b
    marked = {
        (agent, i, mark)
        for i, row in enumerate(plain)
        for agent, c in column.items()
        for mark in ("best", "worst")
        if f"({mark})" in row[c]
    }
    assert marked == {("a", 1, "best"), ("a", 3, "worst"), ("b", 2, "best"), ("b", 1, "worst")}
    assert plain[1][3] == "95.00 won (best)" and plain[3][3] == "107.00 lost (worst)"
    md = session_rows(summary, ["a", "b"], emphasis="markdown")
    assert md[1][3] == "**95.00 won (best)**" and md[0][3] == "99.00 won"
    rich = session_rows(summary, ["a", "b"], emphasis="rich")
    assert rich[1][3].startswith("[bold green]") and rich[3][3].startswith("[bold red]")


def test_no_marks_when_every_session_has_the_same_margin() -> None:
    days = [SessionCosts(f"2024-01-0{i + 1}", 1, {"twap": 1.0, "a": 1.0}) for i in range(3)]
    assert session_extremes(_summary(days), "a") is None
    assert not any(
        "(best)" in c or "(worst)" in c for row in session_rows(_summary(days), ["a"]) for c in row
    )


def test_the_console_keeps_every_agents_best_and_worst_among_many_sessions() -> None:
    """The first agent's 20 best and 20 worst are shown; a second agent's extremes, elsewhere,
    are added, never dropped."""
    days = [
        SessionCosts(
            f"2024-{1 + i // 28:02d}-{i % 28 + 1:02d}",
            1,
            {
                "twap": 100.0,
                "a": 100.0 + (i % 7) - 3,
                "b": 100.0 + (9.0 if i == 50 else -9.0 if i == 51 else 0.0),
            },
        )
        for i in range(100)
    ]
    summary = _summary(days)
    assert session_extremes(summary, "b") == (51, 50)
    table = sessions_table(summary, ["a", "b"])
    dates = list(table.columns[0].cells)
    assert days[50].date in dates and days[51].date in dates
    assert table.row_count > MAX_SESSION_ROWS


# --- plots: legends off the data, a smooth frontier, no marker hidden ---------------------------


def _legends(fig: Any) -> list[Any]:
    found = list(fig.legends)
    for sub in fig.subfigs:
        found += sub.legends
    return found + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]


def _assert_legends_off_the_data(fig: Any) -> None:
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legends = _legends(fig)
    assert legends, "a figure without a legend"
    page = fig.bbox
    for legend in legends:
        box = legend.get_window_extent(renderer)
        for ax in fig.axes:  # twin axes included: the data area of every panel
            assert not box.overlaps(ax.get_window_extent(renderer)), ax.get_title()
        assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1


@pytest.mark.parametrize("agents", [["optimal"], ["optimal", "almgren-chriss", "best-discrete"]])
def test_legends_never_cover_data(flat: Any, u_shape: Any, agents: list[str]) -> None:
    for ev in (flat, u_shape):
        figures = [
            plots.execution_figure(ev, ["twap", *agents]),
            plots.savings_figure(ev, agents),
            plots.frontier_figure(ev, frontier(ev.params), ["twap", *agents]),
        ]
        for fig in figures:
            _assert_legends_off_the_data(fig)
            plt.close(fig)


def test_the_frontier_is_a_smooth_monotone_curve() -> None:
    curve = frontier(FLAT)
    assert len(curve) >= 100
    std = np.array([c.is_std for c in curve]) * FLAT.bps
    mean = np.array([c.is_mean for c in curve]) * FLAT.bps
    # more risk aversion: less risk, more expected cost (martingale prices, flat volume)
    assert np.all(np.diff(std) < 0) and np.all(np.diff(mean) >= -1e-9)
    # evenly spaced along the curve (each axis in units of its range), and it turns gently
    x, y = (std - std.min()) / np.ptp(std), (mean - mean.min()) / np.ptp(mean)
    steps = np.hypot(np.diff(x), np.diff(y))
    assert steps.max() < 1.05 * steps.mean() and steps.max() < 0.02
    heading = np.unwrap(np.arctan2(np.diff(y), np.diff(x)))
    assert np.degrees(np.abs(np.diff(heading))).max() < 5.0
    assert curve[0].risk_aversion == 0.0  # it starts at TWAP


def test_a_market_without_risk_gives_a_frontier_of_one_point_repeated() -> None:
    curve = frontier(FLAT.with_(sigma=0.0), points=7)
    assert len(curve) == 7 and all(c.is_std == 0.0 for c in curve)


def test_no_frontier_marker_hides_another(flat: Any) -> None:
    """The optimum and Almgren-Chriss are the same schedule here: both must stay visible."""
    names = ["twap", "optimal", "almgren-chriss", "best-discrete"]
    o = flat.outcomes
    np.testing.assert_allclose(o["optimal"].shortfall, o["almgren-chriss"].shortfall, rtol=1e-9)
    fig = plots.frontier_figure(flat, frontier(FLAT), names)
    full, zoom = fig.axes
    marks = [line for line in full.get_lines() if line.get_label() in names]
    assert [m.get_label() for m in marks] == names
    assert len({m.get_marker() for m in marks}) == len(names)  # a shape each
    assert all(m.get_markerfacecolor() == "none" for m in marks)  # hollow
    sizes, orders = [m.get_markersize() for m in marks], [m.get_zorder() for m in marks]
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == len(sizes)
    assert orders == sorted(orders)  # the larger underneath
    assert "grey" not in {m.get_color() for m in marks} and "C7" not in {
        m.get_color() for m in marks
    }
    bars = [c for c in zoom.containers if c.has_xerr and c.has_yerr]
    widths = [c.lines[2][0].get_linewidth()[0] for c in bars]
    assert widths == sorted(widths, reverse=True) and len(set(widths)) == len(widths)
    plt.close(fig)


def test_equal_savings_means_get_their_own_dash_and_width(flat: Any) -> None:
    fig = plots.savings_figure(flat, ["optimal", "almgren-chriss"])  # the same savings
    cost_ax = fig.axes[0]
    means = [line for line in cost_ax.get_lines() if line.get_label().startswith("_")]
    assert len(means) == 2
    assert means[0].get_linestyle() != means[1].get_linestyle()
    assert means[0].get_linewidth() > means[1].get_linewidth()
    plt.close(fig)


def test_mid_price_paths_that_coincide_stay_visible(flat: Any) -> None:
    fig = plots.execution_figure(flat, ["twap", "optimal", "almgren-chriss"])
    mid_ax = fig.axes[2]  # inventory, participation, mid price, then the volume twin
    assert "mid price" in mid_ax.get_title()
    widths = [line.get_linewidth() for line in mid_ax.get_lines()[:3]]
    assert widths == sorted(widths, reverse=True) and len(set(widths)) == 3
    plt.close(fig)


def test_plot_functions_still_write_their_png(flat: Any, tmp_path: Path) -> None:
    plots.plot_frontier(flat, frontier(FLAT), tmp_path / "f.png", ["twap", "optimal"])
    plots.plot_savings(flat, tmp_path / "s.png", ["optimal"])
    plots.plot_execution(flat, tmp_path / "e.png", ["twap", "optimal"])
    for name in ("f.png", "s.png", "e.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
    assert math.isfinite(flat.metrics()["twap"].is_.mean)
