"""Every run says where its numbers come from: metrics.json's `provenance`, checked against the
schema in docs/, and the same facts at the head of report.md."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import jsonschema
from typer.testing import CliRunner

from rl_order_execution.cli import app
from rl_order_execution.config import Settings
from rl_order_execution.config.identity import settings_market
from rl_order_execution.reporting.provenance import git_state, hyperparameters

SCHEMA = json.loads((Path(__file__).parents[1] / "docs" / "metrics.schema.json").read_text())
QUICK = ["--episodes", "5", "--eval-episodes", "50", "--no-best-params"]


def test_a_run_records_its_provenance_and_report_md_opens_with_it(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["run", "--agent", "ddqn", "--seed", "7", "--output-dir", str(out), *QUICK]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    jsonschema.validate(metrics, SCHEMA)
    prov = metrics["provenance"]
    settings = Settings.model_validate(metrics["settings"])
    assert prov["agent"]["kind"] == "ddqn"
    assert prov["agent"]["hyperparameters"] == hyperparameters(settings)
    assert "ppo" not in prov["agent"]["hyperparameters"]  # another kind's section is not its own
    assert prov["market"]["hash"] == settings_market(settings)
    assert prov["seeds"] == {"master": 7, "evaluation": settings.evaluation.seed, "training": [7]}
    started, finished = (datetime.fromisoformat(prov[k]) for k in ("started", "finished"))
    assert started <= finished and started.utcoffset() is not None
    assert prov["git"] == git_state()  # this checkout's commit (or None outside one)
    head = (out / "report.md").read_text().splitlines()[:10]
    assert any(f"agent: ddqn; market: {prov['market']['hash']}" in line for line in head)
    assert any("torch " in line and "numpy " in line for line in head)
    assert any(line.startswith("- command: `rl-exec") for line in head)
    if prov["git"] is not None:
        assert any(prov["git"]["commit"][:12] in line for line in head)


def test_provenance_outside_a_checkout_has_no_git(tmp_path: Path) -> None:
    assert git_state(tmp_path) is None
