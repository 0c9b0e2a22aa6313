"""Generate the bundled top-of-book sample from the book model at its defaults.

Four trading days of one row every 5 seconds (09:30:00 to 15:59:55, 18,720 rows), drawn with a
fixed seed: the same bytes on every run. The calibration test recovers the defaults from it.

    python scripts/make_book_sample.py            # write data/datasets/book_sample.csv
    python scripts/make_book_sample.py --check    # exit 1 if the file differs from a fresh draw
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rl_order_execution.market.book.params import BookParams
from rl_order_execution.market.book.sample import sample_rows

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "src" / "rl_order_execution" / "data" / "datasets" / "book_sample.csv"
SESSIONS = 4
SEED = 2024


def sample_text(sessions: int = SESSIONS, seed: int = SEED) -> str:
    """The sample file's text."""
    return "\n".join(sample_rows(BookParams.default(), sessions, seed)) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=TARGET)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    text = sample_text()
    if args.check:
        same = args.output.is_file() and args.output.read_text() == text
        print(f"{args.output}: {'up to date' if same else 'stale'}")
        return 0 if same else 1
    tmp = args.output.with_suffix(".tmp")
    tmp.write_text(text, newline="\n")
    tmp.replace(args.output)  # atomic
    print(f"wrote {args.output} ({len(text):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
