from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from rl_order_execution.agents.checkpoint import load_checkpoint, save_checkpoint
from rl_order_execution.agents.dqn import (
    Batch,
    DQNAgent,
    QNetwork,
    ReplayBuffer,
    double_dqn_target,
    vanilla_dqn_target,
)
from rl_order_execution.agents.greedy import GreedyAgent
from rl_order_execution.agents.registry import AGENTS, UnknownAgentKind, agent_spec
from rl_order_execution.agents.training import TrainResult
from rl_order_execution.config import RLSettings, Settings
from rl_order_execution.errors import CheckpointError, UserError
from rl_order_execution.market import (
    OBS_DIM,
    MarketParams,
    MarketState,
    desired_from_actions,
    observe,
)


def small_agent(**rl: Any) -> DQNAgent:
    """A DQN agent with a tiny network over 4 inputs and 3 actions (multipliers 0.5, 1, 2)."""

    def make() -> QNetwork:
        return QNetwork(4, 3, [8])

    multipliers = np.array([0.5, 1.0, 2.0])
    return DQNAgent(make, RLSettings(**rl), multipliers, torch.device("cpu"), seed=3)


def random_batch(rows: int = 16) -> Batch:
    gen = torch.Generator().manual_seed(0)
    return Batch(
        obs=torch.randn(rows, 4, generator=gen),
        actions=torch.randint(0, 3, (rows,), generator=gen),
        rewards=torch.randn(rows, generator=gen),
        next_obs=torch.randn(rows, 4, generator=gen),
        terminated=(torch.rand(rows, generator=gen) < 0.3).float(),
        discounts=torch.full((rows,), 0.9),
    )


def test_double_dqn_target_on_hand_built_batch() -> None:
    # next-state Q-values: the online net prefers action 0 in row 0 and action 2 in row 1
    online = torch.tensor([[5.0, 1.0, 0.0], [0.0, 1.0, 3.0]])
    target = torch.tensor([[1.0, 9.0, 2.0], [4.0, 8.0, 6.0]])
    rewards = torch.tensor([1.0, -1.0])
    terminated = torch.tensor([0.0, 0.0])
    y = double_dqn_target(online, target, rewards, terminated, gamma=0.5)
    # row 0: 1 + 0.5 * target[0, 0] = 1.5 ; row 1: -1 + 0.5 * target[1, 2] = 2.0
    torch.testing.assert_close(y, torch.tensor([1.5, 2.0]))
    vanilla = vanilla_dqn_target(target, rewards, terminated, gamma=0.5)
    torch.testing.assert_close(vanilla, torch.tensor([5.5, 3.0]))  # max over target: 9 and 8
    assert not torch.allclose(y, vanilla)


def test_terminal_transitions_do_not_bootstrap() -> None:
    q = torch.tensor([[5.0, 1.0]])
    y = double_dqn_target(q, q, torch.tensor([2.0]), torch.tensor([1.0]), gamma=1.0)
    torch.testing.assert_close(y, torch.tensor([2.0]))


def test_replay_buffer_wraps_around() -> None:
    buf = ReplayBuffer(capacity=5, obs_dim=2, device=torch.device("cpu"))
    for start in (0, 3):  # 3 rows, then 3 more: the oldest row is overwritten
        idx = np.arange(start, start + 3)
        obs = np.stack([idx, idx], axis=1).astype(np.float32)
        buf.add(obs, idx, idx.astype(np.float32), obs + 100, np.zeros(3), 0.9)
    assert buf.size == 5 and buf.pos == 1
    np.testing.assert_array_equal(buf.actions, [5, 1, 2, 3, 4])
    np.testing.assert_array_equal(buf.next_obs[0], [105.0, 105.0])
    batch = buf.sample(64, np.random.default_rng(0))
    assert set(batch.actions.tolist()) <= {1, 2, 3, 4, 5}
    assert batch.obs.shape == (64, 2) and batch.rewards.dtype == torch.float32


