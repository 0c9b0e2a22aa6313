"""The execution market (docs/MODEL.md): parameters and state, price models behind one
protocol, the batched dynamics, and the Gymnasium environments over them."""

from rl_order_execution.arrays import FloatArray, IntArray
from rl_order_execution.market.dynamics import (
    OBS_DIM,
    StepResult,
    base_rate,
    desired_from_actions,
    desired_from_speeds,
    execution_price,
    expected_next_price,
    market_step,
    observe,
    shock_matrix,
    state_from_obs,
    step_reward,
    trade_size,
    twap_rate,
    twap_value,
)
from rl_order_execution.market.envs import (
    CONTINUOUS_ENV_ID,
    ENV_ID,
    ContinuousExecutionEnv,
    ExecutionEnv,
    VecContinuousExecutionEnv,
    VecExecutionEnv,
    register_envs,
)
from rl_order_execution.market.params import MarketParams, MarketState
from rl_order_execution.market.prices import PRICE_MODELS, LQTransition, PriceModel, price_model
from rl_order_execution.market.shocks import Shocks

__all__ = [
    "CONTINUOUS_ENV_ID",
    "ENV_ID",
    "OBS_DIM",
    "PRICE_MODELS",
    "ContinuousExecutionEnv",
    "ExecutionEnv",
    "FloatArray",
    "IntArray",
    "LQTransition",
    "MarketParams",
    "MarketState",
    "PriceModel",
    "Shocks",
    "StepResult",
    "VecContinuousExecutionEnv",
    "VecExecutionEnv",
    "base_rate",
    "desired_from_actions",
    "desired_from_speeds",
    "execution_price",
    "expected_next_price",
    "market_step",
    "observe",
    "price_model",
    "register_envs",
    "shock_matrix",
    "state_from_obs",
    "step_reward",
    "trade_size",
    "twap_rate",
    "twap_value",
]
