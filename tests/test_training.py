from __future__ import annotations

import numpy as np
import pytest

from rl_order_execution.agents.dqn import epsilon_at, train
from rl_order_execution.agents.greedy import GreedyAgent
from rl_order_execution.agents.shaping import learner_reward
from rl_order_execution.agents.training import TrainingSeeds
from rl_order_execution.config import Settings
from rl_order_execution.evaluation import StrategyMetrics, evaluate, optimum_gap
from rl_order_execution.experiment import evaluate_strategies
from rl_order_execution.market import MarketParams, VecExecutionEnv, shock_matrix
from rl_order_execution.strategies import TWAP, Strategy


def _settings(**rl: object) -> Settings:
    dqn = {"n_envs": 8, "learning_starts": 100, "batch_size": 32}
    return Settings.model_validate({"rl": {"episodes": 64, "dqn": dqn, "eval_interval": 32, **rl}})


def _metrics(settings: Settings) -> dict[str, StrategyMetrics]:
    p = MarketParams.of(settings)
    result = train(settings, p)
    return evaluate_strategies(settings, p, [TWAP(), GreedyAgent(result.agent)]).metrics()


def test_same_seed_same_metrics_different_seed_differs() -> None:
    settings = _settings(validation_episodes=50)
    first, second = _metrics(settings), _metrics(settings)
    assert first == second
    other = settings.model_copy(
        update={"simulation": settings.simulation.model_copy(update={"seed": 7})}
    )
    assert _metrics(other)["agent"] != first["agent"]


def test_every_strategy_sees_the_same_shocks() -> None:
    p = MarketParams(alpha=0.0)  # no permanent impact: mid prices depend on shocks only
    ev = evaluate(p, [TWAP(), GreedyAgent(train(_settings(), p).agent)], shock_matrix(p, 3, 20))
    np.testing.assert_allclose(ev.trajectories["twap"].S, ev.trajectories["agent"].S)


