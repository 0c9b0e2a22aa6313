"""`make quality`: the default agent on every market in benchmarks/markets/, K training seeds each.

Every market x agent x seed is a cell of one sweep on Dask's distributed scheduler (`rl-exec
sweep`, --workers processes; an interrupted call resumes with its finished cells); each cell
trains what `rl-exec run --config benchmarks/markets/<name>.yaml --seeds K` trains. Then a table of
the share of the exact optimum's advantage over TWAP that the agents capture (per seed, mean,
interquartile mean, bootstrap 95 % interval), the best discrete policy's share where it applies
(martingale prices: the ceiling of the agent's action grid), VWAP's share on markets with a volume
profile, and that of the exact optimum rounded to the action grid. On replayed bars (no exact
optimum) the share is of the hindsight schedule's advantage, next to the calibrated optimum's.
Writes benchmarks/quality.json (with --out DIR: the runs and quality.json in DIR, nothing else).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

import torch
import yaml
from rich.console import Console
from rich.table import Table

from rl_order_execution.config import Settings, load_settings
from rl_order_execution.evaluation import AcrossSeeds, across_seeds, optimum_gap
from rl_order_execution.experiment import evaluate_strategies, seed_list
from rl_order_execution.files import write_text_atomic
from rl_order_execution.market import MarketParams
from rl_order_execution.reporting import write_json
from rl_order_execution.strategies import TWAP, OptimalStrategy, SnappedOptimalStrategy, Strategy
from rl_order_execution.sweeps.aggregate import read_cell
from rl_order_execution.sweeps.command import sweep_command

HERE = Path(__file__).parent
RESULTS = HERE / "quality.json"
RUNS = Path("output/quality")


def output_paths(out: Path | None) -> tuple[Path, Path]:
    """Where the runs and quality.json go: both under --out when it is given (nothing else is
    written), otherwise the runs in output/quality and the results in benchmarks/quality.json."""
    return (RUNS, RESULTS) if out is None else (out, out / "quality.json")


def run_sweep(
    configs: list[Path], agents: list[str], seeds: int, out_root: Path, workers: int
) -> Path:
    """Every market x agent x seed as one cell of a sweep on Dask (`rl-exec sweep`), in
    out_root/sweep; finished cells of an earlier, interrupted call are kept. The seeds are those
    `rl-exec run --seeds K` splits from each market's master seed, so each cell trains the
    agent that run trains, evaluated on the same test episodes."""
    masters = {
        load_settings(None, c, None, require_config=True)[0].simulation.seed for c in configs
    }
    if len(masters) != 1:
        raise SystemExit(f"the market files set different master seeds {sorted(masters)}")
    spec = {
        "name": "quality",
        "markets": [str(c.resolve()) for c in configs],
        "agents": agents,
        "seeds": seed_list(masters.pop(), seeds),
        "settings": {"logging.progress": False},
    }
    out_root.mkdir(parents=True, exist_ok=True)
    spec_path = out_root / "quality-sweep.yaml"  # rewritten by every call; the folder records it
    write_text_atomic(spec_path, yaml.safe_dump(spec, sort_keys=False))
    # one sweep folder per set of cells: a later call on other markets or agents starts its own
    key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:8]
    sweep_dir = out_root / f"sweep-{key}"
    code = sweep_command(spec_path, workers, None, sweep_dir, 2, Console())
    if code not in (0, 1):  # 1: some cell failed after its retries; its market reads n/a
        raise SystemExit(code)
    return sweep_dir


def market_results(sweep_dir: Path, config: Path, agent: str, seeds: list[int]) -> dict[str, Any]:
    """One market x agent row from its cells' saved metrics.json."""
    cells = []
    for seed in seeds:
        folder = sweep_dir / "cells" / f"{config.stem}-{agent}-seed{seed}"
        if (folder / "metrics.json").is_file():
            cells.append(read_cell(folder, config.stem, agent, seed))
    shares = [c.share for c in cells] + [None] * (len(seeds) - len(cells))
    first = cells[0].references if cells else {}
    kinds = {c.share_kind for c in cells if c.share_kind is not None}
    return {
        "share": kinds.pop() if len(kinds) == 1 else None,
        "shares": shares,
        "best_discrete": first.get("best-discrete"),
        "vwap": first.get("vwap"),
        "calibrated": first.get("calibrated-optimal"),
        "seconds": sum(c.training_seconds + c.evaluation_seconds for c in cells) or None,
    }


