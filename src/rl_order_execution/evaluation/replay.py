"""What a replayed run adds to the report: the splits, the share of the hindsight schedule's
advantage each strategy captures, and the per-session costs that show which days an agent won
and lost."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from rl_order_execution.evaluation.rollout import Evaluation
from rl_order_execution.evaluation.statistics import StrategyMetrics, ratio_captured
from rl_order_execution.market import MarketParams
from rl_order_execution.market.replay import ReplayMarket, SplitSummary
from rl_order_execution.strategies.replay import CALIBRATED, HINDSIGHT


@dataclass(frozen=True)
class SessionCosts:
    """One test session: its windows and each strategy's mean risk-adjusted cost (bps)."""

    date: str
    windows: int
    cost_bps: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        return {"date": self.date, "windows": self.windows, "cost_bps": self.cost_bps}


@dataclass(frozen=True)
class ImpactSummary:
    """The impact the replayed market ran with (docs/MODEL.md, "Historical replay"): its units, the
    training sessions' daily volatility, relative impact's eta and gamma (None in absolute
    units), alpha and lambda in $, and TWAP's temporary cost at the mean bar."""

    units: str
    sigma_day: float
    eta: float | None
    gamma: float | None
    alpha: float
    lam: float
    twap_temporary_cost_bps: float

    def to_json(self) -> dict[str, Any]:
        return {
            "impact": self.units,
            "sigma_day": self.sigma_day,
            "eta": self.eta,
            "gamma": self.gamma,
            "alpha": self.alpha,
            "lambda": self.lam,
            "twap_temporary_cost_bps": self.twap_temporary_cost_bps,
        }


@dataclass(frozen=True)
class ReplaySummary:
    """metrics.json's `replay` entry: the data, its calibration and impact, the splits, the
    sessions."""

    source: str
    sigma: float
    mean_volume: float | None
    stride: int
    impact: ImpactSummary
    splits: list[SplitSummary]
    sessions: list[SessionCosts]

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "sigma": self.sigma,
            "mean_volume": self.mean_volume,
            "stride": self.stride,
            **self.impact.to_json(),
            "splits": [s.to_json() for s in self.splits],
            "sessions": [s.to_json() for s in self.sessions],
        }


def with_hindsight(
    evaluation: Evaluation, metrics: dict[str, StrategyMetrics], baseline: str = "twap"
) -> dict[str, StrategyMetrics]:
    """Each strategy's share of the hindsight schedule's advantage over the baseline (not the
    hindsight schedule's own: it is the bound)."""
    if HINDSIGHT not in evaluation.outcomes:
        return metrics
    base = evaluation.outcomes[baseline].cost
    bound = evaluation.outcomes[HINDSIGHT].cost
    return {
        name: m
        if name == HINDSIGHT
        else replace(m, hindsight=ratio_captured(base, evaluation.outcomes[name].cost, bound))
        for name, m in metrics.items()
    }


def session_costs(evaluation: Evaluation, market: ReplayMarket) -> list[SessionCosts]:
    """Mean cost (bps) per test session and strategy, in time order."""
    p = evaluation.params
    session = market.test.session  # windows run in time order, a session's windows together
    count = np.bincount(session)
    means = {
        name: np.bincount(session, weights=o.cost) / np.maximum(count, 1) * p.bps
        for name, o in evaluation.outcomes.items()
    }
    dates = market.splits[2].sessions
    return [
        SessionCosts(
            dates[i].date.isoformat(), int(count[i]), {n: float(m[i]) for n, m in means.items()}
        )
        for i in np.flatnonzero(count)
    ]


def impact_summary(p: MarketParams, market: ReplayMarket) -> ImpactSummary:
    i = market.impact
    return ImpactSummary(
        units="relative" if i.relative else "absolute",
        sigma_day=i.sigma_day,
        eta=i.eta,
        gamma=i.gamma,
        alpha=p.alpha,
        lam=p.lam,
        twap_temporary_cost_bps=i.twap_temporary_cost_bps(p.Q, p.N, p.P0),
    )


def replay_summary(evaluation: Evaluation, market: ReplayMarket) -> ReplaySummary:
    c = market.calibration
    return ReplaySummary(
        source=market.source,
        sigma=c.sigma,
        mean_volume=c.mean_volume,
        stride=market.stride,
        impact=impact_summary(evaluation.params, market),
        splits=market.summaries(),
        sessions=session_costs(evaluation, market),
    )


def verdicts(metrics: dict[str, StrategyMetrics], names: list[str]) -> list[str]:
    """One line per strategy: is its risk-adjusted cost on the test windows lower than TWAP's,
    significantly (paired test, 5 %), and how does it compare with the calibrated optimum?"""
    reference = metrics.get(CALIBRATED)
    out = []
    for name in names:
        s = metrics[name].savings_cost
        if not s.significant:
            verdict = "not significantly different from TWAP's"
        elif s.avg_savings_bps > 0:
            verdict = "significantly lower than TWAP's"
        else:
            verdict = "significantly higher than TWAP's"
        line = (
            f"{name}: risk-adjusted cost {verdict} on the test windows (saves "
            f"{s.avg_savings_bps:.2f} bps [{s.ci95_low_bps:.2f}, {s.ci95_high_bps:.2f}])"
        )
        if reference is not None:
            line += (
                f"; the calibrated optimum saves {reference.savings_cost.avg_savings_bps:.2f} bps"
            )
        out.append(line)
    return out
