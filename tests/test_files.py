"""Files the toolkit writes: atomic, and with the permissions the user's umask gives."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from rl_order_execution.files import atomic_write, write_json, write_text_atomic


def test_a_written_file_gets_the_users_umask_not_the_temporary_files_0600(tmp_path: Path) -> None:
    path = tmp_path / "report.md"
    write_text_atomic(path, "hello")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
    assert path.read_text() == "hello"


def test_a_failed_write_leaves_neither_a_half_file_nor_a_temporary_one(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    write_json(path, {"a": 1})

    def fail(handle: object) -> None:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(path, fail)
    assert path.read_text() == '{\n  "a": 1\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_json_refuses_nan_rather_than_writing_invalid_json(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_json(tmp_path / "x.json", {"a": float("nan")})
    assert not (tmp_path / "x.json").exists()
