"""A run's per-episode costs (`episodes.npz`): TWAP's and each agent's implementation shortfall and
risk-adjusted cost on every test episode, in bps of Q*P0, so that `rl-exec compare` can pair two
runs evaluated on the same episodes."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from rl_order_execution.arrays import FloatArray
from rl_order_execution.files import atomic_write

EPISODES_FILE = "episodes.npz"
FORMAT = 1
BASELINE = "twap"


class _Costs(Protocol):
    @property
    def shortfall(self) -> FloatArray: ...

    @property
    def cost(self) -> FloatArray: ...


class _Notional(Protocol):
    @property
    def bps(self) -> float: ...


class EvaluatedEpisodes(Protocol):
    """What a run's evaluation provides (the simulated and replayed markets', or the book's)."""

    @property
    def params(self) -> _Notional: ...

    @property
    def outcomes(self) -> Mapping[str, _Costs]: ...


@dataclass(frozen=True)
class EpisodeCosts:
    """Per-episode IS and cost in bps of Q*P0 of TWAP and the agents, (E,) each."""

    shortfall_bps: dict[str, FloatArray]
    cost_bps: dict[str, FloatArray]
    antithetic: bool  # episodes i and i + E/2 are an antithetic pair (the pair is the unit)

    @property
    def episodes(self) -> int:
        return len(self.cost_bps[BASELINE])


def _kept(name: str) -> bool:
    return name == BASELINE or name.startswith("agent")


def save_episode_costs(path: Path, evaluation: EvaluatedEpisodes) -> None:
    """Write TWAP's and the agents' per-episode IS and cost (bps of Q*P0) atomically."""
    names = [name for name in evaluation.outcomes if _kept(name)]
    bps = evaluation.params.bps
    outcomes = evaluation.outcomes
    arrays = {
        "format": np.array(FORMAT),
        "strategies": np.array(names),
        "shortfall_bps": np.stack([np.asarray(outcomes[n].shortfall) * bps for n in names]),
        "cost_bps": np.stack([np.asarray(outcomes[n].cost) * bps for n in names]),
        "antithetic": np.array(bool(getattr(evaluation, "antithetic", False))),
    }
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
    atomic_write(path, lambda handle: handle.write(buffer.getvalue()))


class EpisodesFileError(ValueError):
    """An episodes.npz that cannot be read (the caller says which run it belongs to)."""


def load_episode_costs(path: Path) -> EpisodeCosts:
    """Read an episodes.npz written by save_episode_costs."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if int(data["format"]) != FORMAT:
                raise EpisodesFileError(f"format {int(data['format'])} is not readable")
            names = [str(n) for n in data["strategies"]]
            shortfall, cost = np.asarray(data["shortfall_bps"]), np.asarray(data["cost_bps"])
            antithetic = bool(data["antithetic"])
    except EpisodesFileError:
        raise
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise EpisodesFileError("not a readable episodes file") from exc
    if BASELINE not in names or shortfall.shape != cost.shape or len(cost) != len(names):
        raise EpisodesFileError("its arrays do not match its strategies")
    return EpisodeCosts(
        {n: shortfall[i] for i, n in enumerate(names)},
        {n: cost[i] for i, n in enumerate(names)},
        antithetic,
    )
