"""How far a trained book Double DQN's values are from the exact ones, and how noisy its one-step
target is in the next spread and imbalance (docs/HISTORY.md, "The book market's Double DQN").

    python -m scripts.book_target_noise RUN [RUN ...] [--fit-steps 30000]

For each run folder with a book Double DQN's model.pt:
- its greedy table (at the mid P0 and last move 0) valued exactly by the dynamic program, as a share
  of the menu optimum's expected advantage over TWAP;
- its Q-values against the exact action values Q*(k, q, s, iota, a) in learner units over the grid
  (mean absolute error, and the same after removing each state's mean over actions), beside the
  mean gap between an action and the best;
- over 59 steps of 4,096 episodes of its own greedy policy, the std of the sampled next value
  (Double DQN, online net for both roles) around its average over the chains
  (`ExogenousExpectation`), and the share of those differences beyond 1 learner unit;
- with --fit-steps N: the same network regressed on Q* over the grid for N Adam steps, and its
  greedy table's exact share (can the network hold the optimum?).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rl_order_execution.agents.book.base import book_params, grid_observations, tabulate
from rl_order_execution.agents.book.dqn import BookDQN
from rl_order_execution.agents.book.exogenous import ExogenousExpectation
from rl_order_execution.agents.book.reward import reward_unit
from rl_order_execution.agents.checkpoint import load_any_checkpoint
from rl_order_execution.agents.dqn.agent import sampled_next_value
from rl_order_execution.agents.dqn.network import QNetwork
from rl_order_execution.agents.dqn.replay import Batch
from rl_order_execution.market.book import BookParams, BookVecEnv
from rl_order_execution.market.book.optimum import (
    action_values,
    evaluate_table,
    next_expectation,
    solve_menu,
    twap_expected_cost,
)

CPU = torch.device("cpu")


def exact_share(p: BookParams, table: np.ndarray) -> float:
    """The share of the menu optimum's expected advantage over TWAP of a fixed table policy."""
    twap, best = twap_expected_cost(p), solve_menu(p).expected_cost
    return (twap - evaluate_table(p, table).expected_cost) / (twap - best)


def exact_q(p: BookParams) -> np.ndarray:
    """Q*(k, g, s, i, a) in learner units (N, G, S, L, A); at k = N - 1 every action sells all."""
    sol = solve_menu(p)
    q = np.empty((*sol.values.shape, p.n_actions))
    for k in range(p.N - 1):
        q[k] = np.moveaxis(
            action_values(p, next_expectation(p, sol.values[k + 1]), p.actions), 0, -1
        )
    q[p.N - 1] = sol.values[p.N - 1][..., None]
    out: np.ndarray = q * p.bps * reward_unit(p)
    return out


def grid_obs(p: BookParams) -> tuple[np.ndarray, np.ndarray]:
    """`grid_observations`, and where q > 0 and k < N - 1 (the states where actions differ)."""
    shape = (p.N, p.G, len(p.spreads), len(p.levels))
    k, g = (x.reshape(-1) for x in np.indices(shape)[:2])
    return grid_observations(p), (p.grid[g] > 0) & (k < p.N - 1)


def q_errors(p: BookParams, net: torch.nn.Module) -> tuple[float, float, float]:
    obs, acting = grid_obs(p)
    target = exact_q(p).reshape(len(obs), p.n_actions)[acting]
    with torch.no_grad():
        q = net(torch.from_numpy(obs)).numpy()[acting]
    err = q - target
    centred = err - err.mean(axis=1, keepdims=True)
    gap = target.max(axis=1, keepdims=True) - target
    return float(np.abs(err).mean()), float(np.abs(centred).mean()), float(gap.mean())


def target_noise(p: BookParams, book: BookDQN, episodes: int = 4096) -> tuple[float, float]:
    net, expected = book.dqn.online, ExogenousExpectation(p, CPU)
    env = BookVecEnv(episodes, p)
    obs, _ = env.reset(seed=5)
    diffs = []
    for _ in range(p.N - 1):
        actions = book.act(obs)
        nxt, reward, done, _, _ = env.step(actions)
        live = ~done

        def t(x: np.ndarray, live: np.ndarray = live) -> torch.Tensor:
            return torch.as_tensor(np.asarray(x)[live], dtype=torch.float32)

        batch = Batch(
            t(obs), t(actions).long(), t(reward), t(nxt), t(done), torch.ones(int(live.sum()))
        )
        with torch.no_grad():
            average = expected(net, net, batch)
            sampled = sampled_next_value(net, net, batch)
        diffs.append((sampled - average).numpy())
        obs = nxt
    d = np.concatenate(diffs)
    return float(d.std()), float(np.mean(np.abs(d) > 1.0))


def fitted_share(p: BookParams, hidden: list[int], steps: int) -> float:
    obs, acting = grid_obs(p)
    x = torch.from_numpy(obs[acting])
    y = torch.from_numpy(exact_q(p).reshape(len(obs), p.n_actions)[acting].astype(np.float32))
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    net = QNetwork(6, p.n_actions, hidden)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    for _ in range(steps):
        rows = torch.from_numpy(rng.integers(0, len(x), 512))
        xb = x[rows].clone()  # the features the optimum ignores, drawn as the agent sees them
        xb[:, 2] = torch.from_numpy(rng.normal(0.0, 1.0, 512).astype(np.float32))
        xb[:, 3] = torch.from_numpy(rng.integers(-1, 2, 512).astype(np.float32))
        loss = torch.nn.functional.smooth_l1_loss(net(xb), y[rows])
        optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()

    with torch.no_grad():  # its greedy action at every (k, g, s, i), as `tabulate` takes them
        greedy = net(torch.from_numpy(grid_observations(p))).argmax(dim=1).numpy()
    return exact_share(p, greedy.reshape(p.N, p.G, len(p.spreads), len(p.levels)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--fit-steps", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    for run in args.runs:
        loaded: Any = load_any_checkpoint(run / "model.pt")
        if loaded.settings.rl.agent != "ddqn" or not isinstance(loaded.agent, BookDQN):
            raise SystemExit(f"{run}: not a book Double DQN run")
        p = book_params(loaded.settings)
        book: BookDQN = loaded.agent
        share = exact_share(p, tabulate(p, book))
        err, centred, gap = q_errors(p, book.dqn.online)
        std, beyond = target_noise(p, book)
        print(
            f"{run}: greedy table {100 * share:.1f} % of the optimum's advantage (exact); "
            f"|Q - Q*| {err:.2f} units ({centred:.2f} centred per state; mean gap {gap:.2f}); "
            f"sampled - chains' average next value: std {std:.2f} units, "
            f"{100 * beyond:.1f} % beyond 1"
        )
        if args.fit_steps:
            fitted = fitted_share(p, loaded.settings.rl.dqn.hidden_sizes, args.fit_steps)
            print(f"  the network regressed on Q* ({args.fit_steps} steps): {100 * fitted:.1f} %")


if __name__ == "__main__":
    main()
