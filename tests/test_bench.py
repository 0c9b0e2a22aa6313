"""The speed benchmark's bookkeeping (the timings themselves are measured by `make bench`)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    path = Path(__file__).parents[1] / "benchmarks" / "bench.py"
    spec = importlib.util.spec_from_file_location("bench", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench"] = module
    spec.loader.exec_module(module)
    return module


def test_median_time_counts_a_run_that_never_got_there_as_slowest(bench: ModuleType) -> None:
    def runs(*seconds: float | None) -> list[dict[str, float | None]]:
        return [{"seconds_to_target": s} for s in seconds]

    assert bench.median_seconds(runs(3.0, 1.0, 2.0)) == 2.0
    assert bench.median_seconds(runs(None, 1.0, 2.0)) == 2.0  # one miss of three: still 2 s
    assert bench.median_seconds(runs(None, None, 2.0)) is None  # most runs never got there
    assert bench.median_seconds(runs(4.0, 1.0, 2.0, 3.0)) == 2.5


def test_a_quality_run_stops_at_the_target_share(bench: ModuleType) -> None:
    from rl_order_execution.agents.validation import Validator
    from rl_order_execution.market import MarketParams

    settings = bench._settings(200, eval_interval=10, validation_episodes=50)
    validator = Validator.from_settings(settings, MarketParams.of(settings))
    run = bench._quality_run(settings, 60.0, validator)
    # either it got there (and stopped at once) or it used every episode without getting there
    if run["seconds_to_target"] is not None:
        assert run["best_share"] >= bench.TARGET and run["episodes"] <= 200
    else:
        assert run["best_share"] < bench.TARGET and run["episodes"] >= 200


def test_ppo_updates_count_minibatch_steps_not_epochs(bench: ModuleType) -> None:
    ppo = bench._settings(6000, agent="ppo").rl  # 64 envs x 64 steps = 4,096 samples, batch 512
    assert bench._gradient_updates(ppo, 30) == 30 * 8
    tiny = bench._settings(10, agent="ppo").rl  # 10 envs x 64 steps = 640 samples: 2 batches
    assert bench._gradient_updates(tiny, 10) == 10 * 2
    sac = bench._settings(1500, agent="sac").rl  # SAC and the Double DQN count gradient steps
    assert bench._gradient_updates(sac, 936) == 936


def test_ratio_compares_only_equal_targets(bench: ModuleType) -> None:
    ours = {"target": 0.9, "seconds_to_target": 2.0}
    assert bench._ratio({"target": 0.9, "seconds_to_target": 5.0, "wall_s": 5.0}, ours) == "2.5"
    assert bench._ratio({"target": 0.9, "seconds_to_target": None, "wall_s": 60.0}, ours) == "30.0+"
    assert bench._ratio({"target": 0.98, "seconds_to_target": 5.0, "wall_s": 5.0}, ours) == "-"
