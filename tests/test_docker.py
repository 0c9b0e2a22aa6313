"""What can be checked of the image without a Docker engine: its entry command and COPY sources."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def _exec_form(instruction: str) -> list[str]:
    match = re.search(rf"^{instruction}\s+(\[.*\])\s*$", DOCKERFILE, re.MULTILINE)
    assert match, f"no exec-form {instruction} in the Dockerfile"
    value: list[str] = json.loads(match.group(1))
    return value


def test_entry_command_exists_and_runs_in_the_venv() -> None:
    entry, command = _exec_form("ENTRYPOINT"), _exec_form("CMD")
    script = Path(sys.executable).parent / entry[0]
    assert script.is_file(), f"{entry[0]} is not installed in the venv"
    result = subprocess.run(
        [str(script), *entry[1:], *command, "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "--episodes" in result.stdout


def test_copied_sources_exist() -> None:
    for line in DOCKERFILE.splitlines():
        if line.startswith("COPY") and "--from" not in line:
            sources = [s for s in line.split()[1:-1] if not s.startswith("--")]
            for source in sources:
                assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"
