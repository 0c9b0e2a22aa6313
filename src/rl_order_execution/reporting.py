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

from rl_order_execution.evaluation import Z95, Evaluation, standard_error


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


def print_outputs(console: Console, outputs: Mapping[str, Path]) -> None:
    """Where everything went, one line each, never truncated."""
    console.print("[bold]Outputs[/bold]")
    for what, where in outputs.items():
        console.print(f"  {what:<16} {where}", soft_wrap=True, highlight=False)


def plot_frontier(
    evaluation: Evaluation,
    curve: list[tuple[float, float, float]],
    path: Path,
    points: list[str],
) -> None:
    """E[IS] vs Std[IS]: the Almgren-Chriss frontier and strategies' Monte Carlo estimates."""
    p = evaluation.params
    fig, ax = plt.subplots(figsize=(8, 6))
    std = np.array([c[2] for c in curve]) * p.bps
    mean = np.array([c[1] for c in curve]) * p.bps
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


def benchmark_table(checks: list[Any], episodes: int) -> Table:
    """Closed form next to Monte Carlo (95 % CI) for each reference strategy, in $."""
    table = Table(title=f"Self-check: exact vs Monte Carlo on {episodes:,} episodes ($)")
    for col in ("strategy", "E[IS] exact", "E[IS] MC [95% CI]", "Std[IS] exact", "Std[IS] MC"):
        table.add_column(col, justify="right")
    for col in ("E[C] exact", "E[C] MC [95% CI]", "max |z|", "check"):
        table.add_column(col, justify="right")
    for c in checks:
        v = c.values
        zs = [abs(z) for k in ("z_is_mean", "z_is_std", "z_cost_mean") if (z := v[k]) is not None]
        table.add_row(
            c.name,
            _fmt(v["is_mean_exact"]),
            _mc(v["is_mean"], v["is_se"]),
            _fmt(v["is_std_exact"]),
            _fmt(v["is_std"]),
            _fmt(v["cost_mean_exact"]),
            _mc(v["cost_mean"], v["cost_se"]),
            _fmt(max(zs), 2) if zs else "n/a",
            "[green]ok[/green]" if c.ok else "[red]MISMATCH[/red]",
        )
    return table


def _mc(mean: float, se: float) -> str:
    return f"{mean:,.2f} [{mean - Z95 * se:,.2f}, {mean + Z95 * se:,.2f}]"


def _md_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def markdown_report(data: Mapping[str, Any], plots: Mapping[str, str]) -> str:
    """report.md: settings, costs, savings vs TWAP, gap captured, seeds summary, plots."""
    sim = data["settings"]["simulation"]
    out = [
        "# Execution report",
        "",
        f"{data['episodes']:,} test episodes with shared price shocks "
        f"(evaluation seed {data['evaluation_seed']}). Costs in bps of Q*P0.",
        "",
        "## Market",
        "",
        _md_table(["setting", "value"], [[k, str(v)] for k, v in sim.items()]),
        "",
        "## Costs",
        "",
    ]
    rows = []
    for name, m in data["strategies"].items():
        g = m.get("gap_captured")
        gap = "n/a" if not g else f"{g['value']:.1%} [{g['ci95_low']:.1%}, {g['ci95_high']:.1%}]"
        sc = m["savings_cost"]
        rows.append(
            [
                name,
                _fmt(m["is_mean_bps"]),
                _fmt(m["is_std_bps"]),
                _fmt(m["cost_mean_bps"]),
                _ci(m["savings_is"]),
                _ci(sc),
                f"{sc['win_rate']:.1%}",
                gap,
            ]
        )
    headers = ["strategy", "IS mean", "IS std", "cost mean", "IS savings vs TWAP [95% CI]"]
    headers += ["cost savings vs TWAP [95% CI]", "cost win rate", "gap captured [95% CI]"]
    out += [
        _md_table(headers, rows),
        "",
        "n.s. = not significantly different from TWAP (paired test, 5 %).",
    ]
    if "seeds_summary" in data:
        s = data["seeds_summary"]
        out += ["", "## Across training seeds", ""]
        out += [
            _md_table(
                ["metric", "mean", "IQM", "bootstrap 95% CI", "per seed"],
                [
                    [
                        key,
                        _fmt(v["mean"], 4),
                        _fmt(v["iqm"], 4),
                        f"[{_fmt(v['ci95_low'], 4)}, {_fmt(v['ci95_high'], 4)}]",
                        ", ".join(_fmt(x, 4) for x in v["values"]),
                    ]
                    for key, v in s.items()
                ],
            )
        ]
    if data.get("warnings"):
        out += ["", "## Warnings", ""] + [f"- {w}" for w in data["warnings"]]
    out += ["", "## Plots", ""] + [f"![{title}]({file})" for title, file in plots.items()]
    return "\n".join(out) + "\n"
