"""What a run draws: PNG plots of inventories, savings and the efficient frontier."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from rl_order_execution.evaluation.rollout import Evaluation
from rl_order_execution.evaluation.selfcheck import FrontierPoint, std_error_of_std
from rl_order_execution.evaluation.statistics import Z95, standard_error
from rl_order_execution.files import atomic_write
from rl_order_execution.market import FloatArray


def plot_execution(evaluation: Evaluation, path: Path, strategies: list[str] | None = None) -> None:
    """Inventory over time (mean and 5-95 % band per strategy, over the sample paths: the first
    SAMPLE_PATHS test episodes) above the market's volume profile, each strategy's participation
    n_k / v_k over the day, and one sample mid-price path."""
    p = evaluation.params
    names = strategies or list(evaluation.trajectories)
    steps = np.arange(p.N + 1)
    fig, (ax_q, ax_v, ax_s) = plt.subplots(
        3, 1, figsize=(9, 9.5), sharex=True, height_ratios=[2, 1, 1]
    )
    colors = _inventory_panel(ax_q, evaluation, names, steps)
    _participation_panel(ax_v, evaluation, names, colors)
    for name in names:
        ax_s.plot(steps, evaluation.trajectories[name].S[0], label=name, lw=1, color=colors[name])
    ax_s.axhline(p.P0, color="grey", lw=0.8, ls="--")
    ax_s.set_ylabel("mid price ($)")
    ax_s.set_xlabel("step k")
    ax_s.set_title("Episode 0: mid price (same shocks for every strategy; impact differs)")
    ax_s.grid(alpha=0.3)
    fig.tight_layout()
    _save_figure(fig, path)


def _episode_volume(evaluation: Evaluation) -> np.ndarray:
    """The market's volume v_k of the sample episodes, (E, N) (replayed bars) or (N,)."""
    first = next(iter(evaluation.trajectories.values()))
    return first.volume(evaluation.params)


def _volume_share(evaluation: Evaluation) -> np.ndarray:
    """Mean share of the episode's volume per step (w_k; the windows' mean on replayed bars)."""
    v = _episode_volume(evaluation)
    if v.ndim == 1:
        return evaluation.params.w
    total = v.sum(axis=1, keepdims=True)
    out: np.ndarray = (v / np.where(total > 0, total, 1.0)).mean(axis=0)
    return out


def _inventory_panel(
    ax: Any, evaluation: Evaluation, names: list[str], steps: np.ndarray
) -> dict[str, str]:
    """Mean inventories with their 5-95 % bands (edges drawn, so overlapping bands stay
    visible), over the market's volume share per step; returns each strategy's colour."""
    share = _volume_share(evaluation)
    volume_ax = ax.twinx()
    volume_ax.bar(
        steps[:-1] + 0.5, share * 100, width=1.0, color="grey", alpha=0.25, label="market volume"
    )
    volume_ax.set_ylabel("market volume per step (% of the session)")
    volume_ax.set_ylim(0, max(float(share.max()) * 100 * 3, 1e-9))  # bars in the lower third
    ax.set_zorder(volume_ax.get_zorder() + 1)
    ax.patch.set_visible(False)
    colors = {}
    for name in names:
        q = evaluation.trajectories[name].q
        (line,) = ax.plot(steps, q.mean(axis=0), label=name, lw=1.8)
        colors[name] = line.get_color()
        lo, hi = np.percentile(q, [5, 95], axis=0)
        ax.fill_between(steps, lo, hi, color=colors[name], alpha=0.12)
        for edge in (lo, hi):
            ax.plot(steps, edge, color=colors[name], lw=0.7, ls="--")
    ax.set_ylabel("inventory (shares)")
    ax.set_title("Inventory: mean, 5-95 % band (dashed) across episodes; grey: the market's volume")
    handles, labels = ax.get_legend_handles_labels()
    bars, bar_labels = volume_ax.get_legend_handles_labels()
    ax.legend(handles + bars, labels + bar_labels, loc="upper right")
    ax.grid(alpha=0.3)
    return colors


