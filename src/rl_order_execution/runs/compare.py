"""`rl-exec compare`: the headline numbers of finished runs side by side, each agent against the
first run's first agent (the reference). Runs evaluated on the same market and test episodes are
compared paired, episode by episode, from their `episodes.npz`; any other pair is compared
unpaired (the two runs' own standard errors combined), and the table says which and why."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from rl_order_execution.arrays import FloatArray
from rl_order_execution.config import Settings, SettingsError
from rl_order_execution.config.identity import settings_market
from rl_order_execution.evaluation.statistics import Z95
from rl_order_execution.runs.episodes import (
    BASELINE,
    EPISODES_FILE,
    EpisodeCosts,
    EpisodesFileError,
    load_episode_costs,
)

COMPARE_ROOT = Path("output/compare")
RESUME_FILE = "resume.pt"


def finite(value: Any) -> float | None:
    """A float, or None for a missing or non-finite value (JSON null, never NaN)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True)
class Interval:
    """A number with its 95 % interval; None where it cannot be computed."""

    value: float | None
    low: float | None = None
    high: float | None = None

    @staticmethod
    def around(mean: float | None, se: float | None) -> Interval:
        if mean is None or se is None:
            return Interval(mean)
        return Interval(mean, mean - Z95 * se, mean + Z95 * se)

    @property
    def se(self) -> float | None:
        """The standard error behind a normal 95 % interval."""
        if self.low is None or self.high is None:
            return None
        return (self.high - self.low) / (2 * Z95)

    def to_json(self) -> dict[str, float | None]:
        return {"value": self.value, "ci95_low": self.low, "ci95_high": self.high}


@dataclass(frozen=True)
class RunFolder:
    """A finished run: its metrics.json, its market and test episodes, its per-episode costs."""

    path: Path
    label: str
    metrics: dict[str, Any]
    market: str | None  # the market hash; None when the settings are not readable here
    price_model: str | None
    test_set: tuple[Any, ...] | None  # what decides the test episodes besides the market
    episodes: EpisodeCosts | None
    no_episodes: str | None  # why there are no per-episode costs

    @property
    def agents(self) -> list[str]:
        return [name for name in self.metrics["strategies"] if name.startswith("agent")]


def _refuse(path: Path, why: str) -> SettingsError:
    return SettingsError(f"{path}: {why}")


def _check_finished(path: Path) -> None:
    """One line naming what the folder is when it is not a finished run."""
    if not path.exists():
        raise _refuse(path, "no such folder")
    if not path.is_dir():
        raise _refuse(path, "not a folder (give a run folder, e.g. output/runs/<name>)")
    if (path / RESUME_FILE).is_file() or any(path.glob(f"seed-*/{RESUME_FILE}")):
        raise _refuse(
            path,
            f"an unfinished run (it holds {RESUME_FILE}); finish it first with "
            f"rl-exec run --resume {path}",
        )
    if (path / "metrics.json").is_file():
        return
    if (path / "benchmark.json").is_file():
        raise _refuse(path, "a self-check (rl-exec benchmark), not a run: it trained no agent")
    if (path / "sweep.json").is_file() or (path / "cells").is_dir():
        raise _refuse(path, "a sweep folder; compare its cells (the run folders under cells/)")
    if (path / "model.pt").is_file():
        raise _refuse(
            path,
            "a trained agent without an evaluation (no metrics.json); evaluate "
            f"it with rl-exec evaluate --checkpoint {path / 'model.pt'}",
        )
    raise _refuse(path, "not a finished run (no metrics.json)")


