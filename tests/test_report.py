"""The report is computed without a console or a file: run_report() -> RunReport."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from rl_order_execution.agents.greedy import GreedyAgent
from rl_order_execution.config import Settings
from rl_order_execution.experiment import evaluate_strategies, run_references, run_report
from rl_order_execution.market import MarketParams


class _Steady:
    """A stand-in policy: TWAP's speed, under a kind the registry knows or not."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def speeds(self, obs: np.ndarray) -> np.ndarray:
        return np.ones(len(obs))

    def policy_state(self) -> dict[str, Any]:
        return {}


def test_run_report_computes_every_number_and_finds_agents_by_their_registry_kind() -> None:
    settings = Settings.model_validate({"evaluation": {"episodes": 200}})
    p = MarketParams.of(settings)
    strategies = [
        *run_references(p),
        GreedyAgent(_Steady("ddqn"), name="mine"),
        GreedyAgent(_Steady("not-an-agent-kind"), name="agent-lookalike"),
    ]
    data = run_report(settings, evaluate_strategies(settings, p, strategies), {})
    assert data.agents == ["mine"]  # by kind, not by an "agent" name prefix
    assert data.exact.cost_twap == pytest.approx(7617.0)
    assert data.exact.cost_optimal == pytest.approx(7210.33, abs=0.01)
    # 1x the TWAP rate each step is TWAP: identical costs on the shared shocks
    assert data.strategies["mine"].cost.mean == data.strategies["twap"].cost.mean
    assert data.warnings == [] and data.provenance is None and data.seeds_summary is None
