"""Every number of metrics.json stays the same at the same seeds (golden values recorded before
the second edition's refactor; scripts/golden.py records and checks them)."""

from __future__ import annotations

import json

import pytest

from scripts.golden import GOLDEN, MARKETS, differences, run_market

RECORDED = json.loads(GOLDEN[False].read_text())


@pytest.mark.parametrize("market", list(RECORDED))
def test_metrics_json_matches_the_golden_run(market: str) -> None:
    assert list(differences(RECORDED[market], run_market(MARKETS[market], full=False))) == []


def test_differences_reports_a_changed_number() -> None:
    old = {"a": {"b": 1.0, "c": [1, 2]}}
    assert list(differences(old, {"a": {"b": 1.0, "c": [1, 2]}})) == []
    assert list(differences(old, {"a": {"b": 1.0000001, "c": [1, 2]}})) == [
        "a.b: golden 1.0, now 1.0000001"
    ]
    assert list(differences(old, {"a": {"c": [1, 2], "d": 0}})) == ["a.b: missing now"]
