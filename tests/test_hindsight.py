"""The hindsight schedule solves its convex QP exactly: KKT conditions and a brute-force check."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from rl_order_execution.exact.hindsight import (
    cost,
    hindsight_problem,
    solve_hindsight,
)


def _realised_cost(path, beta, n, Q, P0, alpha, lam) -> float:
    """C of a schedule on a known path, step by step as the market computes it."""
    q = Q - np.concatenate([[0.0], np.cumsum(n)])[:-1]
    S = path - alpha * (Q - q)
    px = S - beta * n
    return float(Q * P0 - n @ px + lam * (q @ q) / Q)


@pytest.mark.parametrize("seed", range(6))
def test_qp_matches_the_step_by_step_cost_and_satisfies_kkt(seed: int) -> None:
    rng = np.random.default_rng(seed)
    N, Q, P0, alpha, lam = 12, 1000.0, 100.0, 0.01, float(rng.choice([0.0, 0.1, 1.0]))
    path = P0 * np.exp(np.cumsum(np.concatenate([[0.0], rng.normal(0, 0.01, N - 1)])))
    beta = 0.05 * rng.uniform(0.5, 3.0, N)
    problem = hindsight_problem(path, beta, Q, P0, alpha, lam)
    n = solve_hindsight(problem)
    assert n.min() >= 0 and n.sum() == pytest.approx(Q)
    assert cost(problem, n) == pytest.approx(_realised_cost(path, beta, n, Q, P0, alpha, lam))
    # KKT: the gradient is the same (nu) on every traded step and not below it where n = 0
    grad = problem.A @ n + problem.b
    traded = n > 1e-9
    nu = grad[traded].mean()
    np.testing.assert_allclose(grad[traded], nu, atol=1e-8)
    assert (grad[~traded] >= nu - 1e-8).all()
    # no feasible point found by a general solver does better
    res = minimize(
        lambda x: cost(problem, x),
        np.full(N, Q / N),
        method="SLSQP",
        bounds=[(0, None)] * N,
        constraints={"type": "eq", "fun": lambda x: x.sum() - Q},
        options={"ftol": 1e-12, "maxiter": 500},
    )
    assert cost(problem, n) <= res.fun + 1e-6


def test_a_falling_path_is_sold_up_front() -> None:
    path = np.array([100.0, 90.0, 80.0])
    n = solve_hindsight(hindsight_problem(path, np.full(3, 0.001), 10.0, 100.0, 0.0, 0.0))
    np.testing.assert_allclose(n, [10.0, 0.0, 0.0], atol=1e-9)


@pytest.mark.parametrize("N", [5, 40, 150])
def test_the_fast_active_set_guess_agrees_with_the_finite_method(N: int) -> None:
    """Long windows (minute bars) are solved in a few linear solves; the answer is the same as
    the primal active-set method's, which the KKT check falls back to."""
    from rl_order_execution.exact.hindsight import _primal_active_set

    rng = np.random.default_rng(N)
    for _ in range(5):
        path = 100 * np.exp(np.cumsum(rng.normal(0, 0.003, N)))
        beta = 0.005 * rng.uniform(0.5, 8.0, N)
        problem = hindsight_problem(path, beta, 1000.0, 100.0, 0.001, float(rng.choice([0, 0.1])))
        fast, exact = solve_hindsight(problem), _primal_active_set(problem)
        assert fast.min() >= 0 and fast.sum() == pytest.approx(1000.0)
        np.testing.assert_allclose(fast, exact, atol=1e-7)
        assert cost(problem, fast) == pytest.approx(cost(problem, exact), abs=1e-9)