def test_replay_buffer_keeps_newest_rows_of_an_oversized_add() -> None:
    buf = ReplayBuffer(capacity=3, obs_dim=1, device=torch.device("cpu"))
    idx = np.arange(7)
    buf.add(
        idx[:, None].astype(np.float32), idx, idx.astype(np.float32), idx[:, None], idx * 0, 1.0
    )
    assert sorted(buf.actions.tolist()) == [4, 5, 6]


def test_unavailable_cuda_is_a_clear_error() -> None:
    from rl_order_execution.agents import resolve_device

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="no CUDA device"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"


def test_adam_matches_torch_adam() -> None:
    from rl_order_execution.agents.dqn import Adam

    torch.manual_seed(0)
    ours = QNetwork(4, 3, [8])
    theirs = QNetwork(4, 3, [8])
    theirs.load_state_dict(ours.state_dict())
    opt_ours = Adam(list(ours.parameters()), lr=1e-2)
    opt_theirs = torch.optim.Adam(theirs.parameters(), lr=1e-2)
    x = torch.randn(32, 4)
    for _ in range(5):
        for net, opt in ((ours, opt_ours), (theirs, opt_theirs)):
            opt.zero_grad()
            net(x).pow(2).mean().backward()
            opt.step()
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_update_is_one_huber_step_on_the_double_dqn_target() -> None:
    agent = small_agent(lr=1e-2, gamma=1.0, grad_clip=1e9)
    batch = random_batch()
    # the loss by hand: online picks the next action, target scores it, no bootstrap at the end
    with torch.no_grad():
        best = agent.online(batch.next_obs).argmax(dim=1, keepdim=True)
        bootstrap = agent.target(batch.next_obs).gather(1, best).squeeze(1)
        y = batch.rewards + 0.9 * (1 - batch.terminated) * bootstrap
        q = agent.online(batch.obs).gather(1, batch.actions.unsqueeze(1)).squeeze(1)
        expected = torch.nn.functional.smooth_l1_loss(q, y)
    target_before = [t.clone() for t in agent.target.parameters()]
    online_before = [t.clone() for t in agent.online.parameters()]
    loss, mean_q = agent.update(batch)
    assert loss == pytest.approx(float(expected), rel=1e-6)
    assert mean_q == pytest.approx(float(q.mean()), rel=1e-6)
    for before, after in zip(target_before, agent.target.parameters(), strict=True):
        torch.testing.assert_close(before, after)  # only the online net learns
    assert any(
        not torch.equal(b, a) for b, a in zip(online_before, agent.online.parameters(), strict=True)
    )
    losses = [agent.update(batch)[0] for _ in range(30)]
    assert losses[-1] < loss  # the same batch again and again: the TD loss falls


def _params(net: torch.nn.Module) -> list[torch.Tensor]:
    return [t.detach().clone() for t in net.parameters()]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_agent_owns_its_learning_rate_decay() -> None:
    agent = small_agent(lr=1e-2, lr_end_fraction=0.25, grad_clip=1e9)
    assert agent.learning_rate(0.0) == 1e-2
    assert agent.learning_rate(0.5) == pytest.approx(1e-2 * (1 - 0.75 * 0.5))
    assert agent.learning_rate(1.0) == pytest.approx(0.25e-2)
    assert agent.learning_rate(3.0) == pytest.approx(0.25e-2)  # never below the end fraction
    before = _params(agent.online)
    agent.learn(random_batch(), progress=1.0)
    assert agent.optimizer.lr == pytest.approx(0.25e-2)
    # Adam's first step moves every weight by lr * g / (|g| + eps): at most lr, by nearly lr
    after = _params(agent.online)
    moved = max(float((a - b).abs().max()) for a, b in zip(after, before, strict=True))
    assert moved == pytest.approx(0.25e-2, rel=1e-3)


def test_agent_copies_the_target_network_every_target_update_updates() -> None:
    agent = small_agent(lr=1e-2, target_update=3, grad_clip=1e9)
    batch = random_batch()
    initial = _params(agent.target)
    for updates in (1, 2):
        agent.learn(batch, progress=0.0)
        assert agent.updates == updates
        assert _same(_params(agent.target), initial)  # only the online net has moved
        assert not _same(_params(agent.online), initial)
    agent.learn(batch, progress=0.0)
    synced = _params(agent.target)
    assert agent.updates == 3 and _same(synced, _params(agent.online))
    agent.learn(batch, progress=0.0)
    assert _same(_params(agent.target), synced)  # the next copy is 3 updates away