def _metrics(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads((path / "metrics.json").read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        raise _refuse(path, "its metrics.json is not readable JSON") from None
    strategies = data.get("strategies") if isinstance(data, dict) else None
    if not isinstance(strategies, dict) or BASELINE not in strategies:
        raise _refuse(path, "its metrics.json holds no run results (no strategies with twap)")
    if not any(name.startswith("agent") for name in strategies):
        raise _refuse(path, "its metrics.json holds no agent (a run trains and evaluates one)")
    return data


def _identity(data: dict[str, Any]) -> tuple[str | None, str | None, tuple[Any, ...] | None]:
    """Market hash, price model and test set of the settings metrics.json records."""
    try:
        settings = Settings.model_validate(data.get("settings"))
    except (ValidationError, ValueError, TypeError):
        return None, None, None
    model = settings.simulation.price_model
    ev = settings.evaluation
    # replayed bars: the test windows are the data's (part of the market); otherwise the draws
    test_set = ("test windows",) if model == "replay" else (ev.seed, ev.episodes, ev.antithetic)
    return settings_market(settings), model, test_set


def read_run(path: Path, label: str | None = None) -> RunFolder:
    """A finished run folder, or SettingsError naming what the folder is instead."""
    _check_finished(path)
    data = _metrics(path)
    market, model, test_set = _identity(data)
    episodes, why = None, None
    if not (path / EPISODES_FILE).is_file():
        why = f"no {EPISODES_FILE} (written by runs since rl-exec compare exists)"
    else:
        try:
            episodes = load_episode_costs(path / EPISODES_FILE)
        except EpisodesFileError as exc:
            why = f"its {EPISODES_FILE}: {exc}"
    return RunFolder(path, label or path.name, data, market, model, test_set, episodes, why)


@dataclass(frozen=True)
class AgentRow:
    """The headline numbers of one agent of one run (bps of Q*P0; savings: positive = cheaper
    than TWAP on the same episodes)."""

    run: RunFolder
    agent: str
    cost_savings: Interval
    is_savings: Interval
    share: Interval | None  # of the exact optimum's advantage over TWAP (replay: hindsight's)
    share_of: str | None
    win_rate: float | None  # episodes cheaper than TWAP (risk-adjusted cost)
    var_95_bps: float | None  # 5th percentile of the IS savings per episode
    training_seconds: float | None

    @property
    def name(self) -> str:
        return self.run.label if self.agent == "agent" else f"{self.run.label}/{self.agent}"


def _interval(data: Any, value: str, low: str, high: str) -> Interval:
    if not isinstance(data, Mapping):
        return Interval(None)
    return Interval(finite(data.get(value)), finite(data.get(low)), finite(data.get(high)))


def _savings(m: Mapping[str, Any], key: str) -> Interval:
    return _interval(m.get(key), "avg_savings_bps", "ci95_low_bps", "ci95_high_bps")


def _share(run: RunFolder, agent: str) -> tuple[Interval | None, str | None]:
    book = (run.metrics.get("agents") or {}).get(agent) or {}
    if isinstance(book.get("advantage_share"), Mapping):  # the book: its own action set's optimum
        share = _interval(book["advantage_share"], "value", "ci95_low", "ci95_high")
        return share, f"{book.get('action_set', 'exact')} optimum"
    m = run.metrics["strategies"][agent]
    for key, of in (("gap_captured", "exact optimum"), ("hindsight_captured", "hindsight bound")):
        if isinstance(m.get(key), Mapping):
            return _interval(m[key], "value", "ci95_low", "ci95_high"), of
    return None, None


def agent_row(run: RunFolder, agent: str) -> AgentRow:
    m = run.metrics["strategies"][agent]
    share, of = _share(run, agent)
    training = (run.metrics.get("training") or {}).get(agent) or {}
    return AgentRow(
        run=run,
        agent=agent,
        cost_savings=_savings(m, "savings_cost"),
        is_savings=_savings(m, "savings_is"),
        share=share,
        share_of=of,
        win_rate=finite((m.get("savings_cost") or {}).get("win_rate")),
        var_95_bps=finite((m.get("savings_is") or {}).get("var_95_bps")),
        training_seconds=finite(training.get("seconds")),
    )


@dataclass(frozen=True)
class Difference:
    """An agent's savings vs TWAP minus the reference agent's (bps; positive = saves more)."""

    cost_savings: Interval
    is_savings: Interval
    paired: bool
    why_unpaired: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "cost_savings_bps": self.cost_savings.to_json(),
            "is_savings_bps": self.is_savings.to_json(),
            "paired": self.paired,
            "why_unpaired": self.why_unpaired,
        }


def why_unpaired(a: RunFolder, b: RunFolder) -> str | None:
    """Why two runs cannot be compared episode by episode; None when they can."""
    if a is b:
        return None
    for run in (a, b):
        if run.episodes is None:
            return f"{run.label}: {run.no_episodes}"
        if run.market is None:
            return f"{run.label}: its settings are not readable by this version"
    assert a.episodes is not None and b.episodes is not None
    if a.market != b.market:
        return f"different markets ({a.market} vs {b.market})"
    if a.test_set != b.test_set:
        return "different test episodes (evaluation seed, episodes or antithetic differ)"
    twap_a, twap_b = a.episodes.cost_bps[BASELINE], b.episodes.cost_bps[BASELINE]
    if twap_a.shape != twap_b.shape or not np.allclose(twap_a, twap_b, rtol=1e-9, atol=1e-9):
        return "TWAP's per-episode costs differ: not the same test episodes"
    return None


def paired_se(d: FloatArray, antithetic: bool) -> float | None:
    """Standard error of mean(d); antithetic pairs (i, i + E/2) are the units. None with fewer
    than two units (no spread to estimate)."""
    units = (d[: len(d) // 2] + d[len(d) // 2 :]) / 2 if antithetic else d
    if len(units) < 2:
        return None
    return finite(float(units.std(ddof=1)) / math.sqrt(len(units)))


def _paired(ref: AgentRow, row: AgentRow, attribute: str) -> Interval:
    a, b = ref.run.episodes, row.run.episodes
    assert a is not None and b is not None
    costs_a, costs_b = getattr(a, attribute), getattr(b, attribute)
    saved_a = costs_a[BASELINE] - costs_a[ref.agent]
    saved_b = costs_b[BASELINE] - costs_b[row.agent]
    d = saved_b - saved_a
    return Interval.around(finite(float(d.mean())), paired_se(d, a.antithetic))


def _unpaired(ref: Interval, this: Interval) -> Interval:
    if ref.value is None or this.value is None:
        return Interval(None)
    se = None if ref.se is None or this.se is None else math.hypot(ref.se, this.se)
    return Interval.around(this.value - ref.value, se)


def difference(ref: AgentRow, row: AgentRow) -> Difference:
    why = why_unpaired(ref.run, row.run)
    runs = (ref.run.episodes, row.run.episodes)
    if why is None and all(
        r is not None and a in r.cost_bps for r, a in zip(runs, (ref.agent, row.agent), strict=True)
    ):
        cost = _paired(ref, row, "cost_bps")
        return Difference(cost, _paired(ref, row, "shortfall_bps"), paired=True)
    if why is None:
        why = "an agent's per-episode costs are missing from episodes.npz"
    cost = _unpaired(ref.cost_savings, row.cost_savings)
    shortfall = _unpaired(ref.is_savings, row.is_savings)
    return Difference(cost, shortfall, paired=False, why_unpaired=why)


@dataclass(frozen=True)
class Comparison:
    """Every agent of the runs compared, each against the first (the reference)."""

    rows: tuple[AgentRow, ...]
    differences: tuple[Difference | None, ...]  # None: the reference itself

    @property
    def reference(self) -> AgentRow:
        return self.rows[0]

    def to_json(self) -> dict[str, Any]:
        runs = {row.run.label: row.run for row in self.rows}
        return {
            "reference": self.reference.name,
            "runs": [
                {
                    "run": label,
                    "path": str(run.path),
                    "market": run.market,
                    "price_model": run.price_model,
                    "episodes": run.metrics.get("episodes"),
                    "evaluation_seed": run.metrics.get("evaluation_seed"),
                    "per_episode_costs": run.episodes is not None,
                }
                for label, run in runs.items()
            ],
            "rows": [
                _row_json(row, diff) for row, diff in zip(self.rows, self.differences, strict=True)
            ],
        }


def _row_json(row: AgentRow, diff: Difference | None) -> dict[str, Any]:
    return {
        "name": row.name,
        "run": row.run.label,
        "agent": row.agent,
        "market": row.run.market,
        "cost_savings_bps": row.cost_savings.to_json(),
        "is_savings_bps": row.is_savings.to_json(),
        "share_of_optimum": None if row.share is None else row.share.to_json(),
        "share_of": row.share_of,
        "win_rate": row.win_rate,
        "var_95_bps": row.var_95_bps,
        "training_seconds": row.training_seconds,
        "vs_reference": None if diff is None else diff.to_json(),
    }


def _labels(paths: Sequence[Path]) -> list[str]:
    """Folder names, or the paths as given where two folders share a name."""
    names = [p.name or str(p) for p in paths]
    return [n if names.count(n) == 1 else str(p) for n, p in zip(names, paths, strict=True)]


def compare_runs(paths: Sequence[Path]) -> Comparison:
    """Read the runs (refusing any folder that is not a finished run) and compare them."""
    if len(paths) < 2:
        raise SettingsError(f"rl-exec compare needs at least two run folders (got {len(paths)})")
    resolved = [p.resolve() for p in paths]
    for i, p in enumerate(resolved):
        if p in resolved[:i]:
            raise SettingsError(f"{paths[i]}: given twice; each run folder once")
    runs = [read_run(p, label) for p, label in zip(paths, _labels(paths), strict=True)]
    rows = tuple(agent_row(run, agent) for run in runs for agent in run.agents)
    diffs = tuple(None if i == 0 else difference(rows[0], row) for i, row in enumerate(rows))
    return Comparison(rows, diffs)


def default_compare_dir(root: Path = COMPARE_ROOT) -> Path:
    """A new folder under output/compare named for the time."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path, n = root / stamp, 1
    while path.exists():
        n += 1
        path = root / f"{stamp}-{n}"
    return path


def check_output_dir(out: Path, paths: Sequence[Path]) -> None:
    """The comparison never writes into a run it reads."""
    for run in paths:
        if out.resolve().is_relative_to(run.resolve()):
            raise SettingsError(
                f"--output-dir {out} is inside the run {run} being compared; choose another folder"
            )
