"""Same numbers, two commits, one machine: run a fixed set of short commands on BASE (checked out
in a temporary git worktree) and on the working tree, and print every number that differs.

    make same-numbers BASE=<commit>
    python scripts/same_numbers.py --base <commit> [--only config --only ppo] [--jobs 2]

The commands: `rl-exec run` on config/config.yaml (named `config`) and on every preset in
benchmarks/markets (simulated and replayed), PPO and SAC on the default config, and `rl-exec
evaluate` of BASE's own checkpoints (those three runs) by both trees. Each tree runs its own
sources (PYTHONPATH) and its own config files. A trained agent's numbers depend on the
processor's floating-point kernels, so they are compared between two commits on one machine,
never against numbers recorded on another one.

Compared: every value of metrics.json but the wall-clock times and what names the moment, the
folder or the commit of a run (VOLATILE). Differences in `settings` (and in provenance's copy of
the agent's rl settings) are listed apart: a new setting or a renamed section is not a changed
result. Exit 0 when no result differs, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.progress import Progress

ROOT = Path(__file__).resolve().parent.parent
QUICK = ("--episodes", "200", "--eval-episodes", "400")
AGENT_QUICK = {"ppo": ("--episodes", "100"), "sac": ("--episodes", "40")}
# Keys whose values name a moment, a folder, a command line or a commit, not a result (replay's
# source: the bar file's path, in each tree's own folder; its numbers are compared).
VOLATILE = frozenset(
    {
        "seconds",
        "started",
        "finished",
        "command",
        "git",
        "output_dir",
        "output_root",
        "run_dir",
        "source",
    }
)


@dataclass(frozen=True)
class Command:
    """One command of the fixed set: `rl-exec <args>`, run in a tree; `checkpoint` names the run
    whose BASE checkpoint an evaluate command reads."""

    name: str
    args: tuple[str, ...]
    checkpoint: str | None = None


def presets(tree: Path) -> list[str]:
    return sorted(path.stem for path in (tree / "benchmarks/markets").glob("*.yaml"))


def commands(base: Path, now: Path) -> tuple[list[Command], list[Command]]:
    """The runs (on both trees), then the evaluations of BASE's checkpoints."""
    runs = [Command("config", ("run", "--config", "config/config.yaml", *QUICK))]
    shared = sorted(set(presets(base)) & set(presets(now)))
    runs += [
        Command(name, ("run", "--config", f"benchmarks/markets/{name}.yaml", *QUICK))
        for name in shared
    ]
    runs += [
        Command(agent, ("run", "--config", "config/config.yaml", "--agent", agent, *QUICK, *extra))
        for agent, extra in AGENT_QUICK.items()
    ]
    evaluations = [
        Command(f"evaluate-{name}", ("evaluate",), checkpoint=name)
        for name in ("config", *AGENT_QUICK)
    ]
    return runs, evaluations


def only_in_one(base: Path, now: Path) -> list[str]:
    """Presets that exist in one tree only (run nowhere: nothing to compare them with)."""
    one = set(presets(base)) ^ set(presets(now))
    return sorted(f"{name} ({'BASE' if name in presets(base) else 'now'} only)" for name in one)


def run_command(tree: Path, command: Command, out: Path, base_out: Path) -> dict[str, Any]:
    """metrics.json of one command run with `tree`'s sources, in `tree` (runs) or an empty folder
    (evaluations: no config file or tuned parameters of the tree's may leak in)."""
    args = list(command.args)
    cwd = tree
    if command.checkpoint is not None:
        args += ["--checkpoint", str(base_out / command.checkpoint / "model.pt")]
        cwd = out.parent / f".cwd-{out.name}"
        cwd.mkdir(parents=True, exist_ok=True)
    else:
        args.append("--no-best-params")
    args += ["--output-dir", str(out)]
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("RL_")}
    env |= {"PYTHONPATH": str(tree / "src"), "MPLBACKEND": "Agg", "COLUMNS": "120"}
    done = subprocess.run(
        [sys.executable, "-m", "rl_order_execution", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-5:])
        raise RuntimeError(f"rl-exec {' '.join(command.args)} failed in {tree}:\n{tail}")
    data: dict[str, Any] = json.loads((out / "metrics.json").read_text())
    return data


def stable(tree: Any) -> Any:
    """A metrics.json tree without its VOLATILE keys."""
    if isinstance(tree, dict):
        return {k: stable(v) for k, v in tree.items() if k not in VOLATILE}
    if isinstance(tree, list):
        return [stable(v) for v in tree]
    return tree


def differences(old: Any, new: Any, path: str = "", rel: float = 0.0) -> Iterator[str]:
    """Dotted paths where two JSON trees differ: floats within a relative `rel` (0: bit for bit),
    NaN equal to NaN. Keys new since BASE and new warnings are additions (see `additions`)."""
    if path == "warnings." and isinstance(old, list) and isinstance(new, list):
        yield from (f"warnings: {w!r} missing now" for w in old if w not in new)
    elif isinstance(old, dict) and isinstance(new, dict):
        for key in old:
            if key not in new:
                yield f"{path}{key}: missing now"
            else:
                yield from differences(old[key], new[key], f"{path}{key}.", rel)
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            yield from differences(a, b, f"{path}{i}.", rel)
    elif not _same(old, new, rel):
        yield f"{path.rstrip('.')}: BASE {old!r}, now {new!r}"


