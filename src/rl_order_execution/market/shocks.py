"""Exogenous price shocks: drawn once, shared by every strategy (common random numbers)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from rl_order_execution.arrays import FloatArray

if TYPE_CHECKING:
    from rl_order_execution.market.replay import Windows


@dataclass(frozen=True)
class Shocks:
    """Standard normal shocks z and, for models with jumps, the summed log jump sizes.

    Arrays are (E, N) for E episodes over N steps, or (B,) for one step of B episodes. Replayed
    episodes carry their `windows` (real bars), and z holds the path's increments in $.
    """

    z: FloatArray
    jump: FloatArray | None = None
    windows: Windows | None = None

    def __len__(self) -> int:
        return int(self.z.shape[0])

    @property
    def horizon(self) -> int:
        return int(self.z.shape[1])

    def rows(self, start: int, stop: int) -> Shocks:
        """Episodes start..stop-1."""
        jump = None if self.jump is None else self.jump[start:stop]
        windows = None if self.windows is None else self.windows.rows(start, stop)
        return Shocks(self.z[start:stop], jump, windows)

    def steps(self) -> list[Shocks]:
        """One (E,) Shocks per step, each contiguous (a rollout reads them step by step)."""
        z = np.ascontiguousarray(self.z.T)
        jump = None if self.jump is None else np.ascontiguousarray(self.jump.T)
        return [Shocks(z[k], None if jump is None else jump[k]) for k in range(len(z))]

    def mirrored(self) -> Shocks:
        """These episodes followed by their antithetic twins: z negated, jumps shared."""
        if self.windows is not None:
            raise ValueError("replayed windows have no antithetic twins")
        jump = None if self.jump is None else np.concatenate([self.jump, self.jump])
        return Shocks(np.concatenate([self.z, -self.z]), jump)


def generator_state(rng: np.random.Generator) -> dict[str, Any]:
    """A generator's exact position as plain data (ints and strings), for a checkpoint."""
    return dict(rng.bit_generator.state)


def generator_from_state(state: dict[str, Any]) -> np.random.Generator:
    """The generator generator_state() described, continuing where it stopped."""
    bit_generator = getattr(np.random, state["bit_generator"])()
    bit_generator.state = state
    return np.random.Generator(bit_generator)
