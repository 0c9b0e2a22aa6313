"""What a book-market run leaves behind: metrics.json (`BookReport`), the Rich table, report.md and
the policy map (the exact optimum's action over time and inventory beside the agent's)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import BoundaryNorm, ListedColormap, Normalize, TwoSlopeNorm
from matplotlib.patches import Patch
from rich.table import Table

from rl_order_execution.config import Settings
from rl_order_execution.evaluation.book import (
    OPTIMA,
    AdvantageShare,
    BookStrategyMetrics,
)
from rl_order_execution.evaluation.statistics import ExactValues, SeedsSummary
from rl_order_execution.files import atomic_write
from rl_order_execution.market.book import DEFAULTS, BookParams
from rl_order_execution.reporting.provenance import Provenance
from rl_order_execution.reporting.tables import fmt, savings_ci


@dataclass(frozen=True)
class AgentEntry:
    """A trained agent of the run: its kind and the action set it acts on."""

    kind: str
    action_set: str  # "menu" or "continuous"


@dataclass(frozen=True)
class BookReport:
    """metrics.json of `rl-exec run` on the book market."""

    episodes: int
    evaluation_seed: int
    settings: Settings
    market: str  # the market in one line
    reward_unit: float  # learner units per bp
    exact: Mapping[str, ExactValues]  # the references' exact E[IS], E[C] ($)
    advantage_bps: Mapping[str, float]  # exact E[C_TWAP] - E[C_opt] per action set
    strategies: Mapping[str, BookStrategyMetrics]
    agents: Mapping[str, AgentEntry]
    warnings: Sequence[str]
    training: Mapping[str, Any] | None = None
    seeds_summary: SeedsSummary | None = None
    provenance: Provenance | None = None  # where the numbers come from (agent, market, code)

    def agent_share(self, name: str) -> AdvantageShare | None:
        """The share of the optimum of the agent's own action set."""
        return self.strategies[name].share(self.agents[name].action_set)

    def to_json(self) -> dict[str, Any]:
        def share(name: str) -> dict[str, float] | None:
            s = self.agent_share(name)
            return None if s is None else s.to_json()

        out: dict[str, Any] = {
            "episodes": self.episodes,
            "evaluation_seed": self.evaluation_seed,
            "market": self.market,
            "settings": self.settings.model_dump(mode="json"),
            "reward_unit": self.reward_unit,
            "exact": {
                **{f"cost_{n.replace('-', '_')}": e.cost_mean_exact for n, e in self.exact.items()},
                "advantage_bps": dict(self.advantage_bps),
            },
            "strategies": {name: m.to_json() for name, m in self.strategies.items()},
            "agents": {
                name: {
                    "kind": a.kind,
                    "action_set": a.action_set,
                    "optimum": OPTIMA[a.action_set],
                    "advantage_share": share(name),
                }
                for name, a in self.agents.items()
            },
            "warnings": list(self.warnings),
        }
        if self.training is not None:
            out["training"] = dict(self.training)
        if self.seeds_summary is not None:
            out["seeds_summary"] = self.seeds_summary.to_json()
        if self.provenance is not None:
            out["provenance"] = self.provenance.to_json()
        return out


# --- tables -----------------------------------------------------------------------------------


def share_ci(share: AdvantageShare | None) -> str:
    if share is None:
        return "n/a"
    return f"{share.value:.1%} [{share.ci95_low:.1%}, {share.ci95_high:.1%}]"


