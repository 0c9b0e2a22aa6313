"""The Double DQN, PPO and SAC trained on the limit-order book market (docs/MODEL.md,
"Limit-order book market"): the learner's reward in the market's own unit, validation with the
price noise removed, and the three training loops behind one entry point, `train_book_agent`."""

from rl_order_execution.agents.book.base import (
    BookAgent,
    BookTrainResult,
    action_set,
    as_policy,
    book_params,
    tabulate,
    validator_for,
)
from rl_order_execution.agents.book.reward import advantage_bps, learner_reward, reward_unit
from rl_order_execution.agents.book.training import load_book_agent, train_book_agent
from rl_order_execution.agents.book.validation import BookValidator, price_surprise

__all__ = [
    "BookAgent",
    "BookTrainResult",
    "BookValidator",
    "action_set",
    "advantage_bps",
    "as_policy",
    "book_params",
    "learner_reward",
    "load_book_agent",
    "price_surprise",
    "reward_unit",
    "tabulate",
    "train_book_agent",
    "validator_for",
]
