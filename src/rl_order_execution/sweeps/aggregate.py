"""The sweep's aggregate per (market, agent), computed from the cells' saved metrics.json only, so
a sweep interrupted and resumed aggregates exactly like one that ran straight through."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

BOOTSTRAP_SEED = 0  # fixed: equal cells give an identical aggregate
BOOTSTRAP_RESAMPLES = 10_000
AGENT = "agent"  # the trained agent's name in a one-seed run's metrics.json
SHARES = ("gap_captured", "hindsight_captured")  # of the exact optimum's / hindsight's advantage
# the book market's share: of the optimum of the agent's own action set, run on the same episodes
BOOK_SHARE = "advantage_share"
REFERENCES = ("best-discrete", "vwap", "calibrated-optimal")  # their shares, for the tables


def iqm(values: np.ndarray) -> np.ndarray:
    """Interquartile mean along the last axis: the mean of the middle half after cutting
    floor(n / 4) values at each end (scipy's trim_mean(x, 0.25), as rliable uses)."""
    n = values.shape[-1]
    cut = n // 4
    middle: np.ndarray = np.sort(values, axis=-1)[..., cut : n - cut].mean(axis=-1)
    return middle


@dataclass(frozen=True)
class Estimate:
    """An IQM across cells with its percentile-bootstrap 95 % interval."""

    iqm: float
    ci95: tuple[float, float]

    def to_json(self) -> dict[str, Any]:
        return {"iqm": self.iqm, "ci95": list(self.ci95)}


def iqm_with_ci(
    values: Sequence[float], seed: int = BOOTSTRAP_SEED, resamples: int = BOOTSTRAP_RESAMPLES
) -> Estimate:
    """IQM and bootstrap 95 % CI; the values are sorted first, so their order never matters."""
    x = np.sort(np.asarray(values, dtype=float))
    rng = np.random.default_rng(seed)
    boot = iqm(x[rng.integers(0, len(x), size=(resamples, len(x)))])
    low, high = np.percentile(boot, [2.5, 97.5])
    return Estimate(float(iqm(x)), (float(low), float(high)))


@dataclass(frozen=True)
class CellResult:
    """What the aggregate takes from one finished cell's metrics.json."""

    cell: str
    market: str
    agent: str
    seed: int
    savings_bps: float  # expected-cost savings vs TWAP, paired per episode
    share: float | None  # share of the optimum's (replay: hindsight's) advantage captured
    share_kind: str | None  # which share: gap_captured, hindsight_captured or advantage_share
    training_seconds: float
    evaluation_seconds: float
    references: dict[str, float] = field(default_factory=dict)  # reference strategies' shares


def _share(strategy: dict[str, Any]) -> tuple[float | None, str | None]:
    for kind in SHARES:
        value = (strategy.get(kind) or {}).get("value")
        if value is not None:
            return float(value), kind
    return None, None


def book_share(metrics: dict[str, Any], agent: str) -> float | None:
    """On the book market: the agent's share of the advantage over TWAP of the optimum of its own
    action set, that optimum run on the same test episodes (metrics.json's agents section)."""
    value = (((metrics.get("agents") or {}).get(agent) or {}).get(BOOK_SHARE) or {}).get("value")
    return None if value is None else float(value)


def read_cell(folder: Path, market: str, agent: str, seed: int) -> CellResult:
    """The aggregate's view of a cell folder written by the sweep."""
    metrics = json.loads((folder / "metrics.json").read_text())
    strategies = metrics["strategies"]
    share, kind = _share(strategies[AGENT])
    if (own := book_share(metrics, AGENT)) is not None:
        share, kind = own, BOOK_SHARE
    references = {
        name: value
        for name in REFERENCES
        if name in strategies and (value := _share(strategies[name])[0]) is not None
    }
    timing = metrics["timing"]
    return CellResult(
        cell=folder.name,
        market=market,
        agent=agent,
        seed=seed,
        savings_bps=float(strategies[AGENT]["savings_cost"]["avg_savings_bps"]),
        share=share,
        share_kind=kind,
        training_seconds=float(timing["training_seconds"]),
        evaluation_seconds=float(timing["evaluation_seconds"]),
        references=references,
    )


@dataclass(frozen=True)
class AggregateRow:
    """One (market, agent) of the sweep, over its finished cells."""

    market: str
    agent: str
    cells: int  # finished cells aggregated
    savings_bps: Estimate | None
    share_of_optimum: Estimate | None  # None unless every cell has a share
    share_kind: str | None
    training_seconds: float | None  # mean per cell
    per_cell: tuple[CellResult, ...] = ()

    def to_json(self) -> dict[str, Any]:
        def estimate(e: Estimate | None) -> dict[str, Any] | None:
            return None if e is None else e.to_json()

        references = self.per_cell[0].references if self.per_cell else {}
        return {
            "market": self.market,
            "agent": self.agent,
            "cells": self.cells,
            "savings_bps": estimate(self.savings_bps),
            "share_of_optimum": estimate(self.share_of_optimum),
            "share_kind": self.share_kind,
            "training_seconds": self.training_seconds,
            "per_cell": [
                {"cell": c.cell, "seed": c.seed, "savings_bps": c.savings_bps, "share": c.share}
                for c in self.per_cell
            ],
            "references": references,
        }


def aggregate(
    results: Sequence[CellResult], groups: Sequence[tuple[str, str]]
) -> list[AggregateRow]:
    """One row per (market, agent) in `groups` order; cells in seed order."""
    rows = []
    for market, agent in groups:
        cells = sorted(
            (r for r in results if (r.market, r.agent) == (market, agent)), key=lambda r: r.seed
        )
        shares = [c.share for c in cells]
        kinds = {c.share_kind for c in cells}
        complete = bool(cells) and None not in shares and len(kinds) == 1
        rows.append(
            AggregateRow(
                market=market,
                agent=agent,
                cells=len(cells),
                savings_bps=iqm_with_ci([c.savings_bps for c in cells]) if cells else None,
                share_of_optimum=iqm_with_ci([s for s in shares if s is not None])
                if complete
                else None,
                share_kind=kinds.pop() if complete else None,
                training_seconds=float(np.mean([c.training_seconds for c in cells]))
                if cells
                else None,
                per_cell=tuple(cells),
            )
        )
    return rows
