"""Peak memory of reading a large bar file for replay (`python benchmarks/replay_memory.py`).

Writes a synthetic CSV of about --size-gb gigabytes (minute bars: timestamp, open, high, low,
close, volume; seeded), then reads it with the replay loader in a child process and reports the
child's peak resident memory next to the file's size. The file is deleted afterwards unless
--keep is given.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import Progress

ROW_BYTES = 61  # one bar as written below, on average
CHILD = """
import sys, time
from pathlib import Path
from rl_order_execution.data import load_bars
start = time.perf_counter()
bars = load_bars(Path(sys.argv[1]))
print(len(bars), time.perf_counter() - start)
"""


def write_bars(path: Path, size_bytes: int, seed: int = 0) -> int:
    """A CSV of minute bars, about size_bytes long; returns its number of rows."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = size_bytes // ROW_BYTES
    block, price = 1_000_000, 100.0
    with path.open("w") as f, Progress(transient=True) as progress:
        task = progress.add_task("writing bars", total=rows)
        f.write("timestamp,open,high,low,close,volume\n")
        for first in range(0, rows, block):
            n = min(block, rows - first)
            minutes = np.arange(first, first + n, dtype=np.int64)
            stamps = np.datetime64("2010-01-01T00:00:00") + minutes.astype("timedelta64[m]")
            close = price * np.exp(np.cumsum(rng.normal(0.0, 1e-4, n)))
            price = float(close[-1])
            frame = pd.DataFrame(
                {
                    "timestamp": np.datetime_as_string(stamps, unit="s"),
                    "open": close,
                    "high": close * 1.0001,
                    "low": close * 0.9999,
                    "close": close,
                    "volume": rng.integers(1, 10_000, n),
                }
            )
            frame.to_csv(f, header=False, index=False, float_format="%.5f")
            progress.advance(task, n)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-gb", type=float, default=1.0)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    console = Console()
    folder = Path(tempfile.mkdtemp(prefix="replay-memory-"))
    path = folder / "bars.csv"
    rows = write_bars(path, int(args.size_gb * 1e9))
    size = path.stat().st_size
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, check=True
    )
    bars, seconds = child.stdout.split()
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # kB on Linux
    result = {
        "file_bytes": size,
        "rows": rows,
        "bars_read": int(bars),
        "read_seconds": float(seconds),
        "peak_rss_bytes": peak,
        "peak_over_file": peak / size,
        "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    console.print(
        f"read {int(bars):,} bars from a {size / 1e9:.2f} GB CSV in {float(seconds):.1f} s; "
        f"peak memory {peak / 1e9:.2f} GB ({peak / size:.2f}x the file)"
    )
    print(json.dumps(result, indent=2))
    if not args.keep:
        path.unlink()
        folder.rmdir()


if __name__ == "__main__":
    main()
