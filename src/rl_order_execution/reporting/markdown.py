"""report.md: a run's settings, costs, savings vs TWAP, gap captured, seeds summary and plots."""

from __future__ import annotations

from collections.abc import Mapping

from rl_order_execution.evaluation.replay import verdicts
from rl_order_execution.reporting.documents import RunReport
from rl_order_execution.reporting.tables import (
    SEEDS_HEADERS,
    SESSIONS_NOTE,
    SPLIT_HEADERS,
    VOLUME_NOTE,
    fmt,
    gap_ci,
    gap_note,
    impact_line,
    savings_ci,
    seeds_rows,
    session_headers,
    session_rows,
    split_rows,
    volume_cells,
    volume_columns,
)


def _md_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _warnings(report: RunReport) -> list[str]:
    """Warnings first: nobody should read a gap captured without them."""
    if not report.warnings:
        return []
    return ["## Warnings", "", *(f"- **warning:** {w}" for w in report.warnings), ""]


def _training(report: RunReport) -> list[str]:
    """Per agent: episodes asked and trained, gradient updates, time, validation savings."""
    if not report.training:
        return []
    headers = ["agent", "seed", "episodes asked", "episodes trained", "gradient updates"]
    headers += ["seconds", "best validation savings (bps)", "untrained network (bps)"]
    rows = [
        [
            name,
            str(t.get("seed", "n/a")),
            f"{t['episodes_asked']:,}" if "episodes_asked" in t else "n/a",
            f"{t['episodes']:,}",
            f"{t['updates']:,}",
            fmt(t["seconds"], 1),
            fmt(t["best_validation_bps"]),
            fmt(t.get("initial_validation_bps")),
        ]
        for name, t in report.training.items()
    ]
    return ["## Training", "", _md_table(headers, rows), ""]


def _volume(report: RunReport) -> list[str]:
    """VWAP slippage against the market's VWAP without our own impact (with its paired savings
    vs TWAP's) and against MODEL.md's VWAP_mkt, labelled apart, and participation where it
    varies (`volume_columns`)."""
    columns = volume_columns(report.strategies)
    if not columns:
        return []
    saved = "VWAP slip. ex own impact saved vs TWAP [95% CI]"
    headers = ["strategy", *columns]
    headers.insert(2, saved)
    rows = []
    for name, m in report.strategies.items():
        cells = [name, *volume_cells(m, columns)]
        savings = None if m.volume is None else m.volume.savings_vwap_slippage_ex_impact
        cells.insert(2, "n/a" if savings is None else savings_ci(savings))
        rows.append(cells)
    return [
        "",
        "## Against the market's volume",
        "",
        _md_table(headers, rows),
        "",
        VOLUME_NOTE,
    ]


def _replay(report: RunReport) -> list[str]:
    """The replayed bars: their splits and the share of the hindsight bound's advantage."""
    if report.replay is None:
        return []
    r = report.replay
    rows = [[name, gap_ci(m.hindsight)] for name, m in report.strategies.items() if m.hindsight]
    agents = [n for n in report.strategies if n.startswith("agent")]
    lines = [f"- {line}" for line in verdicts(dict(report.strategies), agents)]
    return [
        "## Replayed bars",
        "",
        f"Data: `{r.source}`; sigma {r.sigma:.4g} per bar (training sessions, ddof 1); "
        f"validation and test windows start every {r.stride} bars of a session.",
        "",
        impact_line(r),
        "",
        _md_table(SPLIT_HEADERS, split_rows(r)),
        "",
        "Share of the hindsight schedule's advantage over TWAP, (mean C_TWAP - mean C) / "
        "(mean C_TWAP - mean C_hindsight). The hindsight schedule knows each window's path in "
        "advance: a look-ahead bound, not a strategy.",
        "",
        _md_table(["strategy", "hindsight captured [95% CI]"], rows),
        "",
        *lines,
        "",
    ]


def _sessions(report: RunReport) -> list[str]:
    if report.replay is None:
        return []
    agents = [n for n in report.strategies if n.startswith("agent")]
    r = report.replay
    return [
        "",
        "## Per test session",
        "",
        f"Mean risk-adjusted cost (bps) of the session's test windows; {SESSIONS_NOTE} (bold).",
        "",
        _md_table(session_headers(r, agents), session_rows(r, agents, emphasis="markdown")),
    ]


def markdown_report(report: RunReport, plots: Mapping[str, str]) -> str:
    sim = report.settings.simulation.model_dump(mode="json")
    shocks = "replayed test windows" if report.replay else "test episodes with shared price shocks"
    seed = "" if report.replay else f" (evaluation seed {report.evaluation_seed})"
    head = [] if report.provenance is None else [*report.provenance.header_lines(), ""]
    out = [
        "# Execution report",
        "",
        *head,
        f"{report.episodes:,} {shocks}{seed}. Costs in bps of Q*P0.",
        "",
        *_warnings(report),
        *_training(report),
        "## Market",
        "",
        _md_table(["setting", "value"], [[k, str(v)] for k, v in sim.items()]),
        "",
        *_replay(report),
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
        *([f"{note}.", ""] if (note := gap_note(report.strategies)) else []),
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
        *_volume(report),
        *_sessions(report),
    ]
    if report.seeds_summary is not None:
        out += ["", "## Across training seeds", ""]
        out += [_md_table(SEEDS_HEADERS, seeds_rows(report.seeds_summary))]
    out += ["", "## Plots", ""] + [f"![{title}]({file})" for title, file in plots.items()]
    return "\n".join(out) + "\n"
