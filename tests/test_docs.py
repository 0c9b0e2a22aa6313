"""The README configuration table is generated from the Settings models and must not go stale."""

from __future__ import annotations

from pathlib import Path

import pytest

from rl_order_execution.config import Settings, flatten
from scripts import settings_table

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_settings_table_is_current() -> None:
    current = settings_table.extract(README.read_text(encoding="utf-8"))
    assert current == settings_table.render(), (
        "README.md's settings table is stale: run `make docs` and commit README.md"
    )


def test_table_lists_every_setting() -> None:
    rows = [row for section in settings_table.sections() for row in section.rows]
    listed = {row.env_name for row in rows}
    expected = {"RL_" + key.replace(".", "__").upper() for key in flatten(Settings())}
    assert listed == expected
    assert len(rows) == len(listed)
    assert "RL_SIMULATION__RISK_AVERSION" in listed


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


def test_replace_keeps_the_rest_of_the_file() -> None:
    start, end = settings_table.START_MARKER, settings_table.END_MARKER
    text = f"# Title\n\nintro\n\n{start}\nold\n{end}\ntail\n"
    new = settings_table.replace(text, "new table\n")
    assert new == f"# Title\n\nintro\n\n{start}\nnew table\n{end}\ntail\n"
    assert settings_table.extract(new) == "new table\n"
    with pytest.raises(ValueError, match="markers"):
        settings_table.extract("no markers here")
