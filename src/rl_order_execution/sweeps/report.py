"""What a sweep writes: sweep.json, sweep.md and sweep.png (atomically), and its console table."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from rich.table import Table

from rl_order_execution.sweeps.aggregate import (
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    AggregateRow,
    Estimate,
)
from rl_order_execution.sweeps.cell import atomic_write, write_json, write_text_atomic

SHARE_NAMES = {
    "gap_captured": "optimum",
    "hindsight_captured": "hindsight",
    "advantage_share": "optimum",
}
OPTIMUM_SHARES = (None, "gap_captured", "advantage_share")


@dataclass(frozen=True)
class CellStatus:
    """One cell as sweep.json lists it."""

    cell: str
    market: str
    agent: str
    seed: int
    fingerprint: str
    status: str  # finished or failed
    attempts: int  # in the start that finished it (0: finished in an earlier start)
    training_seconds: float | None = None
    evaluation_seconds: float | None = None


@dataclass(frozen=True)
class Failure:
    cell: str
    reason: str


@dataclass(frozen=True)
class SweepReport:
    """Everything sweep.json holds."""

    name: str
    spec: dict[str, Any]
    market_files: dict[str, str]
    cells: list[CellStatus]
    aggregate: list[AggregateRow]
    failures: list[Failure]
    wall_seconds: float  # of this start of the sweep, from its start to its report
    workers: str  # "local, N workers" or the scheduler's address
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "spec": self.spec,
            "market_files": self.market_files,
            "workers": self.workers,
            "wall_seconds": self.wall_seconds,
            "bootstrap": {"seed": BOOTSTRAP_SEED, "resamples": BOOTSTRAP_RESAMPLES},
            "aggregate": [row.to_json() for row in self.aggregate],
            "failures": [{"cell": f.cell, "reason": f.reason} for f in self.failures],
            "cells": [vars(c) for c in self.cells],
            **self.extra,
        }


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}".replace("%", " %")


def _estimate(e: Estimate | None, percent: bool) -> str:
    if e is None:
        return "-"
    if percent:
        return f"{_pct(e.iqm)} [{_pct(e.ci95[0])}, {_pct(e.ci95[1])}]"
    return f"{e.iqm:.2f} [{e.ci95[0]:.2f}, {e.ci95[1]:.2f}]"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _share_label(row: AggregateRow) -> str:
    return "" if row.share_kind in OPTIMUM_SHARES else " (of hindsight)"


def aggregate_table(rows: Sequence[AggregateRow]) -> Table:
    """The aggregate for the console."""
    table = Table(title="Sweep: IQM across seeds \\[bootstrap 95 % CI]")
    for column in ("market", "agent", "cells", "cost savings vs TWAP (bps)", "share of optimum"):
        table.add_column(column, justify="right")
    table.add_column("training s (mean)", justify="right")
    for row in rows:
        table.add_row(
            row.market,
            row.agent,
            str(row.cells),
            _estimate(row.savings_bps, False),
            _estimate(row.share_of_optimum, True) + _share_label(row),
            _seconds(row.training_seconds),
        )
    return table


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def markdown_report(report: SweepReport) -> str:
    """sweep.md: the aggregate, the failures and every cell."""
    finished = sum(c.status == "finished" for c in report.cells)
    spec = report.spec
    lines = [
        f"# Sweep {report.name}",
        "",
        f"{len(report.cells)} cells ({len(spec['markets'])} markets x {len(spec['agents'])} "
        f"agents x {len(spec['seeds'])} seeds): {finished} finished, "
        f"{len(report.failures)} failed. Settings for every cell: "
        + (", ".join(f"`{k}: {json.dumps(v)}`" for k, v in spec["settings"].items()) or "none")
        + ".",
        "",
        "## Aggregate",
        "",
        "Interquartile mean across a (market, agent)'s finished cells, with a percentile "
        f"bootstrap 95 % interval ({BOOTSTRAP_RESAMPLES:,} resamples, seed {BOOTSTRAP_SEED}). "
        "Cost savings: expected-cost savings vs TWAP, paired per episode. Share of optimum: the "
        "share of the exact optimum's advantage over TWAP captured (on replayed bars, of the "
        "hindsight schedule's).",
        "",
    ]
    header = ["market", "agent", "cells", "cost savings vs TWAP (bps)", "share of optimum"]
    header.append("training s (mean per cell)")
    rows = [
        [
            r.market,
            r.agent,
            str(r.cells),
            _estimate(r.savings_bps, False),
            _estimate(r.share_of_optimum, True) + _share_label(r),
            _seconds(r.training_seconds),
        ]
        for r in report.aggregate
    ]
    lines += [*_md_table(header, rows), "", "![aggregate](sweep.png)", ""]
    if report.failures:
        lines += ["## Failures", ""]
        lines += [f"- `{f.cell}`: {f.reason}" for f in report.failures]
        lines.append("")
    lines += ["## Cells", ""]
    cells = [
        [
            c.cell,
            c.status,
            str(c.attempts),
            _seconds(c.training_seconds),
            _seconds(c.evaluation_seconds),
        ]
        for c in report.cells
    ]
    header = ["cell (folder in cells/)", "status", "attempts", "training s", "evaluation s"]
    lines += _md_table(header, cells)
    return "\n".join(lines) + "\n"


def quality_table(rows: Sequence[AggregateRow]) -> str:
    """The README's quality table from a sweep's aggregate: the share of the exact optimum's
    advantage over TWAP captured per seed, its IQM and bootstrap interval, and the references
    measured on the same test episodes (the best policy of the action grid, VWAP)."""
    header = ["market", "agent", "per seed", "IQM", "bootstrap 95 % CI", "grid best", "VWAP"]
    body = []
    for row in rows:
        refs = row.per_cell[0].references if row.per_cell else {}
        share = row.share_of_optimum
        market = row.market + ("" if row.share_kind in OPTIMUM_SHARES else " (hindsight)")
        body.append(
            [
                market,
                row.agent,
                ", ".join(_pct(c.share) for c in row.per_cell) or "-",
                "-" if share is None else _pct(share.iqm),
                "-" if share is None else f"[{_pct(share.ci95[0])}, {_pct(share.ci95[1])}]",
                _pct(refs.get("best-discrete")),
                _pct(refs.get("vwap")),
            ]
        )
    return "\n".join(_md_table(header, body)) + "\n"


def plot_aggregate(rows: Sequence[AggregateRow], path: Path) -> None:
    """One panel per market: each agent's share of the optimum (cost savings in bps where no
    share exists) as IQM with its bootstrap 95 % interval, over the cells' own values."""
    markets = list(dict.fromkeys(r.market for r in rows))
    cols = min(4, len(markets))
    nrows = math.ceil(len(markets) / cols)
    fig, axes = plt.subplots(
        nrows, cols, figsize=(3.2 * cols + 0.6, 2.9 * nrows + 0.4), squeeze=False
    )
    for ax, market in zip(axes.flat, markets, strict=False):
        _market_panel(ax, [r for r in rows if r.market == market], market)
    for ax in list(axes.flat)[len(markets) :]:
        ax.axis("off")
    fig.suptitle("IQM across seeds with bootstrap 95 % CI (dots: cells)", fontsize=10)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write(path, lambda h: h.write(buffer.getvalue()))


