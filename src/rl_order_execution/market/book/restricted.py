"""The best menu policies that see less than the optimum (docs/MODEL.md, "Limit-order book market",
"Facts"): the best policy of (k, q, s) blind to the imbalance, and the best fixed rule a(s, iota)
that ignores time and inventory. Both are evaluated exactly; finding them is a search.

- Blind to the imbalance: the policy's value is multilinear in its decision rules at the (k, q, s)
  cells (a path visits each cell at most once, since k increases), so a deterministic policy is
  optimal, and one step's best rule, given the rules of the other steps, is exact: the imbalance
  given (k, q, s) follows the occupancy of the earlier steps' rules, the value-to-go the later
  steps'. Backward sweeps of these best responses (each one raises the value or leaves it) from
  several starts end at person-by-person optima; the best of them is returned. This is a local
  search: no certificate of a global optimum.
- Fixed rule: exact, by branch and bound over the |s| |iota| cells: a partial rule's value when
  its free cells may pick any action at every (k, q) is an upper bound on every completion."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rl_order_execution.market.book.optimum import (
    BookSolution,
    action_values,
    evaluate_table,
    next_expectation,
    sold,
    solve_menu,
    start_value,
    terminal_values,
)
from rl_order_execution.market.book.params import (
    BookParams,
    BoolArray,
    FloatArray,
    IntArray,
    Limit,
    Market,
)

SWEEP_LIMIT = 200  # backward sweeps per start at most (each one improves, or the search stops)


def occupancy(p: BookParams, table: IntArray) -> FloatArray:
    """mu[k, g, s, i]: the law of (q_k, s_k, iota_k) under the menu policy `table` (broadcast to
    (N, G, S, L)) from the stationary start."""
    shape = (p.G, len(p.spreads), len(p.levels))
    full = np.broadcast_to(table, (p.N, *shape))
    mu = np.zeros((p.N, *shape))
    mu[0, 0] = np.outer(p.stationary_spread, p.stationary_imbalance)
    for k in range(p.N - 1):
        after = np.zeros(shape)
        for index, action in enumerate(p.actions):
            mass = np.where(full[k] == index, mu[k], 0.0)
            if isinstance(action, Limit):
                pf = p.fill_probability(action.depth)
                after += mass * (1 - pf)
                np.add.at(after, sold(p, p.clip)[1], mass * pf)
            elif isinstance(action, Market):
                np.add.at(after, sold(p, action.multiple * p.clip)[1], mass)
            else:
                after += mass
        mu[k + 1] = p.spread_transition.T @ after @ p.imbalance_transition
    return mu


@dataclass(frozen=True)
class BlindPolicy:
    """The best policy of (k, q, s) found: table (N, G, S) of menu indices, its exact solution
    (W over the full state) and the backward sweeps it took from its start."""

    table: IntArray
    solution: BookSolution
    sweeps: int


def _best_response_sweep(p: BookParams, table: IntArray) -> IntArray:
    """One backward sweep: at each step k the best rule of (q, s) given the occupancy that the
    rules of steps < k make and the values that those of steps > k make."""
    table = table.copy()
    mu = occupancy(p, table[..., None])
    W = terminal_values(p)
    for k in range(p.N - 2, -1, -1):
        values = action_values(p, next_expectation(p, W), p.actions)  # (A, G, S, L)
        score = (values * mu[k]).sum(axis=-1)  # (A, G, S): expected value at (k, g, s)
        current = np.take_along_axis(score, table[k][None], axis=0)[0]
        better = score.max(axis=0) > current + 1e-12 * (1 + np.abs(current))
        table[k] = np.where(better, score.argmax(axis=0), table[k])  # keep on ties
        W = np.take_along_axis(values, table[k][None, :, :, None], axis=0)[0]
    return table


def _improve(p: BookParams, table: IntArray) -> tuple[IntArray, int]:
    for sweep in range(1, SWEEP_LIMIT + 1):
        new = _best_response_sweep(p, table)
        if np.array_equal(new, table):
            return table, sweep
        table = new
    return table, SWEEP_LIMIT


def marginal_policy(p: BookParams) -> IntArray:
    """A start: the optimum of the market where the imbalance is redrawn from its stationary law
    every step (so that (k, q, s) is a Markov state), (N, G, S)."""
    pi = p.stationary_imbalance
    W = terminal_values(p)
    table = np.zeros((p.N, p.G, len(p.spreads)), dtype=np.int64)
    for k in range(p.N - 2, -1, -1):
        EW = np.broadcast_to((next_expectation(p, W) @ pi)[..., None], W.shape)
        values = action_values(p, EW, p.actions) @ pi  # (A, G, S)
        table[k] = values.argmax(axis=0)
        W = np.broadcast_to(values.max(axis=0)[..., None], W.shape)
    return table


def blind_starts(p: BookParams, optimum: BookSolution) -> list[IntArray]:
    """The starts of the search: the marginal policy, the optimum's policy at each imbalance
    level, and each menu action at every step."""
    shape = (p.N, p.G, len(p.spreads))
    starts = [marginal_policy(p)]
    starts += [np.array(optimum.policy[..., i], dtype=np.int64) for i in range(len(p.levels))]
    starts += [np.full(shape, a, dtype=np.int64) for a in range(p.n_actions)]
    return starts


def imbalance_blind(p: BookParams, starts: list[IntArray] | None = None) -> BlindPolicy:
    """The best policy of (k, q, s) found by best-response sweeps from each start (default
    `blind_starts`); ties between starts go to the first."""
    found: BlindPolicy | None = None
    for table in starts if starts is not None else blind_starts(p, solve_menu(p)):
        improved, sweeps = _improve(p, table)
        solution = evaluate_table(p, improved[..., None])
        if found is None or solution.expected_reward > found.solution.expected_reward + 1e-12:
            found = BlindPolicy(improved, solution, sweeps)
    if found is None:
        raise ValueError("imbalance_blind needs at least one start")
    return found


# --- the best fixed rule a(s, iota) -----------------------------------------------------------


@dataclass(frozen=True)
class FixedRule:
    """The best rule a(s, iota): rule (S, L) of menu indices, its exact solution, and how many
    partial rules the branch and bound bounded."""

    rule: IntArray
    solution: BookSolution
    nodes: int


def restricted_value(p: BookParams, allowed: BoolArray) -> float:
    """Expected reward ($) of the best policy that, in cell (s, iota), picks among the actions
    allowed[:, s, i] (A, S, L) at every (k, q): exact for a full rule, an upper bound for a
    partial one."""
    excluded = np.where(allowed, 0.0, -np.inf)[:, None]  # (A, 1, S, L)
    W = terminal_values(p)
    for _ in range(p.N - 1):
        W = (action_values(p, next_expectation(p, W), p.actions) + excluded).max(axis=0)
        W[-1] = 0.0  # q = 0: nothing left, whatever the rule
    return start_value(p, W)


def _allowed_by(p: BookParams, rule: IntArray) -> BoolArray:
    allowed = np.zeros((p.n_actions, *rule.shape), dtype=bool)
    np.put_along_axis(allowed, rule[None], True, axis=0)
    return allowed


def _coordinate_ascent(p: BookParams, rule: IntArray, cells: list[tuple[int, int]]) -> IntArray:
    """A good incumbent: change one cell at a time while that helps."""
    best = restricted_value(p, _allowed_by(p, rule))
    improved = True
    while improved:
        improved = False
        for s, i in cells:
            for a in range(p.n_actions):
                trial = rule.copy()
                trial[s, i] = a
                value = restricted_value(p, _allowed_by(p, trial))
                if value > best + 1e-12 * (1 + abs(best)):
                    rule, best, improved = trial, value, True
    return rule


def best_fixed_rule(p: BookParams) -> FixedRule:
    """The best rule a(s, iota) (ties: the first found), exactly, by depth-first branch and
    bound over the cells in order of stationary probability, from a coordinate-ascent
    incumbent."""
    weight = np.outer(p.stationary_spread, p.stationary_imbalance)
    order = np.argsort(-weight, axis=None, kind="stable")
    cells = [(int(c) // weight.shape[1], int(c) % weight.shape[1]) for c in order]
    start = np.asarray(solve_menu(p).policy[0, 0], dtype=np.int64)  # the optimum's first rule
    incumbent = _coordinate_ascent(p, start, cells)
    best_value, best_rule = restricted_value(p, _allowed_by(p, incumbent)), incumbent
    nodes = 0

    def search(depth: int, allowed: BoolArray) -> None:
        nonlocal nodes, best_value, best_rule
        s, i = cells[depth]
        children = []
        for a in range(p.n_actions):
            child = allowed.copy()
            child[:, s, i] = False
            child[a, s, i] = True
            nodes += 1
            children.append((restricted_value(p, child), a, child))
        for bound, _, child in sorted(children, key=lambda c: -c[0]):
            if bound <= best_value + 1e-12 * (1 + abs(best_value)):
                continue  # no completion beats the incumbent
            if depth == len(cells) - 1:
                best_value, best_rule = bound, child.argmax(axis=0)
            else:
                search(depth + 1, child)

    search(0, np.ones((p.n_actions, *weight.shape), dtype=bool))
    rule = np.asarray(best_rule, dtype=np.int64)
    return FixedRule(rule, evaluate_table(p, rule[None, None]), nodes)
