"""The README and docs/SETTINGS.md are generated where they can go stale, and stay a contract:
every generated section current, the README short, no path outside the repository."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from rl_order_execution.config import Settings, flatten
from scripts import readme_tables, settings_table

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
MAX_README_LINES = 400


@pytest.mark.parametrize("path", readme_tables.FILES, ids=lambda p: p.name)
def test_every_generated_section_is_present_and_current(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    for name in readme_tables.EXPECTED[path]:
        assert readme_tables.has_block(text, name), f"{path.name} lacks the section {name}"
    assert readme_tables.stale_blocks(path) == [], (
        f"{path.name} is stale: run `make docs` and commit it"
    )


def test_readme_is_under_400_lines() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines < MAX_README_LINES, f"README.md has {lines} lines"


@pytest.mark.parametrize("path", [README, *DOCS], ids=lambda p: p.name)
def test_no_path_outside_the_repository(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"\.\./shared|(?<![\w.])/work/|(?<![\w.])/home/", text)
    for target in re.findall(r"\]\(([^)#\s]+)", text):
        if re.match(r"[a-z]+:", target):  # a URL
            continue
        resolved = (path.parent / target).resolve()
        assert resolved.is_relative_to(ROOT), f"{path.name} links outside: {target}"
        assert resolved.exists(), f"{path.name} links to a missing file: {target}"


def test_cli_table_lists_every_command() -> None:
    table = readme_tables.render_cli()
    paths = {c.path for c in readme_tables.cli_commands()}
    assert {("run",), ("evaluate",), ("config", "show"), ("data", "bars")} <= paths
    for path in paths:
        assert f"`rl-exec {' '.join(path)}" in table
    assert all(c.help for c in readme_tables.cli_commands())


def _quality(tmp_path: Path, markets: dict[str, object]) -> Path:
    path = tmp_path / "quality.json"
    path.write_text(json.dumps({"seeds": 2, "markets": markets}), encoding="utf-8")
    return path


def _market(folder: Path, name: str, body: str) -> None:
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.yaml").write_text(body, encoding="utf-8")


def test_results_tables_follow_the_results_file(tmp_path: Path) -> None:
    folder = tmp_path / "markets"
    _market(folder, "calm", "simulation:\n  volatility: 0.001\n")
    _market(folder, "book", "simulation:\n  price_model: book\n")
    _market(folder, "profile", "simulation:\n  volume_profile: u_shape\n")
    run = {
        "shares": [0.5, 0.25],
        "summary": {"mean": 0.375},
        "best_discrete": 0.9,
        "optimal_snapped": 0.8,
    }
    quality = _quality(tmp_path, {"calm": run, "calm/ppo": {**run, "shares": [1.0, None]}})
    simulated = readme_tables.render_results("simulated", quality, folder)
    assert "| [calm](benchmarks/markets/calm.yaml) | volatility 0.001 | Double DQN |" in simulated
    assert "50.0 %, 25.0 % | 37.5 % | 90.0 % | 80.0 % |" in simulated
    assert "| PPO | 100.0 %, n/a |" in simulated
    assert "2 training seeds" in simulated
    assert "profile" not in simulated and "book" not in simulated
    book = readme_tables.render_results("book", quality, folder)
    assert readme_tables.NOT_MEASURED in book
    volume = readme_tables.render_results("volume", quality, folder)
    assert "[profile]" in volume and readme_tables.NOT_MEASURED in volume
    replay = readme_tables.render_results("replay", quality, folder)
    assert "No market file of this family" in replay


def test_every_market_file_has_a_family_with_a_results_section() -> None:
    families = {m.family for m in readme_tables.markets()}
    assert families <= set(readme_tables.FAMILY_COLUMNS)
    assert {"simulated", "volume", "replay", "book"} <= families


def test_replace_keeps_the_rest_of_the_file() -> None:
    start, end = readme_tables.markers("results:book")
    text = f"# Title\n\nintro\n\n{start}\nold\n{end}\ntail\n"
    new = readme_tables.replace(text, "results:book", "new table\n")
    assert new == f"# Title\n\nintro\n\n{start}\nnew table\n{end}\ntail\n"
    assert readme_tables.extract(new, "results:book") == "new table\n"
    with pytest.raises(ValueError, match="markers"):
        readme_tables.extract("no markers here", "results:book")


def test_check_reports_a_stale_section(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    start, end = readme_tables.markers("cli")
    doc = tmp_path / "doc.md"
    doc.write_text(f"{start}\nold\n{end}\n", encoding="utf-8")
    assert readme_tables.main(["--check", str(doc)]) == 1
    assert "cli is stale" in capsys.readouterr().err
    assert readme_tables.main([str(doc)]) == 0
    assert readme_tables.main(["--check", str(doc)]) == 0
    assert settings_table.main(["--check", str(doc)]) == 0


def test_table_lists_every_setting() -> None:
    rows = [row for section in settings_table.sections() for row in section.rows]
    listed = {row.env_name for row in rows}
    expected = {"RL_" + key.replace(".", "__").upper() for key in flatten(Settings())}
    assert listed == expected
    assert len(rows) == len(listed)
    assert "RL_SIMULATION__RISK_AVERSION" in listed
    compact = readme_tables.render_settings_compact()
    for section in settings_table.sections():
        for row in section.rows:
            assert f"`{row.env_name.split('__')[-1].removeprefix('RL_').lower()}`" in compact


def test_every_row_has_default_and_description() -> None:
    for section in settings_table.sections():
        assert section.doc, section.path
        for row in section.rows:
            assert row.description, row.env_name
            assert row.default.startswith("`"), row.env_name


def test_documented_names_and_defaults_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each variable, set to its documented default, is read by Settings and changes nothing."""
    defaults = flatten(Settings())
    rows = [row for section in settings_table.sections() for row in section.rows]
    for row in rows:
        monkeypatch.setenv(row.env_name, row.default.strip("`"))
    assert flatten(Settings()) == defaults


