"""The reference strategies' numbers on every market: recorded once, checked by the tests.

    python -m scripts.reference_numbers check             # every market
    python -m scripts.reference_numbers record [--market NAME]   # only when they change on purpose

TWAP, VWAP, the exact optimum, the best discrete policy and the replay references come from fixed
inputs (the seeded shocks or the bundled bars, and closed-form or dynamic-programming schedules),
so their metrics hold on every processor up to the last bits of numpy's exp and log kernels: they
are compared within a relative REL. The trained agent is left out: its numbers depend on the
processor's floating-point kernels (`make same-numbers` compares two commits on one machine).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from scripts.same_numbers import differences, stable

ROOT = Path(__file__).resolve().parent.parent
MARKETS = {"config": ROOT / "config/config.yaml"} | {
    path.stem: path for path in sorted((ROOT / "benchmarks/markets").glob("*.yaml"))
}
RECORDED = ROOT / "tests/data/reference_numbers.json"
# One training episode: the agent is not compared, and the references do not depend on it.
ARGS = ("--episodes", "1", "--eval-episodes", "400")
# Same inputs, same operations: only a different SIMD kernel of exp/log/sum may change the last
# bits (a few ulp, compounded over 50 steps and 400 episodes), far below 1e-9 of any figure.
REL = 1e-9


def references(metrics: dict[str, Any]) -> dict[str, Any]:
    """The part of a metrics.json that no trained network touches."""
    strategies = {k: v for k, v in metrics["strategies"].items() if not k.startswith("agent")}
    kept = {"episodes", "evaluation_seed", "exact"}
    return dict(
        stable({k: v for k, v in metrics.items() if k in kept} | {"strategies": strategies})
    )


def run_market(config: Path) -> dict[str, Any]:
    """metrics.json of `rl-exec run` on one market file, through the CLI, in this process."""
    from typer.testing import CliRunner

    from rl_order_execution.cli import app

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        args = ["run", "--config", str(config), "--no-best-params", "--output-dir", str(out)]
        result = CliRunner().invoke(app, [*args, *ARGS])
        if result.exit_code != 0:
            raise RuntimeError(f"{config}: rl-exec run failed\n{result.output}")
        data: dict[str, Any] = json.loads((out / "metrics.json").read_text())
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["record", "check"])
    parser.add_argument("--market", action="append", choices=list(MARKETS), help="repeatable")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    recorded = json.loads(RECORDED.read_text()) if RECORDED.exists() else {}
    names = args.market or list(MARKETS)
    failed = False
    for name in names:
        now = references(run_market(MARKETS[name]))
        if args.mode == "record":
            recorded[name] = now
            print(f"recorded {name}", flush=True)
            continue
        if name not in recorded:
            print(f"{name}: no recorded numbers (record them: record --market {name})")
            failed = True
            continue
        diff = list(differences(recorded[name], now, rel=REL))
        print(f"{name}: {'same numbers' if not diff else f'{len(diff)} differences'}")
        for line in diff[:20]:
            print(f"  {line}")
        failed |= bool(diff)
    if args.mode == "record":
        RECORDED.parent.mkdir(parents=True, exist_ok=True)
        tmp = RECORDED.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
        tmp.replace(RECORDED)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