def test_evaluation_in_blocks_gives_the_same_numbers_and_bounded_paths(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib

    from rl_order_execution.strategies import OptimalStrategy

    # the module, not the `rollout` function that the package re-exports under the same name
    rollout_module = importlib.import_module("rl_order_execution.evaluation.rollout")

    p = MarketParams(price_model="ou", sigma=0.004)  # an adaptive strategy too
    shocks = shock_matrix(p, 5, 1_000, antithetic=True)
    strategies: list[Strategy] = [TWAP(), OptimalStrategy()]
    whole = evaluate(p, strategies, shocks, antithetic=True)
    monkeypatch.setattr(rollout_module, "CHUNK_EPISODES", 300)  # 300, 300, 300, 100
    monkeypatch.setattr(rollout_module, "SAMPLE_PATHS", 50)
    blocks = evaluate(p, strategies, shocks, antithetic=True)
    assert blocks.episodes == 1_000
    for name in ("twap", "optimal"):
        np.testing.assert_array_equal(blocks.outcomes[name].cost, whole.outcomes[name].cost)
        np.testing.assert_array_equal(
            blocks.outcomes[name].shortfall, whole.outcomes[name].shortfall
        )
        assert blocks.trajectories[name].q.shape == (50, p.N + 1)  # only the sample paths
        np.testing.assert_array_equal(blocks.trajectories[name].S, whole.trajectories[name].S[:50])
    assert blocks.metrics(exact_gap=optimum_gap(p)) == whole.metrics(exact_gap=optimum_gap(p))


def test_epsilon_schedule_decays_to_floor() -> None:
    assert epsilon_at(0, 1.0, 0.05, 0.9) == 1.0
    assert epsilon_at(1, 1.0, 0.05, 0.9) == pytest.approx(0.9)
    assert epsilon_at(1000, 1.0, 0.05, 0.9) == 0.05


def test_learner_reward_keeps_the_episode_return_up_to_the_start_potential() -> None:
    """Shaping + control variate: the learner's episode return = env return + Phi(s0) + a
    zero-mean term, so its mean over many episodes is the env's mean return + Phi(s0)."""
    settings = Settings()
    p = MarketParams.from_settings(settings.simulation)
    rl = settings.rl.model_copy(update={"reward_scale": 1.0})
    env = VecExecutionEnv(4000, p)
    obs, _ = env.reset(seed=1)
    env_total = np.zeros(4000)
    learner_total = np.zeros(4000)
    for _ in range(p.N):
        nxt, reward, term, _, info = env.step(np.full(4000, 2))
        final = np.where(term[:, None], info.get("final_obs", nxt), nxt)
        learner_total += learner_reward(p, rl, obs, reward, final, term)
        env_total += reward
        obs = nxt
    phi0 = -7617.0 * p.bps  # Phi(s0) = E[return of TWAP] at the defaults
    diff = learner_total - env_total
    se = diff.std(ddof=1) / np.sqrt(len(diff))
    assert abs(diff.mean() - (-phi0)) < 4 * se + 1e-3
    assert learner_total.std() < 0.2 * env_total.std()  # and most of the noise is gone


def test_seeds_split_into_independent_streams() -> None:
    a, b = TrainingSeeds.from_master(1), TrainingSeeds.from_master(2)
    assert a.env != b.env and a.agent != b.agent and a.env != a.agent


def test_short_training_captures_half_of_the_optimum_advantage() -> None:
    settings = Settings.model_validate({"rl": {"episodes": 400}})
    result = train(settings, MarketParams.of(settings))
    p = MarketParams.from_settings(settings.simulation)
    m = evaluate_strategies(settings, p, [TWAP(), GreedyAgent(result.agent)]).metrics(
        exact_gap=optimum_gap(p)
    )
    gap = m["agent"].gap_captured
    assert gap is not None and gap.value >= 0.5


def test_n_step_returns_sum_rewards_and_stop_at_episode_end() -> None:
    from rl_order_execution.agents.dqn import NStepReturns

    window = NStepReturns(n=3, gamma=0.5)
    obs = [np.full((2, 1), float(t), dtype=np.float32) for t in range(5)]
    # env 0 runs on; env 1 ends its episode at step 1
    steps = [
        (np.array([1.0, 10.0]), np.array([False, False])),
        (np.array([2.0, 20.0]), np.array([False, True])),
        (np.array([4.0, 40.0]), np.array([False, False])),
    ]
    out = None
    for t, (reward, term) in enumerate(steps):
        out = window.push(obs[t], np.array([t, t]), reward, obs[t + 1], term)
    assert out is not None
    first_obs, actions, total, next_obs, done, discount = out
    np.testing.assert_allclose(total, [1 + 0.5 * 2 + 0.25 * 4, 10 + 0.5 * 20])
    np.testing.assert_array_equal(done, [False, True])
    np.testing.assert_allclose(discount, [0.125, 0.25])
    np.testing.assert_allclose(next_obs[:, 0], [3.0, 2.0])  # s_{t+3}, or the final state
    assert actions.tolist() == [0, 0] and first_obs[0, 0] == 0.0


def test_dueling_head_centres_advantages() -> None:
    import torch

    from rl_order_execution.agents.dqn import QNetwork

    net = QNetwork(4, 5, [8], dueling=True)
    x = torch.randn(6, 4)
    out = net.head(net.body(x))
    q = net(x)
    torch.testing.assert_close(q.mean(dim=1), out[:, 0])  # mean_a Q = V when advantages centre


@pytest.mark.parametrize("lot_size", [0.0, 5.0])
def test_a_strategy_that_peeks_at_future_shocks_is_flagged(lot_size: float) -> None:
    """Selling ahead of a fall it cannot know about beats the exact optimum: the run must warn.

    Cheap impact and high volatility make the peek pay; lambda = 0 makes the optimum TWAP. With
    lots the bound is the continuous optimum's exact cost.
    """
    from rl_order_execution.market import MarketState, twap_rate
    from rl_order_execution.strategies import OptimalStrategy

    p = MarketParams(beta=0.006, sigma=0.01, lam=0.0, lot_size=lot_size)
    shocks = shock_matrix(p, 11, 2000)

    class Peeking:
        name = "peeking"

        def __call__(self, p: MarketParams, s: MarketState) -> np.ndarray:
            upcoming = shocks.z[:, min(int(s.k[0]), p.N - 1)]  # the shock after this trade
            return twap_rate(p, s.q, s.k) * np.where(upcoming < 0, 2.0, 0.5)

    ev = evaluate(p, [TWAP(), OptimalStrategy(), Peeking()], shocks)
    assert ev.beats_optimum() == ["peeking"]
    honest = evaluate(p, [TWAP(), OptimalStrategy()], shocks)
    assert honest.beats_optimum() == []