def _participation_panel(
    ax: Any, evaluation: Evaluation, names: list[str], colors: dict[str, str]
) -> None:
    """Mean participation n_k / v_k per step (in %) over the sample episodes."""
    p = evaluation.params
    v = _episode_volume(evaluation)
    volume = np.where(v > 0, v, np.nan)
    for name in names:
        rate = np.nanmean(evaluation.trajectories[name].n / volume * 100, axis=0)
        shown = np.append(rate, rate[-1])  # step k drawn over [k, k+1]
        ax.step(np.arange(p.N + 1), shown, where="post", color=colors[name], label=name)
    ax.set_ylabel("participation n_k / v_k (%)")
    ax.set_title("Participation: mean share of the market's volume per step")
    ax.grid(alpha=0.3)


MAX_HISTOGRAMS = 6  # more agents than this and the savings plot shows box plots instead


def plot_savings(
    evaluation: Evaluation, path: Path, names: Sequence[str], baseline: str = "twap"
) -> None:
    """Per-episode savings vs the baseline of each named strategy: the risk-adjusted cost (the
    objective) on the left, the implementation shortfall beside it."""
    p = evaluation.params
    base = evaluation.outcomes[baseline]
    panels = [
        (
            "Risk-adjusted cost savings (the objective)",
            "cost savings",
            {n: (base.cost - evaluation.outcomes[n].cost) * p.bps for n in names},
        ),
        (
            "Implementation shortfall savings",
            "IS savings",
            {n: (base.shortfall - evaluation.outcomes[n].shortfall) * p.bps for n in names},
        ),
    ]
    fig, axes = plt.subplots(1, 2, figsize=(14, 5.5))
    for ax, (title, what, savings) in zip(axes, panels, strict=True):
        if len(savings) > MAX_HISTOGRAMS:
            _savings_boxes(ax, savings)
        else:
            _savings_histograms(ax, savings)
        ax.set_title(f"{title} vs {baseline}")
        ax.set_xlabel(f"{what} per episode (bps of Q*P0, > 0 = cheaper than {baseline})")
        ax.grid(alpha=0.3)
    if p.lam > 0:
        axes[1].set_title(
            f"Implementation shortfall savings vs {baseline}\n(lambda = {p.lam:g}: selling faster "
            "pays impact, < 0, for less risk)",
            fontsize=10,
        )
    episodes = len(base.cost)
    fig.suptitle(f"Savings vs {baseline} per episode, {episodes:,} shared-shock episodes")
    fig.tight_layout()
    _save_figure(fig, path)


def _savings_histograms(ax: Any, savings: dict[str, FloatArray]) -> None:
    """Overlaid histograms, one per strategy, with 0, each mean and (for one) VaR 95 %."""
    ax.axvline(0, color="black", lw=1, label="0 (= baseline)")
    values = np.concatenate(list(savings.values()))
    bins = np.histogram_bin_edges(values, bins=60)
    single = len(savings) == 1
    for name, s in savings.items():
        wins = float((s > 0).mean())
        label = f"{name}: cheaper in {wins:.1%} of episodes"
        if single:
            ax.hist(s, bins=bins, color="steelblue", alpha=0.8, label=label)
            ax.axvline(s.mean(), color="green", lw=2, label=f"mean {s.mean():.2f} bps")
            var95 = float(np.percentile(s, 5))
            ax.axvline(var95, color="red", lw=2, ls="--", label=f"VaR 95% {var95:.2f} bps")
        else:
            label += f", mean {s.mean():.2f} bps (dashed)"
            (patch,) = ax.hist(s, bins=bins, histtype="step", lw=1.5, label=label)[2]
            ax.axvline(s.mean(), color=patch.get_edgecolor(), lw=1.5, ls="--")
    ax.set_ylabel("episodes")
    ax.legend(fontsize=8, loc="upper right")


def _savings_boxes(ax: Any, savings: dict[str, FloatArray]) -> None:
    """One horizontal box per strategy (5-95 % whiskers, mean marked) when there are many."""
    names = list(savings)
    ax.boxplot(
        [savings[n] for n in names],
        vert=False,
        whis=(5, 95),
        showfliers=False,
        showmeans=True,
        tick_labels=names,
    )
    ax.axvline(0, color="black", lw=1)
    ax.tick_params(axis="y", labelsize=6)
    ax.set_ylabel("box: quartiles, whiskers: 5-95 %, triangle: mean")


def _save_figure(fig: Any, path: Path) -> None:
    atomic_write(path, lambda h: fig.savefig(h, format="png", dpi=110))
    plt.close(fig)


