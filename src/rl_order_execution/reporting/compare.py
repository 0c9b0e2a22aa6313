"""What `rl-exec compare` prints and writes: one Rich table of the runs' headline numbers,
compare.md, compare.json and compare.png (savings vs TWAP with 95 % intervals, and each agent's
difference from the reference, paired or not)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from rich.console import Console
from rich.table import Table
from rich.text import Text

from rl_order_execution.files import atomic_write, write_json, write_text_atomic
from rl_order_execution.runs.compare import AgentRow, Comparison, Difference, Interval

NA = "n/a"
HEADERS = [
    "run",
    "market",
    "cost savings vs TWAP [95% CI]",
    "IS savings vs TWAP [95% CI]",
    "share of optimum [95% CI]",
    "win rate",
    "VaR 95%",
    "training s",
]


def _num(value: float | None, digits: int = 2) -> str:
    return NA if value is None else f"{value:,.{digits}f}"


def _pct(value: float | None) -> str:
    return NA if value is None else f"{value:.1%}"


def bps_ci(x: Interval) -> str:
    if x.value is None:
        return NA
    if x.low is None or x.high is None:
        return f"{_num(x.value)} (CI {NA})"
    return f"{_num(x.value)} [{_num(x.low)}, {_num(x.high)}]"


def share_ci(x: Interval | None, of: str | None) -> str:
    if x is None or x.value is None:
        return NA
    ci = f"(CI {NA})" if x.low is None or x.high is None else f"[{_pct(x.low)}, {_pct(x.high)}]"
    return f"{_pct(x.value)} {ci}" + (f" of {of}" if of and of != "exact optimum" else "")


def _market(row: AgentRow) -> str:
    run = row.run
    if run.market is None:
        return NA
    return f"{run.price_model} {run.market}"


def _vs(diff: Difference | None) -> tuple[str, str]:
    if diff is None:
        return "reference", ""
    return bps_ci(diff.cost_savings), "paired" if diff.paired else "unpaired"


def rows(comparison: Comparison) -> list[list[str]]:
    """The table's cells, one row per agent of each run."""
    out = []
    for row, diff in zip(comparison.rows, comparison.differences, strict=True):
        out.append(
            [
                row.name,
                _market(row),
                bps_ci(row.cost_savings),
                bps_ci(row.is_savings),
                share_ci(row.share, row.share_of),
                _pct(row.win_rate),
                _num(row.var_95_bps),
                _num(row.training_seconds, 1),
                *_vs(diff),
            ]
        )
    return out


def headers(comparison: Comparison) -> list[str]:
    return [*HEADERS, f"cost savings - {comparison.reference.name}'s [95% CI]", "compared"]


def compare_table(comparison: Comparison) -> Table:
    table = Table(title="Runs compared (bps of Q*P0; savings: positive = cheaper than TWAP)")
    for i, col in enumerate(headers(comparison)):
        table.add_column(col, justify="left" if i < 2 else "right")
    for cells in rows(comparison):
        table.add_row(*(Text(cell) for cell in cells))  # plain text: no Rich markup in names
    return table


def unpaired_notes(comparison: Comparison) -> list[str]:
    """One line per agent compared unpaired, saying why."""
    return [
        f"{row.name}: unpaired ({diff.why_unpaired}); its interval combines the two runs' own "
        "standard errors"
        for row, diff in zip(comparison.rows, comparison.differences, strict=True)
        if diff is not None and not diff.paired
    ]


def compare_markdown(comparison: Comparison, plot: str) -> str:
    head = headers(comparison)
    lines = [
        "# Runs compared",
        "",
        "Costs in bps of Q*P0. Savings vs TWAP are paired within each run (positive = cheaper "
        "than TWAP on the same episodes); win rate: share of episodes whose risk-adjusted cost is "
        "below TWAP's; VaR 95%: 5th percentile of the per-episode IS savings. The last columns "
        f"compare each agent's cost savings with {comparison.reference.name}'s: paired, episode "
        "by episode, when both runs were evaluated on the same market and test episodes; "
        "otherwise unpaired.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
        *("| " + " | ".join(cells) + " |" for cells in rows(comparison)),
        "",
    ]
    notes = unpaired_notes(comparison)
    if notes:
        lines += [*(f"- {note}" for note in notes), ""]
    lines += ["| run | folder |", "|---|---|"]
    runs = {row.run.label: row.run for row in comparison.rows}
    lines += [f"| {label} | `{run.path}` |" for label, run in runs.items()]
    lines += ["", f"![Runs compared]({plot})", ""]
    return "\n".join(lines)


def _errorbars(ax: Axes, y: list[int], values: list[Interval], color: str, filled: bool) -> None:
    for yi, x in zip(y, values, strict=True):
        if x.value is None:
            continue
        low = x.value - x.low if x.low is not None else 0.0
        high = x.high - x.value if x.high is not None else 0.0
        ax.errorbar(
            x.value,
            yi,
            xerr=[[low], [high]],
            fmt="o",
            color=color,
            mfc=color if filled else "white",
            capsize=4,
        )


def plot_compare(comparison: Comparison, path: Path) -> None:
    """Cost and IS savings vs TWAP per agent, and each one's cost savings minus the
    reference's (filled: paired, open: unpaired), all with 95 % intervals."""
    names = [row.name for row in comparison.rows]
    y = list(range(len(names)))[::-1]
    fig, axes = plt.subplots(
        1, 3, figsize=(13, 1.5 + 0.45 * len(names)), sharey=True, layout="constrained"
    )
    _errorbars(axes[0], y, [r.cost_savings for r in comparison.rows], "tab:blue", True)
    _errorbars(axes[1], y, [r.is_savings for r in comparison.rows], "tab:green", True)
    for yi, diff in zip(y, comparison.differences, strict=True):
        if diff is None:
            axes[2].plot(0, yi, marker="*", ms=12, color="black", ls="none")
        else:
            _errorbars(axes[2], [yi], [diff.cost_savings], "tab:purple", diff.paired)
    titles = (
        "cost savings vs TWAP (bps)",
        "IS savings vs TWAP (bps)",
        f"cost savings - {comparison.reference.name}'s (bps)\n(filled: paired, open: unpaired)",
    )
    for ax, title in zip(axes, titles, strict=True):
        low, high = ax.get_xlim()
        if low <= 0 <= high or ax is axes[2]:  # TWAP's (or the reference's) line, when in view
            ax.axvline(0, color="grey", lw=0.8, ls="--")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3, axis="x")
    axes[0].set_yticks(y, names)
    axes[0].set_ylim(-0.7, len(names) - 0.3)
    atomic_write(path, lambda h: fig.savefig(h, format="png", dpi=110))
    plt.close(fig)


def write_comparison(comparison: Comparison, out: Path, console: Console) -> dict[str, Path]:
    """Print the table and the unpaired notes; write compare.md, compare.json, compare.png."""
    console.print(compare_table(comparison))
    for note in unpaired_notes(comparison):
        console.print(f"note: {note}", highlight=False, soft_wrap=True)
    outputs = {
        "table": out / "compare.md",
        "numbers": out / "compare.json",
        "plot": out / "compare.png",
    }
    write_json(outputs["numbers"], comparison.to_json())
    plot_compare(comparison, outputs["plot"])
    write_text_atomic(outputs["table"], compare_markdown(comparison, outputs["plot"].name))
    return outputs
