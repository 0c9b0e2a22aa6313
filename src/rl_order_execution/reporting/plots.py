"""What a run draws: PNG plots of inventories, savings and the efficient frontier."""

from __future__ import annotations

import math
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
    SAMPLE_PATHS test episodes, or the test windows on replayed bars) above the market's volume
    profile, each strategy's participation n_k / v_k over the day, and one sample mid-price path.
    One legend, in a margin right of the panels: it never covers a curve."""
    _save_figure(execution_figure(evaluation, strategies), path)


def execution_figure(evaluation: Evaluation, strategies: list[str] | None = None) -> Any:
    """The figure `plot_execution` saves."""
    p = evaluation.params
    words = _Words.of(evaluation)
    names = strategies or list(evaluation.trajectories)
    steps = np.arange(p.N + 1)
    fig, (ax_q, ax_v, ax_s) = plt.subplots(
        3, 1, figsize=(11.5, 9.5), sharex=True, height_ratios=[2, 1, 1], layout="constrained"
    )
    colors, handles = _inventory_panel(ax_q, evaluation, names, steps, words)
    _participation_panel(ax_v, evaluation, names, colors, words)
    widths = _nested_widths(len(names), thin=1.0, thick=3.0)
    for name, lw in zip(names, widths, strict=True):  # thick first: a coinciding path shows
        ax_s.plot(steps, evaluation.trajectories[name].S[0], label=name, lw=lw, color=colors[name])
    ax_s.axhline(p.P0, color="grey", lw=0.8, ls="--")
    ax_s.set_ylabel("mid price ($)")
    ax_s.set_xlabel("step k")
    ax_s.set_title(words.mid_title)
    ax_s.grid(alpha=0.3)
    fig.legend(*handles, loc="outside right upper", fontsize=9)
    return fig


@dataclass(frozen=True)
class _Words:
    """What the plots call the evaluation's units: simulated episodes with shared price shocks,
    or the replayed test windows (no shocks are drawn there)."""

    one: str  # "episode" / "test window"
    many: str  # "episodes" / "test windows"
    sample: str  # the suptitle's count: "shared-shock episodes" / "replayed test windows"
    mid_title: str

    @classmethod
    def of(cls, evaluation: Evaluation) -> _Words:
        if evaluation.params.replay is not None:
            return cls(
                "test window",
                "test windows",
                "replayed test windows",
                "Test window 0: replayed mid price (the same bars for every strategy; our impact "
                "differs)",
            )
        return cls(
            "episode",
            "episodes",
            "shared-shock episodes",
            "Episode 0: mid price (same shocks for every strategy; impact differs)",
        )


def _nested_widths(count: int, thin: float, thick: float) -> list[float]:
    """Line widths from thick (drawn first, underneath) to thin, so that lines or bars that
    coincide stay visible as nested strokes of their colours."""
    if count <= 1:
        return [thin] * count
    return [float(w) for w in np.linspace(thick, thin, count)]


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
    ax: Any, evaluation: Evaluation, names: list[str], steps: np.ndarray, words: _Words
) -> tuple[dict[str, str], tuple[list[Any], list[str]]]:
    """Mean inventories with their 5-95 % bands (edges drawn, so overlapping bands stay
    visible), over the market's volume share per step; returns each strategy's colour and the
    legend's handles and labels."""
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
    widths = _nested_widths(len(names), thin=1.5, thick=3.5)
    for name, lw in zip(names, widths, strict=True):
        q = evaluation.trajectories[name].q
        (line,) = ax.plot(steps, q.mean(axis=0), label=name, lw=lw)
        colors[name] = line.get_color()
        lo, hi = np.percentile(q, [5, 95], axis=0)
        ax.fill_between(steps, lo, hi, color=colors[name], alpha=0.12)
        for edge in (lo, hi):
            ax.plot(steps, edge, color=colors[name], lw=0.7, ls="--")
    ax.set_ylabel("inventory (shares)")
    ax.set_title(
        f"Inventory: mean, 5-95 % band (dashed) across {words.many}; grey: the market's volume"
    )
    handles, labels = ax.get_legend_handles_labels()
    bars, bar_labels = volume_ax.get_legend_handles_labels()
    ax.grid(alpha=0.3)
    return colors, (handles + bars, labels + bar_labels)


