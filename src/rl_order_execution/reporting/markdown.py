"""report.md: a run's settings, costs, savings vs TWAP, gap captured, seeds summary and plots."""

from __future__ import annotations

from collections.abc import Mapping

from rl_order_execution.reporting.documents import RunReport
from rl_order_execution.reporting.tables import fmt, gap_ci, savings_ci


def _md_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def markdown_report(report: RunReport, plots: Mapping[str, str]) -> str:
    sim = report.settings.simulation.model_dump(mode="json")
    out = [
        "# Execution report",
        "",
        f"{report.episodes:,} test episodes with shared price shocks "
        f"(evaluation seed {report.evaluation_seed}). Costs in bps of Q*P0.",
        "",
        "## Market",
        "",
        _md_table(["setting", "value"], [[k, str(v)] for k, v in sim.items()]),
        "",
        "## Costs",
        "",
    ]
    rows = [
        [
            name,
            fmt(m.is_.mean_bps),
            fmt(m.is_.std_bps),
            fmt(m.cost.mean_bps),
            savings_ci(m.savings_is),
            savings_ci(m.savings_cost),
            f"{m.savings_cost.win_rate:.1%}",
            gap_ci(m.gap_captured),
        ]
        for name, m in report.strategies.items()
    ]
    headers = ["strategy", "IS mean", "IS std", "cost mean", "IS savings vs TWAP [95% CI]"]
    headers += ["cost savings vs TWAP [95% CI]", "cost win rate", "gap captured [95% CI]"]
    out += [
        _md_table(headers, rows),
        "",
        "n.s. = not significantly different from TWAP (paired test, 5 %).",
        "",
        "## Tails of the IS savings vs TWAP (bps, per episode)",
        "",
        _md_table(
            ["strategy", "IS std", "VaR 95%", "VaR 99%", "CVaR 95%"],
            [
                [
                    name,
                    fmt(m.is_.std_bps),
                    fmt(m.savings_is.var_95_bps),
                    fmt(m.savings_is.var_99_bps),
                    fmt(m.savings_is.cvar_95_bps),
                ]
                for name, m in report.strategies.items()
            ],
        ),
    ]
    if report.seeds_summary is not None:
        out += ["", "## Across training seeds", ""]
        out += [
            _md_table(
                ["metric", "mean", "IQM", "bootstrap 95% CI", "per seed"],
                [
                    [
                        metric,
                        fmt(s.mean, 4),
                        fmt(s.iqm, 4),
                        f"[{fmt(s.ci95_low, 4)}, {fmt(s.ci95_high, 4)}]",
                        ", ".join(fmt(x, 4) for x in s.values),
                    ]
                    for metric, s in report.seeds_summary.items()
                ],
            )
        ]
    if report.warnings:
        out += ["", "## Warnings", ""] + [f"- {w}" for w in report.warnings]
    out += ["", "## Plots", ""] + [f"![{title}]({file})" for title, file in plots.items()]
    return "\n".join(out) + "\n"
