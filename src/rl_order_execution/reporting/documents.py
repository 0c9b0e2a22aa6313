"""What a run and the self-check write: metrics.json (RunReport) and benchmark.json
(BenchmarkReport), typed. `to_json` keeps the files' keys and their order, the one place names
become strings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rl_order_execution.config import Settings
from rl_order_execution.evaluation.replay import ReplaySummary
from rl_order_execution.evaluation.selfcheck import Check, FrontierPoint
from rl_order_execution.evaluation.statistics import (
    SeedsSummary,
    StrategyMetrics,
    json_fields,
)
from rl_order_execution.reporting.provenance import Provenance


@dataclass(frozen=True)
class ExactCosts:
    """Closed-form E[C] in $ of TWAP and of the exact optimum (None where unknown)."""

    cost_twap: float | None
    cost_optimal: float | None

    def to_json(self) -> dict[str, float | None]:
        return json_fields(self)


@dataclass(frozen=True)
class RunReport:
    """metrics.json of `rl-exec run` and `rl-exec evaluate`."""

    episodes: int
    evaluation_seed: int
    settings: Settings
    exact: ExactCosts
    strategies: Mapping[str, StrategyMetrics]
    warnings: Sequence[str]
    training: Mapping[str, Any] | None = None  # `run`: per agent, what its training did
    checkpoint: str | None = None  # `evaluate`: the checkpoint evaluated
    seeds_summary: SeedsSummary | None = None  # `run --seeds K` with K > 1
    replay: ReplaySummary | None = None  # price_model replay: the data, splits and sessions
    provenance: Provenance | None = None  # where the numbers come from (agent, market, code)
    agents: Sequence[str] = ()  # the trained agents among `strategies`, in order

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "episodes": self.episodes,
            "evaluation_seed": self.evaluation_seed,
            "settings": self.settings.model_dump(mode="json"),
            "exact": self.exact.to_json(),
            "strategies": {name: m.to_json() for name, m in self.strategies.items()},
            "warnings": list(self.warnings),
        }
        if self.training is not None:
            out["training"] = dict(self.training)
        if self.checkpoint is not None:
            out["checkpoint"] = self.checkpoint
        if self.seeds_summary is not None:
            out["seeds_summary"] = self.seeds_summary.to_json()
        if self.replay is not None:
            out["replay"] = self.replay.to_json()
        if self.provenance is not None:
            out["provenance"] = self.provenance.to_json()
        return out


@dataclass(frozen=True)
class BenchmarkReport:
    """benchmark.json of `rl-exec benchmark`: the self-check and the efficient frontier."""

    episodes: int
    evaluation_seed: int
    settings: Settings
    tolerance_se: float
    checks: Sequence[Check]
    frontier: Sequence[FrontierPoint]

    @property
    def failed(self) -> list[str]:
        """Strategies whose Monte Carlo estimates disagree with their closed forms."""
        return [c.name for c in self.checks if not c.ok]

    def to_json(self) -> dict[str, Any]:
        return {
            "episodes": self.episodes,
            "evaluation_seed": self.evaluation_seed,
            "settings": self.settings.model_dump(mode="json"),
            "tolerance_se": self.tolerance_se,
            "strategies": {c.name: c.to_json() for c in self.checks},
            "frontier": [point.to_json() for point in self.frontier],
        }
