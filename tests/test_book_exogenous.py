"""The Double DQN's expected target on the book market (agents/book/exogenous.py): its value is
the chains' average of the sampled target's, the env's own transitions agree with the weights,
the agent uses it by default on the book only, and the settings refuse what it cannot do."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from rl_order_execution.agents.book.dqn import BookDQN
from rl_order_execution.agents.book.exogenous import ExogenousExpectation
from rl_order_execution.agents.dqn.agent import double_dqn_target
from rl_order_execution.agents.dqn.network import QNetwork
from rl_order_execution.agents.dqn.replay import Batch
from rl_order_execution.cli import app
from rl_order_execution.config import Settings
from rl_order_execution.config.schema import saved_settings
from rl_order_execution.market.book import OBS_DIM, BookParams, BookVecEnv

# a market whose chains are full matrices of three spreads and five levels (not the defaults')
TABLES = BookParams.from_settings(
    {
        "spreads": [1, 2, 3],
        "spread_transition": [[0.8, 0.15, 0.05], [0.4, 0.5, 0.1], [0.3, 0.3, 0.4]],
        "imbalance_transition": [
            [0.7, 0.2, 0.1, 0.0, 0.0],
            [0.15, 0.6, 0.2, 0.05, 0.0],
            [0.05, 0.15, 0.6, 0.15, 0.05],
            [0.0, 0.05, 0.2, 0.6, 0.15],
            [0.0, 0.0, 0.1, 0.2, 0.7],
        ],
    }
)
CPU = torch.device("cpu")
runner = CliRunner()


def _networks(p: BookParams) -> tuple[QNetwork, QNetwork]:
    torch.manual_seed(3)
    return QNetwork(OBS_DIM, p.n_actions, [16]), QNetwork(OBS_DIM, p.n_actions, [16])


def _batch(p: BookParams, rows: int, seed: int) -> Batch:
    """Observations of the env itself: a wait from a random start, then the next ones."""
    env = BookVecEnv(rows, p)
    obs, _ = env.reset(seed=seed)
    next_obs, reward, terminated, _, _ = env.step(np.zeros(rows, dtype=np.int64))

    def t(x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(x, dtype=torch.float32)

    return Batch(
        t(obs),
        torch.zeros(rows, dtype=torch.int64),
        t(reward),
        t(next_obs),
        t(terminated),
        torch.ones(rows),
    )


def _sampled_value(online: QNetwork, target: QNetwork, next_obs: torch.Tensor) -> torch.Tensor:
    """The Double DQN's value at the next observation as drawn."""
    zero = torch.zeros(len(next_obs))
    with torch.no_grad():
        return double_dqn_target(online(next_obs), target(next_obs), zero, zero, 1.0)