def test_agent_owns_its_exploration_schedule() -> None:
    agent = small_agent(epsilon_start=1.0, epsilon_end=0.05, epsilon_decay=0.9)
    assert agent.exploration_rate(0) == 1.0
    assert agent.exploration_rate(2) == pytest.approx(0.81)
    assert agent.exploration_rate(1000) == 0.05


def test_greedy_agent_trades_the_multiplier_of_the_argmax_bit_for_bit() -> None:
    p = MarketParams()
    agent = DQNAgent.for_market(p, RLSettings(), torch.device("cpu"), seed=0)
    rng = np.random.default_rng(0)
    s = MarketState.initial(p, 3000)  # more rows than one block of the greedy pass
    s.k[:] = rng.integers(0, p.N, 3000)
    s.q *= rng.uniform(0.1, 1.0, 3000)
    s.S *= rng.uniform(0.98, 1.02, 3000)
    actions = agent.greedy(observe(p, s))
    expected = desired_from_actions(p, s, actions)
    np.testing.assert_array_equal(GreedyAgent(agent)(p, s), expected)
    assert GreedyAgent(agent).name == "agent"


# --- checkpoints ----------------------------------------------------------------------------


def _saved(tmp_path: Path) -> tuple[Path, DQNAgent, Settings]:
    settings = Settings.model_validate({"rl": {"dqn": {"hidden_sizes": [16]}}})
    p = MarketParams.from_settings(settings.simulation)
    agent = DQNAgent.for_market(p, settings.rl, torch.device("cpu"), seed=5)
    result = TrainResult(agent, episodes=10, updates=4, seconds=0.5, best_validation_bps=1.5)
    path = tmp_path / "model.pt"
    save_checkpoint(path, result, settings)
    return path, agent, settings


def _observations() -> np.ndarray:
    return np.random.default_rng(1).normal(size=(64, OBS_DIM)).astype(np.float32)


def test_checkpoint_records_kind_and_format_and_restores_the_policy(tmp_path: Path) -> None:
    path, agent, settings = _saved(tmp_path)
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == 2 and payload["kind"] == "ddqn"
    assert set(payload) == {"format", "kind", "weights", "settings", "seed", "versions", "training"}
    assert payload["training"]["updates"] == 4
    loaded = load_checkpoint(path)
    assert loaded.kind == "ddqn" and loaded.settings == settings
    np.testing.assert_array_equal(
        loaded.agent.speeds(_observations()), agent.speeds(_observations())
    )


def test_format_1_checkpoint_without_a_kind_loads_as_ddqn(tmp_path: Path) -> None:
    path, agent, _ = _saved(tmp_path)
    payload = torch.load(path, weights_only=True)
    del payload["kind"]
    payload["format"] = 1
    old = tmp_path / "old.pt"
    torch.save(payload, old)
    loaded = load_checkpoint(old)
    assert loaded.kind == "ddqn"
    np.testing.assert_array_equal(
        loaded.agent.speeds(_observations()), agent.speeds(_observations())
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"kind": "a2c"}, r"agent kind 'a2c' is not known \(known kinds: ddqn, ppo, sac\)"),
        ({"format": 3}, r"format 3 is not readable .*\(readable formats: 1, 2\)"),
    ],
)
def test_unknown_kind_or_format_is_a_checkpoint_error_naming_the_file(
    tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    path, _, _ = _saved(tmp_path)
    payload = torch.load(path, weights_only=True) | changes
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=message) as caught:
        load_checkpoint(path)
    assert str(caught.value).startswith(f"checkpoint {path}: ")
    assert isinstance(caught.value, UserError)  # the CLI prints any UserError as one line


def test_registry_knows_the_double_dqn_by_name() -> None:
    assert agent_spec("ddqn") is AGENTS["ddqn"] and AGENTS["ddqn"].kind == "ddqn"
    with pytest.raises(UnknownAgentKind, match="known kinds: ddqn, ppo, sac"):
        agent_spec("a2c")
