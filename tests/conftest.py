from __future__ import annotations

import os

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _isolated_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """No RL_* variable from the developer's shell leaks into a test, nor a terminal size (pytest-
    xdist's workers set COLUMNS=80, which would narrow every table the CLI prints)."""
    for key in list(os.environ):
        if key.upper().startswith("RL_") or key in ("COLUMNS", "LINES"):
            monkeypatch.delenv(key)
