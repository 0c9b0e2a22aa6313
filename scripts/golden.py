"""Same-numbers proof: record every number of `rl-exec run`'s metrics.json per market, or check
that today's code still gives them (bit for bit) at the same seeds.

    python scripts/golden.py check            # quick runs (200 training, 400 test episodes)
    python scripts/golden.py check --full     # the markets' own episode counts (minutes)
    python scripts/golden.py record [--full]  # only when numbers change on purpose

The only fields left out are wall-clock times. tests/test_same_numbers.py runs the quick check.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MARKETS = {"config": ROOT / "config/config.yaml"} | {
    path.stem: path for path in sorted((ROOT / "benchmarks/markets").glob("*.yaml"))
}
GOLDEN = {False: ROOT / "tests/golden/quick.json", True: ROOT / "tests/golden/full.json"}
QUICK_ARGS = ["--episodes", "200", "--eval-episodes", "400"]
VOLATILE = ("seconds",)


def stable(tree: Any) -> Any:
    """metrics.json without wall-clock times."""
    if isinstance(tree, dict):
        return {k: stable(v) for k, v in tree.items() if k not in VOLATILE}
    if isinstance(tree, list):
        return [stable(v) for v in tree]
    return tree


def run_market(config: Path, full: bool) -> dict[str, Any]:
    """metrics.json of `rl-exec run` on one market file, through the CLI."""
    from typer.testing import CliRunner

    from rl_order_execution.cli import app

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        args = ["run", "--config", str(config), "--no-best-params", "--output-dir", str(out)]
        result = CliRunner().invoke(app, args + ([] if full else QUICK_ARGS))
        if result.exit_code != 0:
            raise RuntimeError(f"{config}: rl-exec run failed\n{result.output}")
        data: dict[str, Any] = json.loads((out / "metrics.json").read_text())
    return dict(stable(data))


def differences(old: Any, new: Any, path: str = "") -> Iterator[str]:
    """Dotted paths where two JSON trees differ (floats compared exactly). Keys added since the
    golden run (new settings, new metrics, new warnings) are not differences: see `additions`."""
    if path == "warnings." and isinstance(old, list) and isinstance(new, list):
        yield from (f"warnings: golden {w!r} missing now" for w in old if w not in new)
    elif isinstance(old, dict) and isinstance(new, dict):
        for key in old:
            if key not in new:
                yield f"{path}{key}: missing now"
            else:
                yield from differences(old[key], new[key], f"{path}{key}.")
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            yield from differences(a, b, f"{path}{i}.")
    elif old != new and not (_nan(old) and _nan(new)):
        yield f"{path.rstrip('.')}: golden {old!r}, now {new!r}"


def additions(old: Any, new: Any, path: str = "") -> Iterator[str]:
    """Dotted paths of keys present now but not in the golden run (and of new warnings)."""
    if path == "warnings." and isinstance(old, list) and isinstance(new, list):
        yield from (f"{path}new warning" for w in new if w not in old)
    elif isinstance(old, dict) and isinstance(new, dict):
        for key in new:
            if key not in old:
                yield f"{path}{key}"
            else:
                yield from additions(old[key], new[key], f"{path}{key}.")


def _nan(x: Any) -> bool:
    return isinstance(x, float) and math.isnan(x)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["record", "check"])
    parser.add_argument("--full", action="store_true", help="the market files' own episode counts")
    parser.add_argument("--market", action="append", help="only these markets (repeatable)")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    path = GOLDEN[args.full]
    recorded = json.loads(path.read_text()) if path.exists() else {}
    names = args.market or (list(MARKETS) if args.mode == "record" else list(recorded))
    if args.mode == "record":
        golden = recorded
        for name in names:
            print(f"recording {name}", flush=True)
            golden[name] = run_market(MARKETS[name], args.full)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")
        return 0
    golden = recorded
    failed = False
    for name in names:
        now = run_market(MARKETS[name], args.full)
        diff = list(differences(golden[name], now))
        print(f"{name}: {'same numbers' if not diff else f'{len(diff)} differences'}")
        added = sorted({a.split(".")[-1] for a in additions(golden[name], now)})
        if added:
            print(f"  keys added since the golden run: {', '.join(added)}")
        for line in diff[:20]:
            print(f"  {line}")
        failed |= bool(diff)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
