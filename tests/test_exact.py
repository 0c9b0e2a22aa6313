"""Exact benchmarks against brute force and Monte Carlo."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.optimize import minimize, minimize_scalar

from rl_order_execution import exact as ex
from rl_order_execution import strategies as strat
from rl_order_execution.evaluation import StrategyMetrics, Trajectories, rollout, savings_stats
from rl_order_execution.exact import discrete
from rl_order_execution.market import FloatArray, MarketParams, Shocks, shock_matrix
from rl_order_execution.strategies import TWAP, Strategy

DEFAULT = MarketParams()
DRIFT = MarketParams(mu=-0.0005)
OU = MarketParams(price_model="ou", sigma=0.004)
EPISODES = 20_000


def _mc(p: MarketParams, strategy: Strategy, seed: int = 7) -> Trajectories:
    return rollout(p, strategy, shock_matrix(p, seed, EPISODES))


# --- closed forms ------------------------------------------------------------------------------


def test_defaults_match_model_md() -> None:
    assert strat.exact_cost(DEFAULT, "twap").e_is == pytest.approx(5900.0, abs=0.01)
    assert strat.exact_cost(DEFAULT, "twap").e_c == pytest.approx(7617.0, abs=0.01)
    assert strat.exact_cost(DEFAULT, "almgren-chriss").e_c == pytest.approx(7210.33, abs=0.01)
    assert ex.optimal_cost(DEFAULT) == pytest.approx(7210.33, abs=0.01)


def test_best_discrete_captures_97_1_percent() -> None:
    policy = ex.best_discrete_policy(DEFAULT)
    assert policy.method == "homogeneous"
    assert ex.capture_share(DEFAULT, policy.expected_cost) == pytest.approx(0.971, abs=0.001)


def test_ac_schedule_endpoints_and_tiny_lambda() -> None:
    for lam in (0.0, 1e-300, 1e-12, 1e3):
        q = ex.almgren_chriss_schedule(DEFAULT.with_(lam=lam))
        assert np.all(np.isfinite(q))
        assert q[0] == pytest.approx(DEFAULT.Q) and q[-1] == pytest.approx(0.0, abs=1e-9)
    twap = ex.almgren_chriss_schedule(DEFAULT.with_(lam=0.0))
    np.testing.assert_allclose(ex.almgren_chriss_schedule(DEFAULT.with_(lam=1e-12)), twap)


def test_ac_schedule_is_the_numerical_minimum() -> None:
    p = MarketParams(N=6, lam=0.5)

    def expected_cost(u: FloatArray) -> float:
        """E[C] / 1000 with trades n_k = u_k Q / N (scaled for the optimiser), last one forced."""
        x = u * p.Q / p.N
        return ex.schedule_moments(p, np.append(x, p.Q - x.sum())).e_c / 1e3

    res = minimize(expected_cost, np.ones(p.N - 1), method="BFGS", options={"gtol": 1e-9})
    ac = ex.trades_from_inventory(ex.almgren_chriss_schedule(p))
    np.testing.assert_allclose(res.x * p.Q / p.N, ac[:-1], atol=1e-3)
    assert ex.optimal_cost(p) == pytest.approx(1e3 * res.fun, rel=1e-10)


def test_martingale_moments_match_the_model_md_identity() -> None:
    n = ex.linear_schedule(DEFAULT, front=True)
    q = ex.inventory_path(DEFAULT, n)[:-1]
    eta = DEFAULT.beta - DEFAULT.alpha / 2
    expected = DEFAULT.alpha * DEFAULT.Q**2 / 2 + eta * n @ n + DEFAULT.lam * q @ q / DEFAULT.Q
    assert ex.schedule_moments(DEFAULT, n).e_c == pytest.approx(expected, rel=1e-12)


def test_efficient_frontier_trades_cost_for_risk() -> None:
    front = ex.efficient_frontier(DEFAULT, [0.0, 0.1, 1.0])
    e_is = [f[1] for f in front]
    std = [f[2] for f in front]
    assert e_is == sorted(e_is) and std == sorted(std, reverse=True)
    assert e_is[0] == pytest.approx(5900.0)


def test_drift_zero_lambda_zero_everything_is_twap() -> None:
    p = DEFAULT.with_(lam=0.0)
    twap = ex.twap_schedule(p)
    for name in ("almgren-chriss", "optimal", "best-discrete"):
        np.testing.assert_allclose(strat.reference_schedule(p, name), twap, rtol=1e-9, err_msg=name)
    np.testing.assert_allclose(
        ex.best_discrete_policy(p.with_(rate_basis="initial")).trades, twap, rtol=1e-9
    )


# --- the Riccati policy against brute-force dynamic programming ---------------------------------

NODES, WEIGHTS = np.polynomial.hermite_e.hermegauss(16)
WEIGHTS = WEIGHTS / WEIGHTS.sum()


def _last(p: MarketParams, q: float, S: FloatArray) -> FloatArray:
    """Cost of the forced last step, selling q at mid prices S."""
    out: FloatArray = q * (p.P0 - S + p.beta * q) + p.lam * q * q / p.Q
    return out


def _brute(p: MarketParams, k: int, q: float, S: float, theta: float) -> tuple[float, float]:
    """(min expected cost-to-go, argmin trade) by quadrature and scalar minimisation."""

    def total(n: float) -> float:
        full = [np.full(NODES.size, x) for x in (S, theta, n)]
        S1, th1 = p.prices.next_price(p, full[0], full[1], full[2], Shocks(NODES))
        if k + 1 == p.N - 1:
            cont = _last(p, q - n, S1)
        else:
            cont = np.array(
                [_brute(p, k + 1, q - n, a, b)[0] for a, b in zip(S1, th1, strict=True)]
            )
        return n * (p.P0 - S + p.beta * n) + p.lam * q * q / p.Q + float(WEIGHTS @ cont)

    res = minimize_scalar(total, bracket=(0.0, q / (p.N - k)), options={"xtol": 1e-10})
    return float(res.fun), float(res.x)


@pytest.mark.parametrize(
    "p",
    [
        MarketParams(N=3, Q=100.0, sigma=0.02, mu=0.01, lam=0.3),
        MarketParams(N=3, Q=100.0, sigma=0.02, lam=0.3, price_model="ou", kappa=0.5),
    ],
    ids=["gbm-drift", "ou"],
)
def test_riccati_equals_brute_force_dp(p: MarketParams) -> None:
    sol = ex.solve_lq(p)
    for k, q, S in itertools.product((0, 1), (30.0, 100.0), (97.0, 104.0)):
        theta = p.P0 - p.alpha * (p.Q - q)
        value, n = _brute(p, k, q, S, theta)
        assert sol.gains[k] @ [q, S, 1.0] == pytest.approx(n, abs=1e-4)
        assert sol.value(k, q, S) == pytest.approx(value, rel=1e-9, abs=1e-7)
    assert not sol.is_deterministic


# --- Monte Carlo ---------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [DRIFT, OU], ids=["gbm-drift", "ou"])
@pytest.mark.parametrize("name", ["twap", "almgren-chriss", "front-loaded"])
def test_monte_carlo_agrees_with_closed_form(p: MarketParams, name: str) -> None:
    m = ex.schedule_moments(p, strat.reference_schedule(p, name))
    trades = strat.reference_schedule(p, name)
    strategy: Strategy = TWAP() if name == "twap" else strat.ScheduleStrategy(name, trades)
    tr = _mc(p, strategy)
    is_, c = tr.shortfall(p), tr.cost(p)
    se = is_.std(ddof=1) / math.sqrt(EPISODES)
    assert abs(is_.mean() - m.e_is) < 4 * se
    assert abs(c.mean() - m.e_c) < 4 * c.std(ddof=1) / math.sqrt(EPISODES)
    assert m.std_is is not None
    assert abs(is_.std(ddof=1) - m.std_is) < 4 * m.std_is / math.sqrt(2 * (EPISODES - 1))


def test_reference_strategies_follow_their_schedules() -> None:
    shocks = shock_matrix(DEFAULT, 3, 4)
    names = [st.name for st in strat.reference_strategies(DEFAULT)]
    assert names == [
        "twap",
        "almgren-chriss",
        "optimal",
        "best-discrete",
        "pov",
        "front-loaded",
        "back-loaded",
    ]
    for st in strat.reference_strategies(DEFAULT):
        n = rollout(DEFAULT, st, shocks).n
        np.testing.assert_allclose(n, np.tile(strat.reference_schedule(DEFAULT, st.name), (4, 1)))
    assert "best-discrete" not in [st.name for st in strat.reference_strategies(DRIFT)]


def test_optimal_beats_twap_on_ou_expected_shortfall() -> None:
    p = OU.with_(lam=0.0)
    optimal = strat.OptimalStrategy()
    is_opt = _mc(p, optimal).shortfall(p)
    is_twap = _mc(p, TWAP()).shortfall(p)
    stats = savings_stats(is_twap, is_opt, p)
    assert stats.ci95_low > 0
    assert 0 < optimal.decisions <= EPISODES * (p.N - 1)
    assert 0.0 < optimal.clip_share < 0.5


def test_optimal_monte_carlo_matches_riccati_value_without_clipping() -> None:
    optimal = strat.OptimalStrategy()
    c = _mc(DRIFT, optimal).cost(DRIFT)
    assert optimal.clip_share == 0.0
    assert abs(c.mean() - ex.optimal_cost(DRIFT)) < 4 * c.std(ddof=1) / math.sqrt(EPISODES)


# --- best discrete policy ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [{}, {"rate_basis": "initial"}, {"lot_size": 5.0}, {"multipliers": (0.0, 0.7, 1.3, 2.9)}],
    ids=["remaining", "initial", "lots", "odd-multipliers"],
)
def test_best_discrete_equals_enumeration(changes: dict[str, object]) -> None:
    p = MarketParams(N=5, **changes)  # type: ignore[arg-type]
    best = min(
        ex.schedule_moments(p, _trades_of(p, seq)).e_c
        for seq in itertools.product(range(p.n_actions), repeat=p.N - 1)
    )
    assert ex.best_discrete_policy(p).expected_cost == pytest.approx(best, rel=1e-12)


def _trades_of(p: MarketParams, actions: tuple[int, ...]) -> FloatArray:
    n, q = np.zeros(p.N), np.array([p.Q])
    for k, a in enumerate((*actions, 0)):
        n[k] = ex.action_trades(p, k, q, a)[0]
        q = q - n[k]
    return n


def test_best_discrete_grid_fallback_is_close(monkeypatch: pytest.MonkeyPatch) -> None:
    p = DEFAULT.with_(rate_basis="initial", N=20)
    exact = ex.best_discrete_policy(p)
    monkeypatch.setattr(discrete, "TREE_LIMIT", 1)
    approx = ex.best_discrete_policy(p)
    assert (exact.method, approx.method) == ("tree", "grid")
    assert approx.expected_cost == pytest.approx(exact.expected_cost, rel=1e-4)
    assert ex.optimal_cost(p) <= exact.expected_cost


def test_best_discrete_rejects_non_martingale() -> None:
    with pytest.raises(ValueError):
        ex.best_discrete_policy(DRIFT)
    with pytest.raises(ValueError):
        strat.reference_schedule(OU, "optimal")


def test_snapped_optimum_trades_on_the_grid_and_never_beats_best_discrete() -> None:
    from rl_order_execution.evaluation import rollout
    from rl_order_execution.exact import best_discrete_policy
    from rl_order_execution.market import MarketParams, shock_matrix
    from rl_order_execution.strategies import SnappedOptimalStrategy

    p = MarketParams(sigma=0.0)  # martingale and noiseless: one deterministic path
    tr = rollout(p, SnappedOptimalStrategy(), shock_matrix(p, 0, 1))
    rates = tr.q[0, :-2] / (p.N - np.arange(p.N - 1))
    multipliers = tr.n[0, :-1] / rates
    assert np.isin(np.round(multipliers, 9), p.multipliers).all()
    assert tr.cost(p)[0] >= best_discrete_policy(p).expected_cost - 1e-6


# --- degenerate and unusual markets: the self-check and the report stay meaningful ---------------


def _report_metrics(
    p: MarketParams, episodes: int = 2_000
) -> tuple[dict[str, StrategyMetrics], list[str]]:
    from rl_order_execution.evaluation import evaluate, optimum_gap

    ev = evaluate(p, strat.reference_strategies(p), shock_matrix(p, 3, episodes, True), True)
    return ev.metrics(exact_gap=optimum_gap(p)), ev.beats_optimum()


def test_when_twap_is_optimal_no_gap_share_and_no_false_alarm() -> None:
    # lambda = 0, mu = 0: the optimum is TWAP, the exact gap is float rounding (~1e-11 $)
    metrics, suspicious = _report_metrics(DEFAULT.with_(lam=0.0))
    assert all(m.gap_captured is None for m in metrics.values())
    assert suspicious == []


@pytest.mark.parametrize(
    "p",
    [
        DEFAULT.with_(sigma=0.0),  # deterministic: every SE is float rounding
        OU.with_(sigma=0.0),
        DEFAULT.with_(lot_size=7.0),  # lots: closed forms of the executed (rounded) schedules
        DEFAULT.with_(lot_size=30.0, rate_basis="initial"),
        DEFAULT.with_(sigma=0.2),  # heavy-tailed IS: the SE of the std uses the fourth moment
    ],
    ids=["sigma0", "ou-sigma0", "lots", "lots-initial", "very-volatile"],
)
def test_self_check_passes_on_unusual_markets(p: MarketParams) -> None:
    from rl_order_execution.evaluation import run_checks

    checks, _ = run_checks(p, shock_matrix(p, 11, 10_000))
    assert [c.name for c in checks if not c.ok] == []
    metrics, suspicious = _report_metrics(p)
    assert suspicious == []
    if p.lot_size:  # measured against the continuous optimum, which no lot-rounded plan beats
        share = metrics["best-discrete"].gap_captured
        assert share is not None and share.ci95_low < 1.0


def test_lots_change_the_exact_twap_cost_to_the_executed_one() -> None:
    from rl_order_execution.evaluation import executed_schedule, optimum_gap

    p = DEFAULT.with_(lot_size=7.0)
    trades = executed_schedule(p, TWAP())
    assert trades is not None
    np.testing.assert_allclose(trades[:-1] % 7.0, 0.0, atol=1e-9)  # whole lots until the last step
    assert trades.sum() == pytest.approx(p.Q)
    executed_twap = ex.schedule_moments(p, trades).e_c
    assert executed_twap > ex.schedule_moments(p, ex.twap_schedule(p)).e_c  # rounding costs
    assert optimum_gap(p) == pytest.approx(executed_twap - ex.optimal_cost(p))
    optimum = strat.OptimalStrategy()
    assert executed_schedule(OU, optimum) is None  # it looks at the price
    assert (optimum.clipped, optimum.decisions) == (0, 0)  # a copy ran: its counters are untouched


def test_std_error_of_std_matches_the_normal_formula_and_grows_with_tails() -> None:
    from rl_order_execution.evaluation import std_error_of_std

    rng = np.random.default_rng(0)
    normal = rng.standard_normal(100_000)
    assert std_error_of_std(normal) == pytest.approx(normal.std(ddof=1) / math.sqrt(2e5), rel=0.02)
    heavy = rng.standard_t(5, 100_000)
    assert std_error_of_std(heavy) > 1.5 * heavy.std(ddof=1) / math.sqrt(2e5)


def test_tail_statistics_of_the_savings_by_hand() -> None:
    from rl_order_execution.evaluation import savings_stats
    from rl_order_execution.evaluation.statistics import tail_mean

    baseline = np.zeros(200)
    values = -np.arange(200, dtype=np.float64)  # savings s = 0, 1, ..., 199
    s = savings_stats(baseline, values, DEFAULT)
    assert s.var_95 == pytest.approx(np.percentile(np.arange(200), 5))
    assert s.var_99 == pytest.approx(1.99)
    assert s.cvar_95 == pytest.approx(np.arange(10).mean())  # the worst 5 %: 10 episodes
    assert s.cvar_95_bps == pytest.approx(4.5 * DEFAULT.bps)
    assert tail_mean(np.array([3.0, 1.0, 2.0]), 0.01) == 1.0  # at least one value
