"""Which market a set of settings describes: a stable short hash that names it (study names, the
tuned parameters of `config/best_params.yaml`, pairing runs in `rl-exec compare`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from rl_order_execution.config.schema import ReplaySettings, Settings, SimulationSettings

# The market settings of the first edition: always hashed. Settings added since count only when
# they differ from their defaults, so an unchanged market keeps its hash across versions.
FIRST_EDITION_MARKET = frozenset(
    {
        "action_multipliers",
        "drift",
        "liquidity_param",
        "lot_size",
        "mean_reversion",
        "price_model",
        "rate_basis",
        "risk_aversion",
        "start_price",
        "temp_impact_param",
        "time_horizon",
        "total_shares",
        "volatility",
    }
)


def market_hash(
    simulation: SimulationSettings,
    replay: ReplaySettings | None = None,
    book: Mapping[str, Any] | None = None,
) -> str:
    """Eight hex digits identifying the market: the simulation section without its seed; on
    replayed bars also the replay section (file, columns, splits), on the book market its `book:`
    section. Sections the market does not use are left out."""
    values = simulation.model_dump(mode="json", exclude={"seed"})
    defaults = type(simulation)().model_dump(mode="json")
    data = {k: v for k, v in values.items() if k in FIRST_EDITION_MARKET or v != defaults.get(k)}
    if simulation.price_model == "replay" and replay is not None:
        data["replay"] = replay.model_dump(mode="json")
    if simulation.price_model == "book" and book:
        data["book"] = dict(book)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:8]


def settings_market(settings: Settings) -> str:
    """The market hash of a whole Settings object."""
    return market_hash(settings.simulation, settings.replay, settings.book)