def plot_frontier(
    evaluation: Evaluation,
    curve: Sequence[FrontierPoint],
    path: Path,
    points: list[str],
) -> None:
    """E[IS] vs Std[IS]: the Almgren-Chriss frontier and the strategies' Monte Carlo estimates;
    on the right a zoom on the estimates, where their 95 % intervals (both axes) are visible."""
    p = evaluation.params
    std = np.array([c.is_std for c in curve]) * p.bps
    mean = np.array([c.is_mean for c in curve]) * p.bps
    marks = [_FrontierMark.of(evaluation, name) for name in points if name in evaluation.outcomes]
    fig, (ax_all, ax_zoom) = plt.subplots(1, 2, figsize=(14, 6), width_ratios=[1, 1.3])
    for ax in (ax_all, ax_zoom):
        ax.plot(std, mean, color="grey", lw=2, label="Almgren-Chriss frontier (exact)")
        ax.set_xlabel("Std[IS] (bps)")
        ax.set_ylabel("E[IS] (bps)")
        ax.grid(alpha=0.3)
    for i, mark in enumerate(marks):
        color = f"C{i % 10}"
        ax_all.plot(mark.std, mark.mean, "o", color=color, label=mark.name)
        ax_zoom.errorbar(
            mark.std,
            mark.mean,
            xerr=mark.std_ci,
            yerr=mark.mean_ci,
            fmt="o",
            mfc="none",  # hollow, so an interval shorter than the marker still shows
            ms=5,
            color=color,
            elinewidth=2,
            capsize=6,
            capthick=2,
            label=f"{mark.name}: E[IS] {mark.mean:.1f} +- {mark.mean_ci:.2f}, "
            f"Std {mark.std:.1f} +- {mark.std_ci:.2f}",
        )
    if marks:
        _zoom_to(ax_zoom, marks)
        _note_hidden_intervals(ax_zoom, marks)
    ax_all.set_title(f"Efficient frontier, lambda = {p.lam:g}")
    ax_all.legend(fontsize=8)
    ax_zoom.set_title("Zoom on the strategies: Monte Carlo estimates with 95 % intervals")
    ax_zoom.legend(fontsize=8, title="bps, +- 95 % interval", title_fontsize=8, loc="best")
    fig.tight_layout()
    _save_figure(fig, path)


@dataclass(frozen=True)
class _FrontierMark:
    """A strategy's Monte Carlo E[IS] and Std[IS] (bps) with their 95 % half-widths."""

    name: str
    mean: float
    mean_ci: float
    std: float
    std_ci: float

    @classmethod
    def of(cls, evaluation: Evaluation, name: str) -> _FrontierMark:
        is_ = evaluation.outcomes[name].shortfall * evaluation.params.bps
        return cls(
            name=name,
            mean=float(is_.mean()),
            mean_ci=Z95 * standard_error(is_, evaluation.antithetic),
            std=float(is_.std(ddof=1)),
            std_ci=Z95 * std_error_of_std(is_),
        )


def _note_hidden_intervals(ax: Any, marks: Sequence[_FrontierMark]) -> None:
    """Say so where the intervals are narrower than a marker (1 % of the axis), with their size."""
    (x_lo, x_hi), (y_lo, y_hi) = ax.get_xlim(), ax.get_ylim()
    notes = [
        f"{what} intervals (at most +- {widest:.2g} bps) are narrower than the markers"
        for what, widest, span in (
            ("E[IS]", max(m.mean_ci for m in marks), y_hi - y_lo),
            ("Std[IS]", max(m.std_ci for m in marks), x_hi - x_lo),
        )
        if widest < 0.01 * span
    ]
    if notes:
        ax.text(0.02, 0.02, "\n".join(notes), transform=ax.transAxes, fontsize=8, color="dimgray")


def _zoom_to(ax: Any, marks: Sequence[_FrontierMark]) -> None:
    """Limits around the estimates and their intervals, with a margin."""
    x_lo = min(m.std - m.std_ci for m in marks)
    x_hi = max(m.std + m.std_ci for m in marks)
    y_lo = min(m.mean - m.mean_ci for m in marks)
    y_hi = max(m.mean + m.mean_ci for m in marks)
    pad_x = max(0.08 * (x_hi - x_lo), 0.5)
    pad_y = max(0.08 * (y_hi - y_lo), 0.5)
    ax.set_xlim(x_lo - pad_x, x_hi + pad_x)
    ax.set_ylim(y_lo - pad_y, y_hi + pad_y)
