"""Sweeps: markets x agents x seeds, one ordinary run folder per cell, on Dask's distributed
scheduler; resumable, with an aggregate (IQM, bootstrap 95 % CI) from the cells' saved results.

`sweep_command` is `rl-exec sweep`; `run_cell` runs one cell in the current process.
"""

from rl_order_execution.sweeps.aggregate import AggregateRow, Estimate, aggregate, iqm_with_ci
from rl_order_execution.sweeps.cell import CellJob, CellSummary, run_cell
from rl_order_execution.sweeps.command import sweep_command
from rl_order_execution.sweeps.report import quality_table
from rl_order_execution.sweeps.spec import SweepError, SweepSpec, SweepSpecError, load_spec

__all__ = [
    "AggregateRow",
    "CellJob",
    "CellSummary",
    "Estimate",
    "SweepError",
    "SweepSpec",
    "SweepSpecError",
    "aggregate",
    "iqm_with_ci",
    "load_spec",
    "quality_table",
    "run_cell",
    "sweep_command",
]
