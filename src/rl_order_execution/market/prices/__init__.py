"""Price models, one module each, chosen by name through this registry.

Adding a model: a module with a class satisfying `PriceModel`, one line in `PRICE_MODELS`, the
setting's allowed names, and its tests."""

from __future__ import annotations

from rl_order_execution.market.prices.base import LQTransition, Multiplicative, PriceModel
from rl_order_execution.market.prices.garch import Garch
from rl_order_execution.market.prices.gbm import GBM
from rl_order_execution.market.prices.jump import Jump
from rl_order_execution.market.prices.ou import OU
from rl_order_execution.market.prices.replay import Replay

# simulated models draw their shocks; replay reads them from real bars (market/replay.py)
PRICE_MODELS: dict[str, PriceModel] = {m.name: m for m in (GBM(), OU(), Jump(), Garch(), Replay())}


def price_model(name: str) -> PriceModel:
    """The registered model called `name`."""
    try:
        return PRICE_MODELS[name]
    except KeyError:
        allowed = ", ".join(PRICE_MODELS)
        raise ValueError(f"price_model {name!r} is not one of: {allowed}") from None


__all__ = [
    "PRICE_MODELS",
    "LQTransition",
    "Multiplicative",
    "PriceModel",
    "price_model",
]
