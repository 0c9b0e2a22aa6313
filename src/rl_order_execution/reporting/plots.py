"""What a run draws: PNG plots of inventories, savings and the efficient frontier."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from rl_order_execution.evaluation.rollout import Evaluation
from rl_order_execution.evaluation.selfcheck import FrontierPoint
from rl_order_execution.evaluation.statistics import Z95, standard_error
from rl_order_execution.reporting.files import atomic_write


def plot_execution(evaluation: Evaluation, path: Path, strategies: list[str] | None = None) -> None:
    """Inventory over time (mean and 5-95 % band per strategy, over the sample paths: the first
    SAMPLE_PATHS test episodes) and one sample mid-price path."""
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
    savings = (
        evaluation.outcomes[baseline].shortfall - evaluation.outcomes[name].shortfall
    ) * p.bps
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


def plot_frontier(
    evaluation: Evaluation,
    curve: Sequence[FrontierPoint],
    path: Path,
    points: list[str],
) -> None:
    """E[IS] vs Std[IS]: the Almgren-Chriss frontier and strategies' Monte Carlo estimates."""
    p = evaluation.params
    fig, ax = plt.subplots(figsize=(8, 6))
    std = np.array([c.is_std for c in curve]) * p.bps
    mean = np.array([c.is_mean for c in curve]) * p.bps
    ax.plot(std, mean, color="grey", lw=2, label="Almgren-Chriss frontier (exact)")
    for name in points:
        if name not in evaluation.outcomes:
            continue
        is_ = evaluation.outcomes[name].shortfall * p.bps
        se = standard_error(is_, evaluation.antithetic)
        ax.errorbar(
            is_.std(ddof=1),
            is_.mean(),
            yerr=Z95 * se,
            fmt="o",
            capsize=4,
            label=f"{name} (MC, 95% CI)",
        )
    ax.set_xlabel("Std[IS] (bps)")
    ax.set_ylabel("E[IS] (bps)")
    ax.set_title(f"Efficient frontier, lambda = {p.lam:g} marked by the strategies")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    _save_figure(fig, path)
