from __future__ import annotations

import numpy as np
import pytest
import torch

from rl_order_execution.agents import ReplayBuffer, double_dqn_target, vanilla_dqn_target


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
    from rl_order_execution.agents import Adam, QNetwork

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
    from rl_order_execution.agents import Batch, DQNAgent, QNetwork

    def make() -> QNetwork:
        return QNetwork(4, 3, [8])

    agent = DQNAgent(make, lr=1e-2, gamma=1.0, grad_clip=1e9, device=torch.device("cpu"), seed=3)
    gen = torch.Generator().manual_seed(0)
    batch = Batch(
        obs=torch.randn(16, 4, generator=gen),
        actions=torch.randint(0, 3, (16,), generator=gen),
        rewards=torch.randn(16, generator=gen),
        next_obs=torch.randn(16, 4, generator=gen),
        terminated=(torch.rand(16, generator=gen) < 0.3).float(),
        discounts=torch.full((16,), 0.9),
    )
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