def test_the_expected_value_is_the_chains_average_of_the_sampled_ones() -> None:
    p = TABLES
    online, target = _networks(p)
    batch = _batch(p, 64, seed=1)
    with torch.no_grad():
        expected = ExogenousExpectation(p, CPU)(online, target, batch).numpy()
    by_hand = np.zeros(len(batch.obs))
    for row in range(len(batch.obs)):
        s = int(np.flatnonzero(p.spreads == float(batch.obs[row, 4]))[0])
        i = int(np.argmin(np.abs(p.levels - float(batch.obs[row, 5]))))
        for s2, spread in enumerate(p.spreads):
            for i2, level in enumerate(p.levels):
                x = batch.next_obs[row : row + 1].clone()
                x[0, 4], x[0, 5] = float(spread), float(level)
                weight = p.spread_transition[s, s2] * p.imbalance_transition[i, i2]
                by_hand[row] += weight * float(_sampled_value(online, target, x)[0])
    np.testing.assert_allclose(expected, by_hand, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("p", [BookParams.default(), TABLES], ids=["defaults", "tables"])
def test_the_envs_own_transitions_average_to_the_expected_value(p: BookParams) -> None:
    """From one start state, many draws of the env's next (spread, imbalance): the mean of the
    sampled Double DQN values is the expectation (4 standard errors), and it is a different
    number from the sampled value of any one draw (the expectation is not a no-op)."""
    online, target = _networks(p)
    rows = 20_000
    batch = _batch(p, rows, seed=7)
    first = batch.obs[0]
    same = (batch.obs[:, 4] == first[4]) & (batch.obs[:, 5] == first[5])
    picked = Batch(*(x[same] for x in batch))  # one (s_k, iota_k): the chains' rows are fixed
    assert len(picked.obs) > 1000
    # the same inventory, time, price and move everywhere: only the chains' draw differs
    nxt = picked.next_obs.clone()
    nxt[:, :4] = picked.next_obs[0, :4]
    sampled = _sampled_value(online, target, nxt).numpy()
    aligned = Batch(
        picked.obs, picked.actions, picked.rewards, nxt, picked.terminated, picked.discounts
    )
    with torch.no_grad():
        expected = ExogenousExpectation(p, CPU)(online, target, aligned).numpy()
    assert np.ptp(expected) < 1e-5  # one state, one expectation
    se = sampled.std(ddof=1) / np.sqrt(len(sampled))
    assert se > 0 and abs(sampled.mean() - expected[0]) < 4 * se


def test_the_book_double_dqn_uses_the_expectation_unless_told_not_to() -> None:
    p = BookParams.default()
    on = Settings(simulation={"price_model": "book"})
    off = Settings(
        simulation={"price_model": "book"},
        rl={"dqn": {"exogenous_expectation": False, "n_step": 3}},
    )
    assert on.rl.dqn.exogenous_expectation and not off.rl.dqn.exogenous_expectation
    assert isinstance(BookDQN(p, on.rl, 0).dqn.next_value, ExogenousExpectation)
    assert BookDQN(p, off.rl, 0).dqn.next_value is None
    assert not Settings().rl.dqn.exogenous_expectation  # the simulated market has no chains


def test_a_learning_step_bootstraps_from_the_expected_value() -> None:
    """The update's target is r + discount (1 - done) times the expectation: a step on a batch
    moves the online net towards it, not towards the sampled target."""
    p = TABLES
    book = BookDQN(p, Settings(simulation={"price_model": "book"}).rl, 0)
    batch = _batch(p, 256, seed=2)
    agent = book.dqn
    assert agent.next_value is not None
    with torch.no_grad():
        expected = agent.next_value(agent.online, agent.target, batch)
        sampled = _sampled_value(agent.online, agent.target, batch.next_obs)
    assert float((expected - sampled).abs().max()) > 1e-4
    y = batch.rewards + (1.0 - batch.terminated) * expected
    q = agent.online(batch.obs).gather(1, batch.actions.unsqueeze(1)).squeeze(1).detach()
    agent.update(batch)
    after = agent.online(batch.obs).gather(1, batch.actions.unsqueeze(1)).squeeze(1).detach()
    assert float(torch.nn.functional.smooth_l1_loss(after, y)) < float(
        torch.nn.functional.smooth_l1_loss(q, y)
    )


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ("simulation:\n  price_model: book\nrl:\n  dqn:\n    n_step: 3\n", "rl.dqn.n_step"),
        ("rl:\n  dqn:\n    exogenous_expectation: true\n", "rl.dqn.exogenous_expectation"),
    ],
    ids=["n-step on the book", "on a simulated market"],
)
def test_what_the_expectation_cannot_do_is_one_line_and_exit_2(
    tmp_path: Path, config: str, named: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(config)
    result = runner.invoke(app, ["run", "--config", str(path), "--output-dir", str(tmp_path / "o")])
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and errors[0].startswith(f"error: setting {named}: ")
    assert not (tmp_path / "o").exists()


def test_n_step_targets_run_on_the_book_without_the_expectation() -> None:
    s = Settings(
        simulation={"price_model": "book"},
        rl={"dqn": {"n_step": 3, "exogenous_expectation": False}},
    )
    assert s.rl.dqn.n_step == 3


def test_a_double_dqn_saved_before_the_expectation_loads_without_it() -> None:
    old = {"simulation": {"price_model": "book"}, "rl": {"agent": "ddqn", "dqn": {"lr": 0.001}}}
    migrated = Settings(**saved_settings(old))
    assert not migrated.rl.dqn.exogenous_expectation
    saved_now = Settings(simulation={"price_model": "book"}).model_dump(mode="json")
    assert Settings(**saved_settings(saved_now)).rl.dqn.exogenous_expectation


def test_the_diagnosis_scripts_exact_values_agree_with_the_dynamic_program() -> None:
    """scripts/book_target_noise: the optimum's own table is worth 100 % of itself, the best
    action's exact value is W in learner units, and an untrained network's values are off."""
    from rl_order_execution.agents.book.reward import reward_unit
    from rl_order_execution.market.book.optimum import solve_menu
    from scripts.book_target_noise import exact_q, exact_share, q_errors

    p = BookParams.from_settings({}, time_horizon=12)
    sol = solve_menu(p)
    assert exact_share(p, sol.policy) == pytest.approx(1.0, abs=1e-12)
    q = exact_q(p)
    w = sol.values * p.bps * reward_unit(p)
    np.testing.assert_allclose(q.max(axis=-1), w, rtol=1e-12, atol=1e-12)
    online, _ = _networks(p)
    err, centred, gap = q_errors(p, online)
    assert err > centred > 0 and gap > 0
