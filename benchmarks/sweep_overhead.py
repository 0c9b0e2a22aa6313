"""The sweep's overhead: a sweep of 8 cells of at least 20 s each on 2 workers must take, from its
start to its exit, at most 1.15 x (the sum of its cells' training and evaluation seconds) / 2.

Runs the sweep as a user would (a fresh process, a fresh local cluster) into a temporary folder and
prints one JSON object: the wall time, the cells' seconds, the ratio and whether it is within the
limit. `--check` exits 1 when it is not (or when a cell was shorter than 20 s, too short to judge).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
SWEEP = [sys.executable, "-m", "rl_order_execution", "sweep"]  # `rl-exec sweep`
CELLS = 8
WORKERS = 2
LIMIT = 1.15
SHORTEST_CELL = 20.0  # seconds: below this, start-up costs would dominate any sweep


def spec(episodes: int, eval_episodes: int) -> dict[str, Any]:
    """8 cells of the default market and agent, differing only in their seed."""
    return {
        "name": "overhead",
        "markets": ["default"],
        "agents": ["ddqn"],
        "seeds": list(range(1, CELLS + 1)),
        "settings": {
            "rl.episodes": episodes,
            "evaluation.episodes": eval_episodes,
            "logging.progress": False,
        },
    }


def measure(folder: Path, episodes: int, eval_episodes: int) -> dict[str, Any]:
    """Run the sweep in `folder`; its figures."""
    spec_path = folder / "overhead.yaml"
    spec_path.write_text(yaml.safe_dump(spec(episodes, eval_episodes)))
    out = folder / "sweep"
    command = [*SWEEP, str(spec_path), "--workers", str(WORKERS), "--output-dir", str(out)]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"the sweep failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    cells = json.loads((out / "sweep.json").read_text())["cells"]
    seconds = [c["training_seconds"] + c["evaluation_seconds"] for c in cells]
    ideal = sum(seconds) / WORKERS
    return {
        "cells": len(cells),
        "workers": WORKERS,
        "wall_seconds": round(wall, 2),
        "cell_seconds_sum": round(sum(seconds), 2),
        "ideal_seconds": round(ideal, 2),
        "ratio": round(wall / ideal, 4),
        "limit": LIMIT,
        "within_limit": wall / ideal <= LIMIT,
        "shortest_cell_seconds": round(min(seconds), 2),
        "cells_long_enough": min(seconds) >= SHORTEST_CELL,
        "settings": spec(episodes, eval_episodes)["settings"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=5000, help="Training episodes per cell.")
    parser.add_argument("--eval-episodes", type=int, default=10_000, help="Test episodes per cell.")
    parser.add_argument("--keep", type=Path, help="Keep the sweep in this (new) folder.")
    parser.add_argument("--check", action="store_true", help="Exit 1 unless within the limit.")
    args = parser.parse_args()
    if args.keep is not None:
        args.keep.mkdir(parents=True)
        result = measure(args.keep, args.episodes, args.eval_episodes)
    else:
        with tempfile.TemporaryDirectory(prefix="sweep-overhead-") as folder:
            result = measure(Path(folder), args.episodes, args.eval_episodes)
    print(json.dumps(result, indent=2))
    if args.check and not (result["within_limit"] and result["cells_long_enough"]):
        sys.exit(1)


if __name__ == "__main__":
    main()
