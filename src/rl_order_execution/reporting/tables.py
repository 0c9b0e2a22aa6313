"""What a run prints: Rich tables of costs, savings and the self-check, and where files went."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
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
    Spread,
    StrategyMetrics,
    VolumeMetrics,
)
from rl_order_execution.strategies.replay import HINDSIGHT


def fmt(value: float | None, digits: int = 2) -> str:
    """A number, or n/a where it is unknown or could not be computed (NaN: too few episodes)."""
    return "n/a" if value is None or not math.isfinite(value) else f"{value:,.{digits}f}"


def savings_ci(stats: Savings) -> str:
    """Average savings in bps with its 95 % interval, marked n.s. when not significant (no mark
    when too few episodes leave the interval unknown)."""
    if not math.isfinite(stats.se):
        return f"{fmt(stats.avg_savings_bps)} (CI n/a)"
    low, high = fmt(stats.ci95_low_bps), fmt(stats.ci95_high_bps)
    text = f"{fmt(stats.avg_savings_bps)} [{low}, {high}]"
    return text if stats.significant else text + " n.s."


def gap_ci(gap: GapCaptured | None) -> str:
    if gap is None:
        return "n/a"
    if not (math.isfinite(gap.ci95_low) and math.isfinite(gap.ci95_high)):
        return f"{percent(gap.value)} (CI n/a)"
    return f"{gap.value:.1%} [{gap.ci95_low:.1%}, {gap.ci95_high:.1%}]"


def gap_note(metrics: Mapping[str, StrategyMetrics]) -> str | None:
    """What the gap captured divides by: the exact optimum's advantage over TWAP on these
    episodes, next to its expectation (their ratio is the test set's luck, which cancels)."""
    gap = next((m.gap_captured for m in metrics.values() if m.gap_captured is not None), None)
    if gap is None:
        return None
    if gap.gap is None:
        return f"gap captured: of the exact optimum's expected advantage, {gap.exact_gap:,.2f} $"
    return (
        f"gap captured: of the exact optimum's advantage on these episodes, {gap.gap:,.2f} $ "
        f"({gap.gap / gap.exact_gap:.1%} of its expected {gap.exact_gap:,.2f} $)"
    )


def metrics_table(
    metrics: Mapping[str, StrategyMetrics], episodes: int, what: str = "shared-shock episodes"
) -> Table:
    """Costs per strategy (bps of Q*P0): shortfall, risk-adjusted cost, gap captured, and
    against the market's volume the columns of `volume_columns`, explained in the caption."""
    volume = volume_columns(metrics)
    notes = [note for note in (gap_note(metrics), VOLUME_NOTE if volume else None) if note]
    table = Table(
        title=f"Costs on {episodes:,} {what} (bps of Q*P0)",
        caption="\n".join(notes) or None,
    )
    for col in ("strategy", "IS mean", "IS std", "cost mean", "cost std", "cost mean $"):
        table.add_column(col, justify="right")
    gap = any(m.gap_captured is not None for m in metrics.values())
    if gap:
        table.add_column("gap captured [95% CI]", justify="right")
    hindsight = any(m.hindsight is not None for m in metrics.values())
    if hindsight:
        table.add_column("hindsight captured [95% CI]", justify="right")
    for col in volume:
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
        row += volume_cells(m, volume)
        table.add_row(*row)
    return table


def percent(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.1%}"


# The two VWAP slippages, named so that neither reads as the other. MODEL.md's VWAP_mkt includes
# our own permanent impact: selling early pushes the later mids, hence VWAP_mkt, down, and a
# front-loaded sale seems to beat a VWAP it depressed itself. The market's VWAP without our
# impact is the benchmark a trader is measured against.
VWAP_EX = "VWAP slip. ex own impact"
VWAP_INCL = "VWAP slip. incl. own impact"
PARTICIPATION_MEAN, PARTICIPATION_MAX = "partic. mean", "partic. max"
VOLUME_NOTE = (
    "VWAP slip.: (VWAP - average sale price) / VWAP in bps, > 0: sold below it. 'ex own "
    "impact': against the market's VWAP with our permanent impact added back, the benchmark a "
    "trader is measured against (our selling cannot move it). 'incl. own impact': against "
    "VWAP_mkt as MODEL.md defines it, which our own selling pushes down: front-loading can look "
    "like beating it. Participation n_k / v_k (mean over the steps; largest per episode), shown "
    "only where it differs between strategies."
)


VolumeCell = Callable[[VolumeMetrics], str]


def volume_columns(metrics: Mapping[str, StrategyMetrics]) -> dict[str, VolumeCell]:
    """Header -> cell of the columns against the market's volume, where every strategy measured
    them: the two VWAP slippages, and participation only where it varies.

    On a market whose volume does not change over the session the mean participation is Q / V
    for every strategy that sells its order (and the largest is the largest trade over V / N,
    no news about the volume): the participation columns appear only when the strategies' mean
    participations differ as shown, and each only when its own cells differ."""
    if not metrics or any(m.volume is None for m in metrics.values()):
        return {}
    columns: dict[str, VolumeCell] = {
        VWAP_EX: lambda v: fmt(_spread_mean(v.vwap_slippage_ex_impact_bps)),
        VWAP_INCL: lambda v: fmt(v.vwap_slippage_bps.mean),
    }
    participation: dict[str, VolumeCell] = {
        PARTICIPATION_MEAN: lambda v: percent(v.participation_mean.mean),
        PARTICIPATION_MAX: lambda v: percent(v.participation_max.mean),
    }
    volumes = [m.volume for m in metrics.values() if m.volume is not None]

    def varies(cell: VolumeCell) -> bool:
        return len({cell(v) for v in volumes}) > 1

    if varies(participation[PARTICIPATION_MEAN]):
        columns |= {header: cell for header, cell in participation.items() if varies(cell)}
    return columns


def volume_cells(m: StrategyMetrics, columns: Mapping[str, VolumeCell]) -> list[str]:
    """One strategy's cells of `volume_columns`."""
    v = m.volume
    return ["n/a" if v is None else cell(v) for cell in columns.values()]


def _spread_mean(spread: Spread | None) -> float | None:
    return None if spread is None else spread.mean


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


def session_rows(
    summary: ReplaySummary, agents: Sequence[str], emphasis: str = "plain"
) -> list[list[str]]:
    """Per test session: mean cost (bps) of TWAP, the references and each agent; an agent's
    cell says 'won' or 'lost' against TWAP that day, and marks the agent's best session (the
    most it saved vs TWAP) and its worst (the most it lost). `emphasis` also styles the marked
    cells: "rich" (console markup) or "markdown" (bold)."""
    names = session_headers(summary, agents)[2:]
    marks: dict[tuple[int, str], str] = {}
    for agent in agents:
        extremes = session_extremes(summary, agent)
        if extremes is not None:
            marks[extremes[0], agent], marks[extremes[1], agent] = BEST, WORST
    rows = []
    for i, day in enumerate(summary.sessions):
        cells = [day.date, str(day.windows)]
        for name in names:
            text = fmt(day.cost_bps[name])
            if name in agents:
                margin = day.cost_bps["twap"] - day.cost_bps[name]
                text += " won" if margin > 0 else " lost" if margin < 0 else " tie"
                if (mark := marks.get((i, name))) is not None:
                    text = _emphasised(f"{text} ({mark})", mark, emphasis)
            cells.append(text)
        rows.append(cells)
    return rows


BEST, WORST = "best", "worst"
SESSIONS_NOTE = (
    "won/lost: vs TWAP that session; (best)/(worst): the agent's session with the largest "
    "saving vs TWAP / the largest loss"
)


def session_extremes(summary: ReplaySummary, agent: str) -> tuple[int, int] | None:
    """The indices of the agent's best session (largest saving vs TWAP, the first of equals)
    and worst (largest loss); None with fewer than two sessions or the same margin in each."""
    margins = [day.cost_bps["twap"] - day.cost_bps[agent] for day in summary.sessions]
    if len(margins) < 2 or max(margins) == min(margins):
        return None
    return margins.index(max(margins)), margins.index(min(margins))


def _emphasised(text: str, mark: str, emphasis: str) -> str:
    if emphasis == "rich":
        return f"[bold {'green' if mark == BEST else 'red'}]{text}[/]"
    if emphasis == "markdown":
        return f"**{text}**"
    return text


MAX_SESSION_ROWS = 40  # more test sessions than this: the console shows the extremes


def sessions_table(summary: ReplaySummary, agents: Sequence[str]) -> Table:
    """Which test sessions each agent won and lost against TWAP (mean cost, bps), each agent's
    best and worst marked. With many sessions, only those where the first agent won or lost
    most, and every agent's best and worst (report.md has them all)."""
    rows = session_rows(summary, agents, emphasis="rich")
    title = f"Risk-adjusted cost per test session (bps; {SESSIONS_NOTE})"
    if len(rows) > MAX_SESSION_ROWS and agents:
        first = agents[0]
        margin = [day.cost_bps["twap"] - day.cost_bps[first] for day in summary.sessions]
        order = sorted(range(len(rows)), key=lambda i: margin[i])
        half = MAX_SESSION_ROWS // 2
        extremes = {i for agent in agents for i in session_extremes(summary, agent) or ()}
        shown = sorted(set(order[:half] + order[-half:]) | extremes)
        won = sum(m > 0 for m in margin)
        title += (
            f": {first} won {won:,} of {len(rows):,} sessions; its {half} best and {half} worst "
            "shown (report.md lists every session)"
        )
        if len(shown) > MAX_SESSION_ROWS:
            title += ", with the other agents' best and worst"
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