def test_documented_env_name_overrides_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RL_SIMULATION__RISK_AVERSION", "0.5")
    assert Settings().simulation.risk_aversion == 0.5


def test_the_architecture_map_names_every_package_and_top_level_module() -> None:
    """docs/ARCHITECTURE.md's package map follows the tree: every subpackage and top-level
    module of the package is in it."""
    root = Path(__file__).resolve().parents[1]
    text = (root / "docs" / "ARCHITECTURE.md").read_text()
    package = root / "src" / "rl_order_execution"
    names = [f"{p.name}/" for p in package.iterdir() if (p / "__init__.py").is_file()]
    names += [p.name for p in package.glob("*.py") if not p.name.startswith("__")]
    missing = [name for name in names if name not in text]
    assert missing == []


def test_speed_table_shows_the_book_market_and_the_sweep_overhead(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    book = {
        "batch": 16384,
        "env_steps_per_second": 9.7e6,
        "evaluation_episodes": 10000,
        "evaluation_strategies": 5,
        "evaluation_seconds": 0.46,
    }
    sweep = {
        "cells": 8,
        "workers": 2,
        "wall_seconds": 101.0,
        "cell_seconds_sum": 196.9,
        "ratio": 1.026,
        "limit": 1.15,
        "shortest_cell_seconds": 22.4,
    }
    env = {"single": 44347, "vec_16384": 33328443, "replay_vec_16384": 42263587}
    results.write_text(json.dumps({"env": env, "book": book, "sweep": sweep}))
    table = readme_tables.render_speed(results)
    assert "| env steps/s, vectorised env, B = 16,384 | 33,328,443 |" in table
    assert "| env steps/s, replayed bars, vectorised env, B = 16,384 | 42,263,587 |" in table
    assert (
        "| limit-order book market: env steps/s, vectorised env, B = 16,384 | 9,700,000 |" in table
    )
    assert "evaluation of 10,000 episodes x 5 strategies | 0.46 s |" in table
    assert "101.0 s = 1.026 x the cells' 196.9 s / 2 (bar: 1.15 x" in table
