"""`python main.py ...` is the same as `rl-exec ...`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from rl_order_execution.cli import main

if __name__ == "__main__":
    main()