def _participation_panel(
    ax: Any, evaluation: Evaluation, names: list[str], colors: dict[str, str], words: _Words
) -> None:
    """Mean participation n_k / v_k per step (in %) over the sample episodes."""
    p = evaluation.params
    v = _episode_volume(evaluation)
    volume = np.where(v > 0, v, np.nan)
    widths = _nested_widths(len(names), thin=1.2, thick=3.0)
    for name, lw in zip(names, widths, strict=True):
        rate = np.nanmean(evaluation.trajectories[name].n / volume * 100, axis=0)
        shown = np.append(rate, rate[-1])  # step k drawn over [k, k+1]
        ax.step(np.arange(p.N + 1), shown, where="post", color=colors[name], lw=lw, label=name)
    ax.set_ylabel("participation n_k / v_k (%)")
    ax.set_title(
        f"Participation: mean share of the market's volume per step, over the {words.many}"
    )
    ax.grid(alpha=0.3)


MAX_HISTOGRAMS = 6  # more agents than this and the savings plot shows box plots instead


def plot_savings(
    evaluation: Evaluation, path: Path, names: Sequence[str], baseline: str = "twap"
) -> None:
    """Per-episode savings vs the baseline of each named strategy: the risk-adjusted cost (the
    objective) on the left, the implementation shortfall beside it, each with its legend below
    its axes (never over a bar)."""
    _save_figure(savings_figure(evaluation, names, baseline), path)


def savings_figure(evaluation: Evaluation, names: Sequence[str], baseline: str = "twap") -> Any:
    """The figure `plot_savings` saves: one subfigure per panel, its legend in its bottom
    margin."""
    p = evaluation.params
    words = _Words.of(evaluation)
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
    fig = plt.figure(figsize=(14, 6.5), layout="constrained")
    halves: Any = fig.subfigures(1, 2)
    for half, (title, what, savings) in zip(halves, panels, strict=True):
        ax = half.subplots()
        if len(savings) > MAX_HISTOGRAMS:
            _savings_boxes(ax, savings)
        else:
            _savings_histograms(ax, savings, words)
            half.legend(*ax.get_legend_handles_labels(), loc="outside lower center", fontsize=8)
        ax.set_title(f"{title} vs {baseline}")
        ax.set_xlabel(f"{what} per {words.one} (bps of Q*P0, > 0 = cheaper than {baseline})")
        ax.grid(alpha=0.3)
        if p.lam > 0 and what == "IS savings":
            ax.set_title(
                f"Implementation shortfall savings vs {baseline}\n(lambda = {p.lam:g}: selling "
                "faster pays impact, < 0, for less risk)",
                fontsize=10,
            )
    fig.suptitle(f"Savings vs {baseline} per {words.one}, {len(base.cost):,} {words.sample}")
    return fig


# the mean lines' dash patterns, one per histogram (at most MAX_HISTOGRAMS), and their names
MEAN_DASHES: list[tuple[str, Any]] = [
    ("dashed", "--"),
    ("dotted", ":"),
    ("dash-dot", "-."),
    ("dash-dot-dot", (0, (8, 2, 1, 2, 1, 2))),
    ("long dashes", (0, (12, 3))),
    ("sparse dots", (0, (1, 4))),
]


def _savings_histograms(ax: Any, savings: dict[str, FloatArray], words: _Words) -> None:
    """Overlaid histograms, one per strategy, with 0, each mean and (for one) VaR 95 %. Means
    get their own dash pattern and nested widths, so two equal means both show."""
    ax.axvline(0, color="black", lw=1, label="0 (= baseline)")
    values = np.concatenate(list(savings.values()))
    bins = np.histogram_bin_edges(values, bins=60)
    single = len(savings) == 1
    widths = _nested_widths(len(savings), thin=1.2, thick=3.5)
    for i, (name, s) in enumerate(savings.items()):
        wins = float((s > 0).mean())
        label = f"{name}: cheaper in {wins:.1%} of {words.many}"
        if single:
            ax.hist(s, bins=bins, color="steelblue", alpha=0.8, label=label)
            ax.axvline(s.mean(), color="green", lw=2, label=f"mean {s.mean():.2f} bps")
            var95 = float(np.percentile(s, 5))
            ax.axvline(var95, color="red", lw=2, ls="--", label=f"VaR 95% {var95:.2f} bps")
        else:
            dash_name, dash = MEAN_DASHES[i % len(MEAN_DASHES)]
            label += f", mean {s.mean():.2f} bps ({dash_name})"
            (patch,) = ax.hist(s, bins=bins, histtype="step", lw=1.5, label=label)[2]
            ax.axvline(s.mean(), color=patch.get_edgecolor(), lw=widths[i], ls=dash)
    ax.set_ylabel(words.many)


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
    _save_figure(frontier_figure(evaluation, curve, points), path)


