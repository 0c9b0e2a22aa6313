"""What is reported on the book market (docs/MODEL.md, "Limit-order book market" and "What is
reported"): per strategy the usual cost statistics and paired savings vs TWAP, the share of each
exact optimum's advantage over TWAP (menu and continuous), the limit orders' fill rate and the
passive share; and the exact expected costs of the references."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from rl_order_execution.evaluation.statistics import (
    CostSummary,
    ExactValues,
    GapCaptured,
    Savings,
    Spread,
    gap_captured,
    json_fields,
    ratio_captured,
    savings_stats,
    spread,
    summary,
)
from rl_order_execution.market.book import (
    BookEvaluation,
    BookOutcomes,
    BookParams,
    BookPolicy,
    BookSolution,
    ContinuousTable,
    Limit,
    MenuTable,
    Passive,
    Twap,
    evaluate_table,
    solve_continuous,
    solve_menu,
    twap_expected_cost,
    twap_expected_shortfall,
)
from rl_order_execution.market.book.dynamics import Menu

TWAP, PASSIVE, OPTIMAL, OPTIMAL_CONTINUOUS = "twap", "passive", "optimal", "optimal-continuous"
OPTIMA = {"menu": OPTIMAL, "continuous": OPTIMAL_CONTINUOUS}  # action set -> its exact optimum


@dataclass(frozen=True)
class BookReferences:
    """The exact solutions a book run reports against, solved once."""

    menu: BookSolution
    continuous: BookSolution
    exact: dict[str, ExactValues]  # per reference strategy: E[IS], E[C] ($) where known

    @classmethod
    def solve(cls, p: BookParams) -> BookReferences:
        menu, continuous = solve_menu(p), solve_continuous(p)
        return cls(menu, continuous, exact_values(p, menu, continuous))

    def policies(self, p: BookParams) -> list[BookPolicy]:
        """TWAP, passive, the menu optimum and the continuous one, by their report names."""
        return [
            Twap(TWAP),
            Passive(PASSIVE),
            MenuTable(OPTIMAL, np.asarray(self.menu.policy, dtype=np.int64), Menu.of(p)),
            ContinuousTable(OPTIMAL_CONTINUOUS, np.asarray(self.continuous.policy)),
        ]

    def gap_bps(self, p: BookParams, action_set: str) -> float:
        """E[C_TWAP] - E[C_opt] of the optimum of an action set, bps."""
        optimum = self.menu if action_set == "menu" else self.continuous
        return (twap_expected_cost(p) - optimum.expected_cost) * p.bps


def exact_values(
    p: BookParams, menu: BookSolution, continuous: BookSolution
) -> dict[str, ExactValues]:
    """E[IS] and E[C] in $: TWAP's closed forms; passive's and the menu optimum's by exact
    policy evaluation (E[IS] with the penalty set to 0); the continuous optimum's E[C] only."""
    neutral = replace(p, risk_aversion=0.0)
    passive = [Limit(0.0)]
    table = np.zeros((1, 1, 1, 1), dtype=np.int64)
    return {
        TWAP: ExactValues(twap_expected_shortfall(p), None, twap_expected_cost(p)),
        PASSIVE: ExactValues(
            -evaluate_table(neutral, table, passive).expected_reward,
            None,
            evaluate_table(p, table, passive).expected_cost,
        ),
        OPTIMAL: ExactValues(
            -evaluate_table(neutral, menu.policy).expected_reward, None, menu.expected_cost
        ),
        OPTIMAL_CONTINUOUS: ExactValues(None, None, continuous.expected_cost),
    }


@dataclass(frozen=True)
class AdvantageShare:
    """(mean C_TWAP - mean C) / (mean C_TWAP - mean C_opt) on the shared test episodes, with a
    paired delta-method 95 % interval; gap_bps is the denominator on these episodes and
    exact_gap_bps its exact expectation (bps)."""

    value: float
    ci95_low: float
    ci95_high: float
    gap_bps: float
    exact_gap_bps: float

    def to_json(self) -> dict[str, float]:
        return json_fields(self)


