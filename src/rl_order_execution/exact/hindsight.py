"""The hindsight schedule of a replayed window: the trades n_k >= 0 with sum n_k = Q that minimise
the window's realised risk-adjusted cost, its price path known in advance.

With S_k = H_k - alpha (Q - q_k) (H: the replayed path) and P~_k = S_k - beta_k n_k, the cost is
    C(n) = Q P0 - H'n + alpha Q^2 / 2 + sum_k (beta_k - alpha/2) n_k^2 + lam / Q sum_k q_k^2,
q_k = Q - sum_{j<k} n_j: a convex quadratic program, solved exactly by a primal active-set method
(finite, each step one linear solve). A look-ahead bound, never a strategy a trader could run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

FloatArray = np.ndarray[Any, np.dtype[np.float64]]


@dataclass(frozen=True)
class HindsightProblem:
    """The quadratic program 0.5 n'A n + b'n + c over {n >= 0, sum n = Q}."""

    A: FloatArray
    b: FloatArray
    c: float
    Q: float


def hindsight_problem(
    path: FloatArray, beta: FloatArray, Q: float, P0: float, alpha: float, lam: float
) -> HindsightProblem:
    """The realised cost of one window (path H_k and per-step beta_k, k < N) as a QP in n."""
    N = len(path)
    L = np.tril(np.ones((N, N)), k=-1)  # q = Q - L n
    A = 2 * np.diag(np.asarray(beta, dtype=np.float64) - alpha / 2) + 2 * lam / Q * L.T @ L
    b = -np.asarray(path, dtype=np.float64) - 2 * lam * L.T @ np.ones(N)
    c = Q * P0 + alpha * Q * Q / 2 + lam * Q * N
    return HindsightProblem(A, b, c, Q)


def cost(problem: HindsightProblem, n: FloatArray) -> float:
    return float(0.5 * n @ problem.A @ n + problem.b @ n + problem.c)


def _equality_solve(
    A: FloatArray, b: FloatArray, free: np.ndarray, Q: float
) -> tuple[FloatArray, float]:
    """Minimise over the free coordinates (the others 0) subject to sum n = Q: (n, multiplier)."""
    idx = np.flatnonzero(free)
    k = idx.size
    kkt = np.zeros((k + 1, k + 1))
    kkt[:k, :k] = A[np.ix_(idx, idx)]
    kkt[:k, k] = kkt[k, :k] = -1.0
    rhs = np.concatenate([-b[idx], [-Q]])
    sol = np.linalg.solve(kkt, rhs)
    n = np.zeros(len(b))
    n[idx] = sol[:k]
    return n, float(sol[k])


def _kkt_holds(problem: HindsightProblem, n: FloatArray, nu: float, scale: float) -> bool:
    """n >= 0 and the multipliers of the coordinates at 0 are >= 0 (n is then the minimiser)."""
    if n.min() < -scale:
        return False
    mu = problem.A @ n + problem.b - nu
    fixed = n <= 0
    return not fixed.any() or float(mu[fixed].min()) >= -scale * max(1.0, np.abs(problem.b).max())


def solve_hindsight(problem: HindsightProblem, tol: float = 1e-12) -> FloatArray:
    """The exact minimiser. A primal-dual active-set method (Hintermueller, Ito & Kunisch 2002)
    usually finds the coordinates at 0 in a few linear solves; the answer is accepted only where
    the KKT conditions hold, and otherwise the primal active-set method (finite) decides."""
    A, b, Q = problem.A, problem.b, problem.Q
    scale = tol * max(Q, 1.0)
    free = np.ones(len(b), dtype=np.bool_)
    for _ in range(50):
        target, nu = _equality_solve(A, b, free, Q)
        mu = A @ target + b - nu
        guess = np.where(free, target > scale, mu < 0)
        if np.array_equal(guess, free) or not guess.any():
            break
        free = guess
    n = np.where(free, np.maximum(target, 0.0), 0.0)
    if free.any() and _kkt_holds(problem, n, nu, scale):
        return n
    return _primal_active_set(problem, tol)


def _primal_active_set(problem: HindsightProblem, tol: float = 1e-12) -> FloatArray:
    """The exact minimiser: primal active set from TWAP (feasible, every coordinate free)."""
    A, b, Q = problem.A, problem.b, problem.Q
    N = len(b)
    n = np.full(N, Q / N)
    free = np.ones(N, dtype=np.bool_)
    scale = tol * max(Q, 1.0)
    for _ in range(50 * N + 50):  # each pass fixes or frees one coordinate; cycling is not possible
        target, nu = _equality_solve(A, b, free, Q)
        step = target - n
        if np.all(target[free] >= -scale):
            n = np.where(free, np.maximum(target, 0.0), 0.0)
            mu = A @ n + b - nu  # KKT multipliers of n_i >= 0 for the fixed coordinates
            fixed = np.flatnonzero(~free)
            if fixed.size == 0 or mu[fixed].min() >= -scale * max(1.0, np.abs(b).max()):
                return n
            free[fixed[np.argmin(mu[fixed])]] = True
            continue
        shrinking = free & (step < 0)
        ratios = np.where(shrinking, n / np.where(shrinking, -step, 1.0), np.inf)
        block = int(np.argmin(ratios))
        n = n + min(float(ratios[block]), 1.0) * step
        n[block] = 0.0
        free[block] = False
    raise RuntimeError("the hindsight QP did not converge")  # pragma: no cover - finite method