# one marker shape per strategy, drawn hollow and nested (the first largest and underneath), so
# two strategies at the same point both show
MARKERS = ["o", "s", "D", "^", "v", "P", "X", "h", "<", ">"]
MARK_COLORS = ["C0", "C1", "C2", "C3", "C4", "C5", "C6", "C8", "C9"]  # no C7: the curve's grey


def frontier_figure(
    evaluation: Evaluation, curve: Sequence[FrontierPoint], points: list[str]
) -> Any:
    """The figure `plot_frontier` saves, its one legend below both panels."""
    p = evaluation.params
    std = np.array([c.is_std for c in curve]) * p.bps
    mean = np.array([c.is_mean for c in curve]) * p.bps
    marks = [_FrontierMark.of(evaluation, name) for name in points if name in evaluation.outcomes]
    fig, (ax_all, ax_zoom) = plt.subplots(
        1, 2, figsize=(14, 7), width_ratios=[1, 1.3], layout="constrained"
    )
    for ax in (ax_all, ax_zoom):
        ax.plot(std, mean, color="grey", lw=2, label="Almgren-Chriss frontier (exact)", zorder=1)
        ax.set_xlabel("Std[IS] (bps)")
        ax.set_ylabel("E[IS] (bps)")
        ax.grid(alpha=0.3)
    sizes = _nested_widths(len(marks), thin=5.0, thick=14.0)
    bar_widths = _nested_widths(len(marks), thin=1.2, thick=4.0)
    for i, mark in enumerate(marks):
        style = {
            "marker": MARKERS[i % len(MARKERS)],
            "mfc": "none",  # hollow: a marker never fills over another, nor over an interval
            "mew": 1.6,
            "ms": sizes[i],
            "color": MARK_COLORS[i % len(MARK_COLORS)],
            "zorder": 3 + i,  # the larger ones underneath
        }
        ax_all.plot(mark.std, mark.mean, ls="none", label=mark.name, **style)
        ax_zoom.errorbar(
            mark.std,
            mark.mean,
            xerr=mark.std_ci,
            yerr=mark.mean_ci,
            fmt=style["marker"],
            elinewidth=bar_widths[i],
            capsize=4 + bar_widths[i],
            capthick=bar_widths[i],
            label=f"{mark.name}: E[IS] {mark.mean:.1f} +- {mark.mean_ci:.2f}, "
            f"Std {mark.std:.1f} +- {mark.std_ci:.2f}",
            **{k: v for k, v in style.items() if k != "marker"},
        )
    if marks:
        _zoom_to(ax_zoom, marks)
        _note_hidden_intervals(ax_zoom, marks)
    ax_all.set_title(f"Efficient frontier, lambda = {p.lam:g}")
    ax_zoom.set_title("Zoom on the strategies: Monte Carlo estimates with 95 % intervals")
    handles, labels = ax_zoom.get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        loc="outside lower center",
        ncols=2 if len(labels) > 3 else 1,
        fontsize=8,
        title="bps, +- 95 % interval; each strategy has its own marker in both panels",
        title_fontsize=8,
    )
    return fig


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
        se = standard_error(is_, evaluation.antithetic)  # NaN with too few episodes: not drawn
        return cls(
            name=name,
            mean=float(is_.mean()),
            mean_ci=Z95 * se if math.isfinite(se) else 0.0,
            std=float(is_.std(ddof=1)),
            std_ci=Z95 * std_error_of_std(is_),
        )


def _note_hidden_intervals(ax: Any, marks: Sequence[_FrontierMark]) -> None:
    """Say so, under the x axis, where the intervals are narrower than a marker (1 % of the
    axis), with their size."""
    (x_lo, x_hi), (y_lo, y_hi) = ax.get_xlim(), ax.get_ylim()
    notes = [
        f"{what} intervals (at most +- {widest:.2g} bps) are narrower than the markers"
        for what, widest, span in (
            ("E[IS]", max(m.mean_ci for m in marks), y_hi - y_lo),
            ("Std[IS]", max(m.std_ci for m in marks), x_hi - x_lo),
        )
        if widest < 0.01 * span
    ]
    if notes:  # under the axis label, where it covers nothing
        ax.set_xlabel("\n".join([ax.get_xlabel(), *notes]))


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