def snapped_share(config: Path) -> float | None:
    """Share captured by the exact optimum rounded to the grid, on the same test episodes."""
    settings, _ = load_settings(None, config, None, require_config=True)
    if settings.simulation.price_model in ("replay", "book"):  # no speed schedule to round
        return None
    p = MarketParams.of(settings)
    strategies: list[Strategy] = [TWAP(), OptimalStrategy(), SnappedOptimalStrategy()]  # paired
    metrics = evaluate_strategies(settings, p, strategies).metrics(exact_gap=optimum_gap(p))
    gap = metrics["optimal-snapped"].gap_captured
    return None if gap is None else gap.value


def _summary(shares: list[float | None]) -> AcrossSeeds | None:
    """Across-seed statistics of the shares (None where a share is undefined)."""
    values = [s for s in shares if s is not None]
    return across_seeds(values, 0) if values and len(values) == len(shares) else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="Folder for the runs and quality.json (default: output/quality and "
        "benchmarks/quality.json).",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="Kept for old scripts: finished cells in --out are always reused (a sweep resumes).",
    )
    parser.add_argument("--workers", type=int, default=2, help="Dask worker processes.")
    parser.add_argument("--agents", default="ddqn,ppo,sac", help="Agent kinds, comma-separated.")
    parser.add_argument("markets", nargs="*", help="Market names (default: all).")
    args = parser.parse_args()
    torch.set_num_threads(1)
    console = Console()
    configs = sorted((HERE / "markets").glob("*.yaml"))
    if args.markets:
        configs = [c for c in configs if c.stem in args.markets]
    results: dict[str, Any] = {"seeds": args.seeds, "markets": {}}
    runs, results_path = output_paths(args.out)
    if args.markets and results_path.is_file():  # a subset updates its markets, keeps the others
        earlier = json.loads(results_path.read_text())
        if earlier.get("seeds") == args.seeds:
            results["markets"] = earlier.get("markets", {})
    table = Table(
        title=f"Share of the exact optimum's advantage captured ({args.seeds} seeds; replayed "
        "bars: of the hindsight schedule's)"
    )
    columns = ["market", "per seed", "mean", "IQM", "bootstrap 95% CI", "grid best", "VWAP"]
    columns += ["snapped", "calibrated", "s"]
    for col in columns:
        table.add_column(col, justify="right")
    rows = [(c, a) for c in configs for a in args.agents.split(",")]
    sweep_dir = run_sweep(configs, args.agents.split(","), args.seeds, runs, args.workers)
    seeds = seed_list(Settings().simulation.seed, args.seeds)
    for config, agent in rows:  # one row per market x agent; the Double DQN's keeps its name
        key = config.stem if agent == "ddqn" else f"{config.stem}/{agent}"
        r = market_results(sweep_dir, config, agent, seeds)
        s = _summary(r["shares"])
        r["summary"] = None if s is None else s.to_json()
        r["optimal_snapped"] = snapped_share(config)
        results["markets"][key] = r
        table.add_row(
            key,
            ", ".join("n/a" if v is None else f"{v:.1%}" for v in r["shares"]),
            "n/a" if s is None else f"{s.mean:.1%}",
            "n/a" if s is None else f"{s.iqm:.1%}",
            "n/a" if s is None else f"[{s.ci95_low:.1%}, {s.ci95_high:.1%}]",
            "-" if r["best_discrete"] is None else f"{r['best_discrete']:.1%}",
            "-" if r["vwap"] is None else f"{r['vwap']:.1%}",
            "-" if r["optimal_snapped"] is None else f"{r['optimal_snapped']:.1%}",
            "-" if r.get("calibrated") is None else f"{r['calibrated']:.1%}",
            "n/a" if r["seconds"] is None else f"{r['seconds']:.0f}",
        )
    write_json(results_path, results)
    console.print(table)
    for name in [c.stem if a == "ddqn" else f"{c.stem}/{a}" for c, a in rows]:
        r = results["markets"][name]
        beaten = [
            v for v in r["shares"] if v is not None and r["vwap"] is not None and v < r["vwap"]
        ]
        if beaten:
            console.print(f"{name}: VWAP beats {len(beaten)} of {len(r['shares'])} agents")
    console.print(f"wrote {results_path}")


if __name__ == "__main__":
    main()
