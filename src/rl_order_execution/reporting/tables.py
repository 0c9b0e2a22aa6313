"""What a run prints: Rich tables of costs, savings and the self-check, and where files went."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from rl_order_execution.evaluation.replay import ReplaySummary
from rl_order_execution.evaluation.selfcheck import Check
from rl_order_execution.evaluation.statistics import (
    Z95,
    AcrossSeeds,
    GapCaptured,
    Savings,
    SeedsSummary,
    StrategyMetrics,
)
from rl_order_execution.strategies.replay import HINDSIGHT


def fmt(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def savings_ci(stats: Savings) -> str:
    """Average savings in bps with its 95 % interval, marked n.s. when not significant."""
    low, high = fmt(stats.ci95_low_bps), fmt(stats.ci95_high_bps)
    text = f"{fmt(stats.avg_savings_bps)} [{low}, {high}]"
    return text if stats.significant else text + " n.s."


def gap_ci(gap: GapCaptured | None) -> str:
    if gap is None:
        return "n/a"
    return f"{gap.value:.1%} [{gap.ci95_low:.1%}, {gap.ci95_high:.1%}]"


def metrics_table(
    metrics: Mapping[str, StrategyMetrics], episodes: int, what: str = "shared-shock episodes"
) -> Table:
    """Costs per strategy (bps of Q*P0): shortfall, risk-adjusted cost, gap captured."""
    table = Table(title=f"Costs on {episodes:,} {what} (bps of Q*P0)")
    for col in ("strategy", "IS mean", "IS std", "cost mean", "cost std", "cost mean $"):
        table.add_column(col, justify="right")
    gap = any(m.gap_captured is not None for m in metrics.values())
    if gap:
        table.add_column("gap captured [95% CI]", justify="right")
    hindsight = any(m.hindsight is not None for m in metrics.values())
    if hindsight:
        table.add_column("hindsight captured [95% CI]", justify="right")
    volume = all(m.volume is not None for m in metrics.values())
    for col in VOLUME_HEADERS if volume else []:
        table.add_column(col, justify="right")
    for name, m in metrics.items():
        row = [
            name,
            fmt(m.is_.mean_bps),
            fmt(m.is_.std_bps),
            fmt(m.cost.mean_bps),
            fmt(m.cost.std_bps),
            fmt(m.cost.mean),
        ]
        if gap:
            row.append(gap_ci(m.gap_captured))
        if hindsight:
            row.append(gap_ci(m.hindsight) if name != HINDSIGHT else "bound")
        if volume:
            row += volume_cells(m)
        table.add_row(*row)
    return table


VOLUME_HEADERS = ["VWAP slippage", "partic. mean", "partic. max"]


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def volume_cells(m: StrategyMetrics) -> list[str]:
    """Mean VWAP slippage (bps of the market's VWAP, positive: sold below it), mean participation
    and the mean over episodes of each episode's largest participation."""
    if m.volume is None:
        return ["n/a"] * len(VOLUME_HEADERS)
    v = m.volume
    slippage, mean = fmt(v.vwap_slippage_bps.mean), percent(v.participation_mean.mean)
    return [slippage, mean, percent(v.participation_max.mean)]


def savings_table(metrics: Mapping[str, StrategyMetrics], baseline: str = "twap") -> Table:
    """Paired savings vs the baseline per strategy (bps; positive = cheaper than the baseline)."""
    table = Table(title=f"Savings vs {baseline.upper()}, paired per episode (bps)")
    for col in ("strategy", "IS savings [95% CI]", "IR", "win rate", "VaR 95%", "VaR 99%"):
        table.add_column(col, justify="right")
    for col in ("CVaR 95%", "IS std"):
        table.add_column(col, justify="right")
    table.add_column("cost savings [95% CI]", justify="right")
    table.add_column("cost win rate", justify="right")
    for name, m in metrics.items():
        if name == baseline:
            continue
        si, sc = m.savings_is, m.savings_cost
        table.add_row(
            name,
            savings_ci(si),
            fmt(si.information_ratio, 3),
            f"{si.win_rate:.1%}",
            fmt(si.var_95_bps),
            fmt(si.var_99_bps),
            fmt(si.cvar_95_bps),
            fmt(m.is_.std_bps),
            savings_ci(sc),
            f"{sc.win_rate:.1%}",
        )
    return table


SEEDS_METRICS = {"cost_savings_bps": "cost savings vs TWAP (bps)", "gap_captured": "gap captured"}
SEEDS_HEADERS = ["metric", "mean", "IQM", "bootstrap 95% CI", "per seed"]


def seeds_rows(summary: SeedsSummary) -> list[list[str]]:
    """One row per metric across training seeds; shares in percent, savings in bps."""
    return [_seeds_row(metric, s) for metric, s in summary.items()]


def _seeds_row(metric: str, s: AcrossSeeds) -> list[str]:
    def shown(x: float) -> str:
        return f"{x:.1%}" if metric == "gap_captured" else fmt(x)

    ci = (
        f"[{shown(s.ci95_low)}, {shown(s.ci95_high)}]"
        if s.ci95_meaningful
        else f"not meaningful with {len(s.values)} seeds"
    )
    per_seed = ", ".join(shown(x) for x in s.values)
    return [SEEDS_METRICS.get(metric, metric), shown(s.mean), shown(s.iqm), ci, per_seed]


def seeds_table(summary: SeedsSummary) -> Table:
    """The agents' results across their training seeds."""
    seeds = len(summary.cost_savings_bps.values)
    table = Table(title=f"Across {seeds} training seeds")
    for col in SEEDS_HEADERS:
        table.add_column(col, justify="left" if col == "metric" else "right")
    for row in seeds_rows(summary):
        table.add_row(*row)
    return table


SPLIT_HEADERS = ["split", "first date", "last date", "sessions", "windows"]


def split_rows(summary: ReplaySummary) -> list[list[str]]:
    return [
        [s.name, s.first or "-", s.last or "-", f"{s.sessions:,}", f"{s.windows:,}"]
        for s in summary.splits
    ]


def impact_line(summary: ReplaySummary) -> str:
    """The impact a replayed market ran with, in one sentence."""
    i = summary.impact
    relative = "" if i.eta is None else f"eta {i.eta:.4g}, gamma {i.gamma:.4g}, "
    return (
        f"Impact in {i.units} units: sigma_day {i.sigma_day:.4%} (training sessions), "
        f"{relative}alpha {i.alpha:.4g} $ per share, lambda {i.lam:.4g}; TWAP's temporary cost "
        f"at the mean bar {i.twap_temporary_cost_bps:.3g} bps."
    )


def splits_table(summary: ReplaySummary) -> Table:
    """The replayed data's time-ordered splits: dates, sessions and windows of each, with the
    impact the market ran with as its caption."""
    table = Table(
        title=f"Replayed bars: {summary.source} (sigma {summary.sigma:.3g} per bar, from the "
        "training sessions)",
        caption=impact_line(summary),
    )
    for col in SPLIT_HEADERS:
        table.add_column(col, justify="left" if col == "split" else "right")
    for row in split_rows(summary):
        table.add_row(*row)
    return table


def session_headers(summary: ReplaySummary, agents: Sequence[str]) -> list[str]:
    shown = [n for n in ("twap", "vwap", "calibrated-optimal") if n in _names(summary)]
    return ["date", "windows", *shown, *agents]


def _names(summary: ReplaySummary) -> list[str]:
    return list(summary.sessions[0].cost_bps) if summary.sessions else []


def session_rows(summary: ReplaySummary, agents: Sequence[str]) -> list[list[str]]:
    """Per test session: mean cost (bps) of TWAP, the references and each agent; an agent's
    cell says 'won' or 'lost' against TWAP that day."""
    names = session_headers(summary, agents)[2:]
    rows = []
    for day in summary.sessions:
        cells = [day.date, str(day.windows)]
        for name in names:
            text = fmt(day.cost_bps[name])
            if name in agents:
                margin = day.cost_bps["twap"] - day.cost_bps[name]
                text += " won" if margin > 0 else " lost" if margin < 0 else " tie"
            cells.append(text)
        rows.append(cells)
    return rows


MAX_SESSION_ROWS = 40  # more test sessions than this: the console shows the extremes


def sessions_table(summary: ReplaySummary, agents: Sequence[str]) -> Table:
    """Which test sessions each agent won and lost against TWAP (mean cost, bps). With many
    sessions, only those where the first agent won or lost most (report.md has them all)."""
    rows = session_rows(summary, agents)
    title = "Risk-adjusted cost per test session (bps; won/lost: vs TWAP)"
    if len(rows) > MAX_SESSION_ROWS and agents:
        first = agents[0]
        margin = [day.cost_bps["twap"] - day.cost_bps[first] for day in summary.sessions]
        order = sorted(range(len(rows)), key=lambda i: margin[i])
        half = MAX_SESSION_ROWS // 2
        shown = sorted(order[:half] + order[-half:])
        won = sum(m > 0 for m in margin)
        title += (
            f": {first} won {won:,} of {len(rows):,} sessions; its {half} best and {half} worst "
            "shown (report.md lists every session)"
        )
        rows = [rows[i] for i in shown]
    table = Table(title=title)
    for col in session_headers(summary, agents):
        table.add_column(col, justify="left" if col == "date" else "right")
    for row in rows:
        table.add_row(*row)
    return table


def benchmark_table(checks: Sequence[Check], episodes: int) -> Table:
    """Closed form next to Monte Carlo (95 % CI) for each reference strategy, in $."""
    table = Table(title=f"Self-check: exact vs Monte Carlo on {episodes:,} episodes ($)")
    for col in ("strategy", "E[IS] exact", "E[IS] MC [95% CI]", "Std[IS] exact", "Std[IS] MC"):
        table.add_column(col, justify="right")
    for col in ("E[C] exact", "E[C] MC [95% CI]", "max |z|", "check"):
        table.add_column(col, justify="right")
    for c in checks:
        zs = c.z_scores
        table.add_row(
            c.name,
            fmt(c.exact.is_mean_exact),
            _mc(c.is_mean, c.is_se),
            fmt(c.exact.is_std_exact),
            fmt(c.is_std),
            fmt(c.exact.cost_mean_exact),
            _mc(c.cost_mean, c.cost_se),
            fmt(max(zs), 2) if zs else "n/a",
            "[green]ok[/green]" if c.ok else "[red]MISMATCH[/red]",
        )
    return table


def _mc(mean: float, se: float) -> str:
    return f"{mean:,.2f} [{mean - Z95 * se:,.2f}, {mean + Z95 * se:,.2f}]"


def print_outputs(console: Console, outputs: Mapping[str, Path]) -> None:
    """Where everything went, one line each, never truncated."""
    console.print("[bold]Outputs[/bold]")
    for what, where in outputs.items():
        console.print(f"  {what:<16} {where}", soft_wrap=True, highlight=False)