def _rate(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


HEADERS = (
    "strategy",
    "E[C] exact",
    "cost mean",
    "IS mean",
    "IS std",
    "cost savings vs TWAP [95% CI]",
    "win rate",
    "VaR 95%",
    "share of menu opt. [95% CI]",
    "share of cont. opt. [95% CI]",
    "fill rate",
    "passive share",
)


def rows(report: BookReport) -> list[list[str]]:
    """One row per strategy (bps of Q P0 unless a share)."""
    bps = 1e4 / (report.settings.simulation.total_shares * report.settings.simulation.start_price)
    out = []
    for name, m in report.strategies.items():
        exact = None if m.exact is None else m.exact.cost_mean_exact
        out.append(
            [
                name,
                "" if exact is None else fmt(exact * bps, 4),
                fmt(m.cost.mean_bps, 4),
                fmt(m.is_.mean_bps, 4),
                fmt(m.is_.std_bps, 3),
                savings_ci(m.savings_cost),
                f"{m.savings_cost.win_rate:.1%}",
                fmt(m.savings_cost.var_95_bps, 3),
                share_ci(m.share_menu),
                share_ci(m.share_continuous),
                _rate(m.fill_rate),
                _rate(m.passive_share.mean),
            ]
        )
    return out


def book_table(report: BookReport) -> Table:
    """The console's table of every strategy on the shared test episodes."""
    table = Table(title=f"Book market: {report.episodes:,} shared test episodes (bps of Q*P0)")
    for header in HEADERS:
        table.add_column(header, justify="right")
    for row in rows(report):
        table.add_row(*row)
    return table


def headline(report: BookReport, name: str) -> str:
    """One line: the agent's share of the optimum of its own action set."""
    a = report.agents[name]
    return (
        f"{name} ({a.kind}, {a.action_set} actions) takes {share_ci(report.agent_share(name))} of "
        f"the {OPTIMA[a.action_set]} strategy's advantage over TWAP "
        f"({report.advantage_bps[a.action_set]:.4f} bps exact)"
    )


def _cell(value: Any) -> str:
    """A setting's value in a table cell: lists as lists, not tuples."""
    if isinstance(value, tuple | list):
        return str([_cell(v) if isinstance(v, tuple | list) else v for v in value]).replace("'", "")
    return str(value)


def _md_table(headers: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def book_markdown(report: BookReport, plots: Mapping[str, str]) -> str:
    """report.md of a book run."""
    book = {**DEFAULTS, **report.settings.book}  # the market's settings, defaults included
    head = [] if report.provenance is None else [*report.provenance.header_lines(), ""]
    out = [
        "# Execution report: limit-order book market",
        "",
        *head,
        f"{report.episodes:,} test episodes on shared draws (evaluation seed "
        f"{report.evaluation_seed}). Costs in bps of Q*P0.",
        "",
        f"Market: {report.market}.",
        "",
    ]
    if report.warnings:
        out += ["## Warnings", "", *[f"- {w}" for w in report.warnings], ""]
    out += ["## Agents", "", *[f"- {headline(report, n)}" for n in report.agents], ""]
    if report.training:
        out += ["## Training", ""]
        for name, t in report.training.items():
            out.append(
                f"- {name}: {t['episodes']:,} episodes, {t['updates']:,} gradient updates in "
                f"{t['seconds']:.1f} s; best validation cost savings vs TWAP "
                f"{t['best_validation_bps']:.4f} bps (seed {t['seed']})"
            )
        out.append(
            f"- learner reward: shaped by q (S - P0), the price surprise removed, "
            f"{report.reward_unit:.4g} units per bp (the menu optimum's advantage = 10 units)"
        )
        out.append("")
    out += [
        "## Strategies",
        "",
        _md_table(HEADERS, rows(report)),
        "",
        "E[C] exact: closed form (TWAP) or exact dynamic programming (passive, the optima). "
        "Share of an optimum: (mean C_TWAP - mean C) / (mean C_TWAP - mean C_opt) on these "
        "episodes. Fill rate: limit orders filled / posted; passive share: shares sold by limit "
        "orders / Q. n.s. = not significantly different from TWAP (paired test, 5 %).",
        "",
        "## Book settings",
        "",
        _md_table(["setting", "value"], [[k, _cell(v)] for k, v in book.items()]),
        "",
    ]
    if report.seeds_summary is not None:
        out += ["## Across training seeds", ""]
        for metric, s in report.seeds_summary.items():
            out.append(
                f"- {metric}: mean {s.mean:.4f}, values {', '.join(f'{v:.4f}' for v in s.values)}"
            )
        out.append("")
    out += ["## Plots", ""] + [f"![{title}]({file})" for title, file in plots.items()]
    return "\n".join(out) + "\n"


# --- the policy map ---------------------------------------------------------------------------


def modal_spread(p: BookParams) -> int:
    """Index of the most common spread (its stationary law's mode)."""
    return int(np.argmax(p.stationary_spread))


def plot_policy_map(
    p: BookParams,
    panels: Sequence[tuple[str, np.ndarray]],
    continuous: bool,
    path: Path,
) -> None:
    """Each (title, table (N, G, S, L)) a row of panels, one per imbalance level, at the most
    common spread: the action over time (x) and inventory (y), decisions only (k < N - 1, q > 0).
    Menu tables hold indices, continuous ones SAC's a (< 0 market orders, >= 0 limit depths)."""
    s = modal_spread(p)
    L = len(p.levels)
    fig, axes = plt.subplots(
        len(panels),
        L,
        figsize=(2.6 * L + 1.2, 2.6 * len(panels) + 0.9),
        squeeze=False,
        sharex=True,
        sharey=True,
    )
    steps, q = max(p.N - 1, 1), p.grid[:-1]
    extent = (-0.5, steps - 0.5, q[-1] - p.clip / 2, q[0] + p.clip / 2)
    if continuous:
        low, high = -float(p.max_market), p.max_depth
        cmap = plt.get_cmap("RdBu")  # market orders red, deeper limit orders blue
        norm = TwoSlopeNorm(0.0, low, high) if low < 0 < high else Normalize(low, high)
    else:
        colors = plt.get_cmap("tab10")(np.arange(p.n_actions) % 10)
        cmap = ListedColormap(colors)
        norm = BoundaryNorm(np.arange(p.n_actions + 1) - 0.5, p.n_actions)
    image = None
    for row, (title, table) in enumerate(panels):
        for i in range(L):
            ax = axes[row, i]
            grid = np.asarray(table, dtype=np.float64)[:steps, : len(q), s, i].T  # (G - 1, steps)
            image = ax.imshow(
                grid[::-1],
                aspect="auto",
                origin="lower",
                cmap=cmap,
                norm=norm,
                extent=extent,
                interpolation="nearest",
            )
            if row == 0:
                ax.set_title(f"imbalance {p.levels[i]:+g}", fontsize=10)
            if i == 0:
                ax.set_ylabel(f"{title}\ninventory q", fontsize=9)
            if row == len(panels) - 1:
                ax.set_xlabel("step k")
    spread = p.spreads[s]
    fig.suptitle(
        f"Action by time and inventory at the most common spread ({spread:g} tick"
        f"{'s' if spread != 1 else ''}); agent at S = P0, last move 0",
        fontsize=11,
    )
    if continuous and image is not None:
        bar = fig.colorbar(image, ax=axes, shrink=0.8, pad=0.01)
        bar.set_label(
            "a: < 0 market order of ceil(-a) clips, >= 0 limit order a ticks behind the ask"
        )
    else:
        handles = [Patch(color=cmap(j), label=str(a)) for j, a in enumerate(p.actions)]
        fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False)
        fig.subplots_adjust(bottom=0.16)
    atomic_write(path, lambda h: fig.savefig(h, format="png", dpi=110, bbox_inches="tight"))
    plt.close(fig)
