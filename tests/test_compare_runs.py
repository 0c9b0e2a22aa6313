"""Two runs on one market and one set of test episodes are compared paired, end to end: every
run saves its per-episode costs (episodes.npz) for `rl-exec compare`."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from rl_order_execution.cli import app

runner = CliRunner()
TINY = (
    "simulation:\n  time_horizon: 10\nevaluation:\n  episodes: 60\nlogging:\n  tensorboard: false\n"
)


def _run(tmp_path: Path, name: str, *extra: str) -> Path:
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY)
    out = tmp_path / name
    args = ["run", "--config", str(config), "--episodes", "5", "--no-best-params", *extra]
    result = runner.invoke(app, [*args, "--output-dir", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "episodes.npz").is_file()
    return out


def test_two_runs_of_one_market_are_compared_episode_by_episode(tmp_path: Path) -> None:
    a, b = _run(tmp_path, "a", "--seed", "1"), _run(tmp_path, "b", "--seed", "2")
    out = tmp_path / "cmp"
    result = runner.invoke(app, ["compare", str(a), str(b), "--output-dir", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "compare.json").read_text())
    text = json.dumps(data)
    assert '"paired": true' in text and '"paired": false' not in text