def advantage_share(
    twap: BookOutcomes, outcome: BookOutcomes, optimum: BookOutcomes, p: BookParams, exact: float
) -> AdvantageShare | None:
    """The share of an optimum's advantage over TWAP a strategy takes; None where the optimum
    is not better than TWAP on these episodes."""
    share = ratio_captured(twap.cost, outcome.cost, optimum.cost)
    if share is None:
        return None
    return AdvantageShare(
        share.value, share.ci95_low, share.ci95_high, share.exact_gap * p.bps, exact
    )


@dataclass(frozen=True)
class BookStrategyMetrics:
    """One strategy's entry of the book's metrics.json."""

    is_: CostSummary  # implementation shortfall
    cost: CostSummary  # risk-adjusted cost
    savings_is: Savings  # paired vs TWAP
    savings_cost: Savings
    share_menu: AdvantageShare | None  # of the menu optimum's advantage over TWAP
    share_continuous: AdvantageShare | None  # of the continuous optimum's
    fill_rate: float | None  # limit orders filled / posted, pooled (None: none posted)
    limit_posted: float  # limit orders posted per episode (mean)
    limit_filled: float  # limit orders filled per episode (mean)
    passive_share: Spread  # shares sold by limit orders / Q, per episode
    # the simulated market's gap_captured, of the optimum of the strategy's own action set: its
    # advantage_share of that set, with the exact E[C_TWAP] - E[C_opt] ($) as exact_gap
    gap_captured: GapCaptured | None = None
    exact: ExactValues | None = None  # the references' exact E[IS], E[C]

    def share(self, action_set: str) -> AdvantageShare | None:
        return self.share_menu if action_set == "menu" else self.share_continuous

    def to_json(self) -> dict[str, object]:
        def opt(x: AdvantageShare | None) -> dict[str, float] | None:
            return None if x is None else x.to_json()

        out: dict[str, object] = {**self.is_.to_json("is"), **self.cost.to_json("cost")}
        out["savings_is"] = self.savings_is.to_json()
        out["savings_cost"] = self.savings_cost.to_json()
        out["advantage_share"] = {
            "menu": opt(self.share_menu),
            "continuous": opt(self.share_continuous),
        }
        out["fill_rate"] = self.fill_rate
        out["limit_posted_mean"] = self.limit_posted
        out["limit_filled_mean"] = self.limit_filled
        out["passive_share"] = self.passive_share.to_json()
        out["gap_captured"] = None if self.gap_captured is None else self.gap_captured.to_json()
        if self.exact is not None:
            out |= self.exact.to_json()
        return out


def book_metrics(
    evaluation: BookEvaluation,
    references: BookReferences,
    action_sets: Mapping[str, str] | None = None,
) -> dict[str, BookStrategyMetrics]:
    """Every strategy's statistics on the shared test episodes (TWAP, the optima and the agents
    among them); `action_sets` names each agent's ("menu" or "continuous"; the references act on
    the menu, the continuous optimum on its own set)."""
    p, outcomes = evaluation.params, evaluation.outcomes
    own = {OPTIMAL_CONTINUOUS: "continuous", **(action_sets or {})}
    twap = outcomes[TWAP]
    gaps = {s: references.gap_bps(p, s) for s in OPTIMA}

    def share(o: BookOutcomes, action_set: str) -> AdvantageShare | None:
        return advantage_share(twap, o, outcomes[OPTIMA[action_set]], p, gaps[action_set])

    out = {}
    for name, o in outcomes.items():
        rate = o.fill_rate
        out[name] = BookStrategyMetrics(
            is_=summary(o.shortfall, p),
            cost=summary(o.cost, p),
            savings_is=savings_stats(twap.shortfall, o.shortfall, p),
            savings_cost=savings_stats(twap.cost, o.cost, p),
            share_menu=share(o, "menu"),
            share_continuous=share(o, "continuous"),
            fill_rate=None if math.isnan(rate) else rate,
            limit_posted=float(o.posted.mean()),
            limit_filled=float(o.filled.mean()),
            passive_share=spread(o.passive_share),
            gap_captured=gap_captured(
                twap.cost,
                o.cost,
                gaps[own.get(name, "menu")] / p.bps,
                floor=1e-6 / p.bps,
                optimum=outcomes[OPTIMA[own.get(name, "menu")]].cost,
            ),
            exact=references.exact.get(name),
        )
    return out
