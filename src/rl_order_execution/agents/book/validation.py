"""Greedy validation on the book market: the agent and TWAP on the same validation episodes (their
own seed, never the test set), the mid's unexpected moves removed from both costs by a control
variate."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rl_order_execution.market.book import BookParams, BookPaths, BookPolicy, Twap, rollout
from rl_order_execution.market.book.params import FloatArray


def price_surprise(p: BookParams, paths: BookPaths) -> FloatArray:
    """sum_k q_{k+1} (tau D_k - e(iota_k)) per episode ($): the mid's unexpected moves on the
    inventory held through them. Mean zero for any non-anticipating strategy, so C plus it has
    C's mean without the mid's noise (the fills, the spreads and the imbalance path stay random:
    about a third of TWAP's variance goes)."""
    drift = p.expected_move[paths.imbalance[:, :-1]]
    out: FloatArray = (paths.q[:, 1:] * (p.tick * paths.move - drift)).sum(axis=1)
    return out


@dataclass
class BookValidator:
    """Mean cost of a policy on fixed validation episodes, and its savings vs TWAP in bps."""

    params: BookParams
    episodes: int
    seed: int
    twap_cost: float = field(init=False)

    def __post_init__(self) -> None:
        self.twap_cost = self.cost(Twap())

    @classmethod
    def from_stream(
        cls, p: BookParams, stream: np.random.SeedSequence, episodes: int
    ) -> BookValidator:
        """The validation set drawn from a stream of the master seed."""
        return cls(p, episodes, int(stream.generate_state(1)[0]))

    def cost(self, policy: BookPolicy) -> float:
        """Mean risk-adjusted cost ($) with the price surprise removed."""
        paths = rollout(self.params, policy, self.episodes, self.seed)
        return float((paths.outcomes.cost + price_surprise(self.params, paths)).mean())

    def savings_bps(self, policy: BookPolicy) -> float:
        return (self.twap_cost - self.cost(policy)) * self.params.bps
