"""`python -m rl_order_execution.sweeps SPEC.yaml`: the sweep without the rl-exec CLI (the
overhead benchmark and the tests start it this way)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from rl_order_execution.sweeps.command import sweep_command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rl_order_execution.sweeps")
    parser.add_argument("spec", type=Path, help="The sweep's YAML spec.")
    parser.add_argument("--workers", type=int, help="Local worker processes (default: CPUs).")
    parser.add_argument("--scheduler", help="Address of an existing Dask scheduler.")
    parser.add_argument("--output-dir", type=Path, help="The sweep folder.")
    parser.add_argument("--retries", type=int, default=2, help="Retries per cell (default 2).")
    args = parser.parse_args(argv)
    console = Console()
    if not console.is_terminal:
        console.width = 200
    return sweep_command(
        args.spec, args.workers, args.scheduler, args.output_dir, args.retries, console
    )


if __name__ == "__main__":
    sys.exit(main())
