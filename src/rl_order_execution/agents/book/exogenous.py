"""The Double DQN's bootstrapped value on the book market, averaged over the next spread and
imbalance instead of read at the ones drawn.

The spread and the imbalance follow their own Markov chains whatever the agent does (docs/MODEL.md,
"Limit-order book market"): given (s_k, iota_k), the next (s', iota') is drawn from
Pi_s[s_k] x Pi_I[iota_k], independently of the fill and of the mid's move. The one-step target
r + V(k+1, q', s', iota') carries the noise of that draw, and the value of holding inventory
differs by whole learner units between imbalance levels (the drift e(iota) on what is held), where
the gaps between actions that the agent must learn are tenths. The target here is

    y = r + gamma sum_{s'', i''} Pi_s[s_k, s''] Pi_I[i_k, i''] Q_target(x'', a''),
    a'' = argmax_a Q_online(x'', a),

with x'' the next observation with its spread and imbalance replaced by (s'', i''): the same mean
as the sampled target, without the draw's variance. It is an expected backup over the exogenous
part of the state, as expected SARSA is over the policy's actions; the learner's reward already
removes the mid's surprise with the same market law (`agents.book.reward`). The chains are the
market's own settings, which `rl-exec calibrate-book` estimates from data.

One-step targets only (rl.dqn.n_step 1): an n-step target's bootstrap follows the state n - 1
steps on, which the replay buffer does not keep.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from rl_order_execution.agents.dqn.agent import double_dqn_value
from rl_order_execution.agents.dqn.replay import Batch
from rl_order_execution.market.book import BookParams

SPREAD, IMBALANCE = 4, 5  # their columns in the book's observation


class ExogenousExpectation:
    """next_value(online, target, batch) -> (B,) the Double DQN's next-state value, averaged over
    the next (spread, imbalance) by the market's transition matrices."""

    def __init__(self, p: BookParams, device: torch.device) -> None:
        def tensor(x: object) -> torch.Tensor:  # a copy: the params' arrays are read-only
            return torch.from_numpy(np.array(x, dtype=np.float32)).to(device)

        self.spreads, self.levels = tensor(p.spreads), tensor(p.levels)
        S, L = len(p.spreads), len(p.levels)
        self.outcomes = S * L
        # every (s'', i'') pair, spread-major, and its probability from each (s, i)
        self.next_spreads = self.spreads.repeat_interleave(L)
        self.next_levels = self.levels.repeat(S)
        self.spread_rows = tensor(p.spread_transition)  # (S, S)
        self.level_rows = tensor(p.imbalance_transition)  # (L, L)

    def _index(self, values: torch.Tensor, column: torch.Tensor) -> torch.Tensor:
        return (column[:, None] - values[None, :]).abs().argmin(dim=1)

    def weights(self, obs: torch.Tensor) -> torch.Tensor:
        """(B, S L) probabilities of each next (s'', i'') from the rows' (s_k, iota_k)."""
        s = self._index(self.spreads, obs[:, SPREAD])
        i = self._index(self.levels, obs[:, IMBALANCE])
        pairs = self.spread_rows[s][:, :, None] * self.level_rows[i][:, None, :]
        return pairs.reshape(len(obs), self.outcomes)

    def __call__(self, online: nn.Module, target: nn.Module, batch: Batch) -> torch.Tensor:
        B = len(batch.next_obs)
        nxt = batch.next_obs.unsqueeze(1).repeat(1, self.outcomes, 1)  # (B, S L, obs_dim)
        nxt[:, :, SPREAD] = self.next_spreads
        nxt[:, :, IMBALANCE] = self.next_levels
        flat = nxt.reshape(B * self.outcomes, -1)
        values = double_dqn_value(online(flat), target(flat)).reshape(B, self.outcomes)
        expected: torch.Tensor = (self.weights(batch.obs) * values).sum(dim=1)
        return expected
