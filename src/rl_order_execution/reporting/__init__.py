"""What a run leaves behind: the typed documents written as metrics.json and benchmark.json,
Rich tables, PNG plots and report.md, every file written atomically."""

from rl_order_execution.files import atomic_write, write_json, write_text_atomic
from rl_order_execution.reporting.documents import BenchmarkReport, ExactCosts, RunReport
from rl_order_execution.reporting.markdown import markdown_report
from rl_order_execution.reporting.plots import plot_execution, plot_frontier, plot_savings
from rl_order_execution.reporting.tables import (
    benchmark_table,
    metrics_table,
    print_outputs,
    savings_table,
    seeds_table,
    sessions_table,
    splits_table,
)

__all__ = [
    "BenchmarkReport",
    "ExactCosts",
    "RunReport",
    "atomic_write",
    "benchmark_table",
    "markdown_report",
    "metrics_table",
    "plot_execution",
    "plot_frontier",
    "plot_savings",
    "print_outputs",
    "savings_table",
    "seeds_table",
    "sessions_table",
    "splits_table",
    "write_json",
    "write_text_atomic",
]