def _market_panel(ax: Any, rows: Sequence[AggregateRow], market: str) -> None:
    by_share = all(r.share_of_optimum is not None for r in rows if r.cells)
    kinds = {r.share_kind for r in rows if r.share_kind}
    for x, row in enumerate(rows):
        estimate = row.share_of_optimum if by_share else row.savings_bps
        scale = 100.0 if by_share else 1.0
        values = [(c.share if by_share else c.savings_bps) for c in row.per_cell]
        dots = [v * scale for v in values if v is not None]
        ax.scatter([x + 0.15] * len(dots), dots, s=12, color="grey", alpha=0.7, zorder=2)
        if estimate is None:
            ax.annotate("no cell", (x, 0), ha="center", fontsize=8, color="red")
            continue
        mid, (low, high) = estimate.iqm * scale, estimate.ci95
        ax.errorbar(
            [x],
            [mid],
            yerr=[[mid - low * scale], [high * scale - mid]],
            fmt="o",
            color=f"C{x}",
            capsize=5,
            lw=1.6,
            zorder=3,
        )
    ax.set_xticks(range(len(rows)), [r.agent for r in rows])
    ax.set_xlim(-0.6, len(rows) - 0.4)
    of = SHARE_NAMES.get(next(iter(kinds)), "optimum") if kinds else "optimum"
    ax.set_ylabel(f"share of {of} (%)" if by_share else "cost savings vs TWAP (bps)", fontsize=9)
    ax.set_title(market, fontsize=10)
    ax.grid(alpha=0.3, axis="y")


def write_reports(sweep_dir: Path, report: SweepReport) -> dict[str, Path]:
    """sweep.json, sweep.md and sweep.png, each written atomically."""
    paths = {
        "json": sweep_dir / "sweep.json",
        "markdown": sweep_dir / "sweep.md",
        "plot": sweep_dir / "sweep.png",
    }
    write_json(paths["json"], report.to_json())
    plot_aggregate(report.aggregate, paths["plot"])
    write_text_atomic(paths["markdown"], markdown_report(report))
    return paths
