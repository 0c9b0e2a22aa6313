"""What a run leaves behind: Rich tables, PNG plots, metrics.json, all written atomically."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from rich.console import Console
from rich.table import Table

from rl_order_execution.evaluation import Evaluation


def atomic_write(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Write through a temporary file in the same folder, then rename: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    data = text.encode()
    atomic_write(path, lambda h: h.write(data))


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def _fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _ci(stats: Mapping[str, Any]) -> str:
    low, high = _fmt(stats["ci95_low_bps"]), _fmt(stats["ci95_high_bps"])
    text = f"{_fmt(stats['avg_savings_bps'])} [{low}, {high}]"
    return text if stats.get("significant", True) else text + " n.s."


def metrics_table(metrics: Mapping[str, Mapping[str, Any]], episodes: int) -> Table:
    """Costs per strategy (bps of Q*P0): shortfall, risk-adjusted cost, gap captured."""
    table = Table(title=f"Costs on {episodes:,} shared-shock episodes (bps of Q*P0)")
    for col in ("strategy", "IS mean", "IS std", "cost mean", "cost std", "cost mean $"):
        table.add_column(col, justify="right")
    gap = any(m.get("gap_captured") for m in metrics.values())
    if gap:
        table.add_column("gap captured [95% CI]", justify="right")
    for name, m in metrics.items():
        row = [
            name,
            _fmt(m["is_mean_bps"]),
            _fmt(m["is_std_bps"]),
            _fmt(m["cost_mean_bps"]),
            _fmt(m["cost_std_bps"]),
            _fmt(m["cost_mean"]),
        ]
        if gap:
            g = m.get("gap_captured")
            row.append(
                "n/a" if not g else f"{g['value']:.1%} [{g['ci95_low']:.1%}, {g['ci95_high']:.1%}]"
            )
        table.add_row(*row)
    return table


def savings_table(metrics: Mapping[str, Mapping[str, Any]], baseline: str = "twap") -> Table:
    """Paired savings vs the baseline per strategy (bps; positive = cheaper than the baseline)."""
    table = Table(title=f"Savings vs {baseline.upper()}, paired per episode (bps)")
    for col in ("strategy", "IS savings [95% CI]", "IR", "win rate", "VaR 95%"):
        table.add_column(col, justify="right")
    table.add_column("cost savings [95% CI]", justify="right")
    table.add_column("cost win rate", justify="right")
    for name, m in metrics.items():
        if name == baseline:
            continue
        si, sc = m["savings_is"], m["savings_cost"]
        table.add_row(
            name,
            _ci(si),
            _fmt(si["information_ratio"], 3),
            f"{si['win_rate']:.1%}",
            _fmt(si["var_95_bps"]),
            _ci(sc),
            f"{sc['win_rate']:.1%}",
        )
    return table


def plot_execution(evaluation: Evaluation, path: Path, strategies: list[str] | None = None) -> None:
    """Inventory over time (mean and 5-95 % band per strategy) and one sample mid-price path."""
    p = evaluation.params
    names = strategies or list(evaluation.trajectories)
    steps = np.arange(p.N + 1)
    fig, (ax_q, ax_s) = plt.subplots(2, 1, figsize=(9, 7), sharex=True, height_ratios=[2, 1])
    for name in names:
        q = evaluation.trajectories[name].q
        (line,) = ax_q.plot(steps, q.mean(axis=0), label=name)
        lo, hi = np.percentile(q, [5, 95], axis=0)
        ax_q.fill_between(steps, lo, hi, color=line.get_color(), alpha=0.15)
    ax_q.set_ylabel("inventory (shares)")
    ax_q.set_title("Inventory: mean over episodes, band = 5-95 % across episodes")
    ax_q.legend()
    ax_q.grid(alpha=0.3)
    for name in names:
        ax_s.plot(steps, evaluation.trajectories[name].S[0], label=name, lw=1)
    ax_s.axhline(p.P0, color="grey", lw=0.8, ls="--")
    ax_s.set_ylabel("mid price ($)")
    ax_s.set_xlabel("step k")
    ax_s.set_title("Episode 0: mid price (same shocks for every strategy; impact differs)")
    ax_s.grid(alpha=0.3)
    fig.tight_layout()
    _save_figure(fig, path)


def plot_savings(evaluation: Evaluation, path: Path, name: str, baseline: str = "twap") -> None:
    """Distribution of per-episode IS savings vs the baseline, with 0, mean and VaR 95 %."""
    p = evaluation.params
    base, other = evaluation.trajectories[baseline], evaluation.trajectories[name]
    savings = (base.shortfall(p) - other.shortfall(p)) * p.bps
    fig, ax = plt.subplots(figsize=(9, 5))
    ax.hist(savings, bins=60, color="steelblue", alpha=0.8)
    ax.axvline(0, color="black", lw=1, label="0 (= TWAP)")
    ax.axvline(savings.mean(), color="green", lw=2, label=f"mean {savings.mean():.2f} bps")
    var95 = float(np.percentile(savings, 5))
    ax.axvline(var95, color="red", lw=2, ls="--", label=f"VaR 95% {var95:.2f} bps")
    ax.set_xlabel(f"IS savings of {name} vs {baseline} per episode (bps, positive = cheaper)")
    ax.set_ylabel("episodes")
    ax.set_title(f"Paired IS savings over {len(savings):,} shared-shock episodes")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    _save_figure(fig, path)


def _save_figure(fig: Any, path: Path) -> None:
    atomic_write(path, lambda h: fig.savefig(h, format="png", dpi=110))
    plt.close(fig)


def print_outputs(console: Console, outputs: Mapping[str, Path]) -> None:
    """Where everything went, one line each, never truncated."""
    console.print("[bold]Outputs[/bold]")
    for what, where in outputs.items():
        console.print(f"  {what:<16} {where}", soft_wrap=True, highlight=False)
