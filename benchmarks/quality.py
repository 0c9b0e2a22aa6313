"""`make quality`: the default agent on every market in benchmarks/markets/, K training seeds each.

For each market: `rl-exec run --config benchmarks/markets/<name>.yaml --seeds K`, then one table of
the share of the exact optimum's advantage over TWAP that the agents capture (per seed, mean,
interquartile mean, bootstrap 95 % interval), the best discrete policy's share where it applies
(martingale prices: the ceiling of the agent's action grid), VWAP's share on markets with a volume
profile, and that of the exact optimum rounded to the action grid. On replayed bars (no exact
optimum) the share is of the hindsight schedule's advantage, next to the calibrated optimum's.
Writes benchmarks/quality.json (with --out DIR: the runs and quality.json in DIR, nothing else).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from rl_order_execution.config import load_settings
from rl_order_execution.evaluation import AcrossSeeds, across_seeds, optimum_gap
from rl_order_execution.experiment import evaluate_strategies, run_experiment
from rl_order_execution.market import MarketParams
from rl_order_execution.reporting import write_json
from rl_order_execution.strategies import TWAP, SnappedOptimalStrategy

HERE = Path(__file__).parent
RESULTS = HERE / "quality.json"
RUNS = Path("output/quality")


def output_paths(out: Path | None) -> tuple[Path, Path]:
    """Where the runs and quality.json go: both under --out when it is given (nothing else is
    written), otherwise the runs in output/quality and the results in benchmarks/quality.json."""
    return (RUNS, RESULTS) if out is None else (out, out / "quality.json")


def run_market(
    config: Path, seeds: int, out_root: Path, reuse: bool, agent: str = "ddqn"
) -> dict[str, Any]:
    """Train and evaluate (unless reusing an earlier run's folder), then read its metrics.json."""
    folder = out_root / config.stem if agent == "ddqn" else out_root / agent / config.stem
    seconds = None
    if not (reuse and (folder / "metrics.json").is_file()):
        overrides = {"logging.progress": False, "rl.agent": agent}
        settings, _ = load_settings(overrides, config, None, require_config=True)
        start = time.perf_counter()
        run_experiment(settings, folder, Console(quiet=True), seeds=seeds)
        seconds = time.perf_counter() - start
    metrics = json.loads((folder / "metrics.json").read_text())["strategies"]
    share = "hindsight_captured" if "hindsight" in metrics else "gap_captured"

    def of(m: dict[str, Any]) -> float | None:
        value: float | None = (m.get(share) or {}).get("value")
        return value

    agents = {name: m for name, m in metrics.items() if name.startswith("agent")}
    return {
        "share": share,
        "shares": [of(m) for m in agents.values()],
        "best_discrete": of(metrics.get("best-discrete", {})),
        "vwap": of(metrics.get("vwap", {})),
        "calibrated": of(metrics.get("calibrated-optimal", {})),
        "seconds": seconds,
    }


def snapped_share(config: Path) -> float | None:
    """Share captured by the exact optimum rounded to the grid, on the same test episodes."""
    settings, _ = load_settings(None, config, None, require_config=True)
    p = MarketParams.from_settings(settings.simulation, settings.replay)
    if p.replay is not None:  # no exact optimum to round on real bars
        return None
    metrics = evaluate_strategies(settings, p, [TWAP(), SnappedOptimalStrategy()]).metrics(
        exact_gap=optimum_gap(p)
    )
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
    parser.add_argument("--reuse", action="store_true", help="Re-read runs already in --out.")
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
    for config, agent in rows:  # one row per market x agent; the Double DQN's keeps its name
        key = config.stem if agent == "ddqn" else f"{config.stem}/{agent}"
        console.print(f"{key} ...")
        r = run_market(config, args.seeds, runs, args.reuse, agent)
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
            "reused" if r["seconds"] is None else f"{r['seconds']:.0f}",
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