def _same(old: Any, new: Any, rel: float) -> bool:
    if isinstance(old, float) and isinstance(new, float):
        return (math.isnan(old) and math.isnan(new)) or math.isclose(old, new, rel_tol=rel)
    return bool(old == new)


def additions(old: Any, new: Any, path: str = "") -> Iterator[str]:
    """Dotted paths of keys present now but not in BASE, and of warnings new since BASE."""
    if path == "warnings." and isinstance(old, list) and isinstance(new, list):
        yield from (f"warnings: new {w!r}" for w in new if w not in old)
    elif isinstance(old, dict) and isinstance(new, dict):
        for key in new:
            if key not in old:
                yield f"{path}{key}"
            else:
                yield from additions(old[key], new[key], f"{path}{key}.")


@dataclass(frozen=True)
class Comparison:
    name: str
    results: list[str]  # differences outside `settings`
    settings: list[str]  # differences inside `settings` (listed, not failed)
    added: list[str]


def _settings_part(tree: dict[str, Any]) -> dict[str, Any]:
    """`settings`, and provenance's copy of the agent's rl settings (its hyperparameters),
    taken out of the tree."""
    part = {"settings": tree.pop("settings", {})}
    agent = tree.get("provenance", {}).get("agent")
    if isinstance(agent, dict) and "hyperparameters" in agent:
        part["provenance.agent.hyperparameters"] = agent.pop("hyperparameters")
    return part


def compare(name: str, old: dict[str, Any], new: dict[str, Any]) -> Comparison:
    old, new = stable(old), stable(new)
    old_settings, new_settings = _settings_part(old), _settings_part(new)
    return Comparison(
        name,
        list(differences(old, new)),
        list(differences(old_settings, new_settings)),
        list(additions(old, new)),
    )


def print_comparison(c: Comparison, limit: int) -> None:
    print(f"{c.name}: {'same numbers' if not c.results else f'{len(c.results)} differences'}")
    for line in c.results[:limit]:
        print(f"  {line}")
    if len(c.results) > limit:
        print(f"  ... and {len(c.results) - limit} more")
    if c.settings:
        print(f"  settings differ (not a result): {'; '.join(c.settings[:5])}")
    if c.added:
        print(f"  new since BASE: {', '.join(sorted(set(c.added))[:10])}")


def worktree(base: str, where: Path) -> Path:
    path = where / "base"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(path), base],
        check=True,
    )
    return path


def run_all(
    base_tree: Path, work: Path, only: list[str] | None, jobs: int
) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    runs, evaluations = commands(base_tree, ROOT)
    wanted = set(only) if only else None
    if wanted is not None:
        runs = [c for c in runs if c.name in wanted or f"evaluate-{c.name}" in wanted]
        evaluations = [c for c in evaluations if c.name in wanted]
    base_out, now_out = work / "base-out", work / "now-out"

    found: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    with Progress(transient=True) as progress, ThreadPoolExecutor(max_workers=jobs) as pool:
        task = progress.add_task("commands on both trees", total=2 * (len(runs) + len(evaluations)))

        def one(stage: tuple[Path, Command, Path]) -> dict[str, Any]:
            tree, command, out = stage
            data = run_command(tree, command, out / command.name, base_out)
            progress.advance(task)
            return data

        for stage in (runs, evaluations):
            jobs_ = [(t, c, o) for c in stage for t, o in ((base_tree, base_out), (ROOT, now_out))]
            results = list(pool.map(one, jobs_))
            found += [(c.name, results[2 * i], results[2 * i + 1]) for i, c in enumerate(stage)]
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="HEAD", help="the commit to compare with (default HEAD)")
    parser.add_argument("--only", action="append", help="only these commands (repeatable)")
    parser.add_argument("--jobs", type=int, default=2, help="commands run at once (default 2)")
    parser.add_argument("--limit", type=int, default=20, help="differences shown per command")
    args = parser.parse_args(argv)
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--verify", "--quiet", f"{args.base}^{{commit}}"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if not commit:
        print(
            f"same-numbers: BASE {args.base!r} is not a commit of this repository", file=sys.stderr
        )
        return 2
    if args.jobs < 1:
        print("same-numbers: --jobs must be at least 1", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="same-numbers-") as tmp:
        work = Path(tmp)
        base_tree = worktree(commit, work)
        try:
            print(f"BASE {commit[:12]} vs the working tree of {ROOT}", flush=True)
            for line in only_in_one(base_tree, ROOT):
                print(f"  preset not compared: {line}")
            found = run_all(base_tree, work, args.only, args.jobs)
        except RuntimeError as exc:
            print(f"same-numbers: {exc}", file=sys.stderr)
            return 2
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base_tree)],
                check=False,
            )
    comparisons = [compare(name, old, new) for name, old, new in found]
    for c in comparisons:
        print_comparison(c, args.limit)
    moved = [c.name for c in comparisons if c.results]
    print(f"numbers moved in: {', '.join(moved)}" if moved else "same numbers everywhere")
    return 1 if moved else 0


if __name__ == "__main__":
    sys.exit(main())
