"""The limit-order book market: MODEL.md's facts at the defaults, hand-computed steps, common
random numbers and the Gymnasium envs."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from rl_order_execution.market.book import (
    BookEnv,
    BookParams,
    BookPolicy,
    BookState,
    BookVecEnv,
    Limit,
    Market,
    Passive,
    Twap,
    advance,
    advantage_share,
    best_fixed_rule,
    continuous_optimum,
    continuous_orders,
    evaluate,
    evaluate_table,
    features,
    imbalance_blind,
    menu_optimum,
    menu_orders,
    reset,
    rollout,
    solve_continuous,
    solve_menu,
    step,
    twap_expected_cost,
)
from rl_order_execution.market.book.dynamics import market_orders
from rl_order_execution.market.book.restricted import marginal_policy, occupancy

P = BookParams.default()
MC_EPISODES = 200_000


@pytest.fixture(scope="module")
def menu():
    return solve_menu(P)


@pytest.fixture(scope="module")
def continuous():
    return solve_continuous(P)


def share(cost: float, optimum: float) -> float:
    return advantage_share(twap_expected_cost(P), cost, optimum)


# --- MODEL.md's facts at the defaults ---------------------------------------------------------


def test_stationary_laws_at_the_defaults() -> None:
    # pi_s Pi_s = pi_s: 0.1 pi_1 = 0.5 pi_2; the persistence chain is doubly stochastic
    np.testing.assert_allclose(P.stationary_spread, [5 / 6, 1 / 6], atol=1e-14)
    np.testing.assert_allclose(P.stationary_imbalance, np.full(5, 0.2), atol=1e-14)
    assert P.mean_spread == pytest.approx(7 / 6, abs=1e-14)
    assert P.mean_move_probability == pytest.approx(0.3, abs=1e-14)
    assert P.G == 21  # 1000, 950, ..., 0


def test_twap_expected_cost_closed_form() -> None:
    assert twap_expected_cost(P) == pytest.approx(10.2672, abs=5e-5)
    # its parts: Q sbar tau/2 + beta_b Q^2/N + lambda_b Q (N+1)(2N+1)/(6N), ebar = alpha_b = 0
    by_hand = 1000 * (7 / 6) * 0.005 + 2e-5 * 1e6 / 60 + 2e-4 * 1000 * 61 * 121 / 360
    assert twap_expected_cost(P) == pytest.approx(by_hand, rel=1e-12)


def test_menu_optimum_cost_and_advantage_over_twap(menu) -> None:
    assert menu.expected_cost == pytest.approx(-11.0454, abs=5e-5)
    advantage_bp = (twap_expected_cost(P) - menu.expected_cost) * P.bps
    assert advantage_bp == pytest.approx(2.1313, abs=5e-5)


def test_passive_captures_44_2_percent(menu) -> None:
    passive = evaluate_table(P, 0, actions=(Limit(0.0),))
    assert share(passive.expected_cost, menu.expected_cost) == pytest.approx(0.442, abs=5e-4)


def test_best_imbalance_blind_policy_captures_69_2_percent(menu) -> None:
    blind = imbalance_blind(P)
    assert share(blind.solution.expected_cost, menu.expected_cost) == pytest.approx(0.692, abs=5e-4)
    # blind for real: the same action at every level of the imbalance
    policy = blind.solution.policy[: P.N - 1]
    assert (policy == policy[..., :1]).all()


def test_blind_search_improves_on_its_start(menu) -> None:
    start = marginal_policy(P)
    before = evaluate_table(P, start[..., None]).expected_reward
    found = imbalance_blind(P, starts=[start])
    assert found.solution.expected_reward > before + 0.5  # $: 65.6 % -> 69.2 % of 21.3 $
    assert found.solution.expected_reward <= menu.expected_reward  # it sees less


def test_best_fixed_rule_captures_89_4_percent(menu) -> None:
    fixed = best_fixed_rule(P)
    assert share(fixed.solution.expected_cost, menu.expected_cost) == pytest.approx(0.894, abs=5e-4)
    assert fixed.rule.shape == (2, 5)
    policy = fixed.solution.policy[: P.N - 1]
    assert (policy == fixed.rule).all()  # the same rule at every k and q


def test_continuous_optimum_beats_the_menu_slightly(continuous, menu) -> None:
    assert continuous.expected_cost * P.bps == pytest.approx(-1.1352, abs=5e-5)
    assert menu.expected_cost * P.bps == pytest.approx(-1.1045, abs=5e-5)
    actions = continuous.policy[: P.N - 1]
    assert actions.min() >= -2 and actions.max() <= P.max_depth


def test_the_depth_grid_alone_is_within_a_millionth_of_a_bp(continuous, monkeypatch) -> None:
    from rl_order_execution.market.book import optimum

    monkeypatch.setattr(optimum, "GOLDEN_STEPS", 0)
    grid_only = solve_continuous(P).expected_reward
    assert 0 <= (continuous.expected_reward - grid_only) * P.bps < 1e-6


def test_optimum_values_are_zero_without_inventory_and_the_forced_sale_at_the_end(menu) -> None:
    np.testing.assert_array_equal(menu.values[:, -1], 0.0)
    q = P.grid[:, None, None]
    half = (P.spreads * P.tick / 2)[None, :, None]
    last = -P.risk_aversion * q * q / P.Q - q * (half + P.impact * q)
    np.testing.assert_allclose(menu.values[-1], np.broadcast_to(last, menu.values[-1].shape))


def test_evaluating_the_optimum_policy_gives_the_optimum(menu, continuous) -> None:
    again = evaluate_table(P, menu.policy)
    np.testing.assert_allclose(again.values, menu.values, atol=1e-12)
    # every fixed rule is at most the optimum, state by state
    for a in range(P.n_actions):
        assert (evaluate_table(P, a).values <= menu.values + 1e-12).all()


def test_occupancy_is_a_law_and_drains_by_the_end(menu) -> None:
    mu = occupancy(P, menu.policy)
    np.testing.assert_allclose(mu.sum(axis=(1, 2, 3)), 1.0, atol=1e-12)
    # spreads and imbalances stay stationary whatever the policy
    np.testing.assert_allclose(mu[-1].sum(axis=(0, 2)), P.stationary_spread, atol=1e-12)


def test_monte_carlo_of_every_reference_agrees_with_its_exact_cost(menu, continuous) -> None:
    """200,000 episodes of each policy on shared draws, within 3 standard errors."""
    policies: list[BookPolicy] = [
        Twap(),
        Passive(),
        menu_optimum(P, menu),
        continuous_optimum(P, continuous),
    ]
    result = evaluate(P, policies, MC_EPISODES, seed=7)
    exact = {
        "twap": twap_expected_cost(P),
        "passive": evaluate_table(P, 0, actions=(Limit(0.0),)).expected_cost,
        "optimal": menu.expected_cost,
        "optimal_continuous": continuous.expected_cost,
    }
    for name, outcome in result.outcomes.items():
        se = outcome.cost.std(ddof=1) / math.sqrt(MC_EPISODES)
        assert abs(outcome.cost.mean() - exact[name]) < 3 * se, name
        # the return is minus the cost, in bp
        np.testing.assert_allclose(outcome.episode_return, -outcome.cost * P.bps, atol=1e-9)
    # TWAP never posts; passive posts at every step while it holds shares
    assert result.outcomes["twap"].posted.sum() == 0
    assert math.isnan(result.outcomes["twap"].fill_rate)
    passive = result.outcomes["passive"]
    assert (passive.passive_share <= 1).all() and passive.passive_share.mean() > 0.9


def test_twap_closed_form_against_monte_carlo_off_the_defaults() -> None:
    """With permanent impact and a mid that drifts with the imbalance (ebar != 0)."""
    p = BookParams.from_settings(
        {
            "book_permanent_impact": 1e-4,
            "move_table": [[0.1, 0.3], [0.1, 0.2], [0.15, 0.15], [0.2, 0.1], [0.2, 0.15]],
            "imbalance_persistence": 0.5,
        },
        total_shares=500,
        time_horizon=20,
    )
    assert p.mean_expected_move != 0
    outcome = rollout(p, Twap(), 100_000, seed=3).outcomes
    se = outcome.cost.std(ddof=1) / math.sqrt(100_000)
    assert abs(outcome.cost.mean() - twap_expected_cost(p)) < 3 * se


def test_twap_closed_form_equals_the_exact_value_of_market_orders_of_q_over_n() -> None:
    """Where Q / N = c, TWAP is `market 1` at every step: the DP evaluates it exactly. The mid
    drifts (ebar != 0): its term is ebar Q (N - 1) / 2 (MODEL.md's Q^2 (N - 1) / (2N) is not)."""
    p = BookParams.from_settings(
        {
            "book_permanent_impact": 2e-4,
            "move_table": [[0.1, 0.3], [0.1, 0.2], [0.15, 0.15], [0.3, 0.1], [0.2, 0.15]],
        },
        total_shares=1000,
        time_horizon=20,
    )
    market_1 = p.actions.index(Market(1))
    exact = evaluate_table(p, market_1).expected_cost
    assert twap_expected_cost(p) == pytest.approx(exact, abs=1e-10)
    ebar, Q, N = p.mean_expected_move, p.Q, p.N
    model_md = exact + ebar * Q * (N - 1) / 2 - ebar * Q * Q * (N - 1) / (2 * N)
    assert abs(model_md - exact) > 1  # $: MODEL.md's form is far off here


# --- common random numbers --------------------------------------------------------------------


def test_strategies_on_one_seed_see_the_same_market() -> None:
    a = rollout(P, Twap(), 500, seed=11)
    b = rollout(P, menu_optimum(P), 500, seed=11)
    np.testing.assert_array_equal(a.move, b.move)
    np.testing.assert_array_equal(a.spread, b.spread)
    np.testing.assert_array_equal(a.imbalance, b.imbalance)
    assert not np.array_equal(a.shares, b.shares)
    c = rollout(P, Twap(), 500, seed=12)
    assert not np.array_equal(a.move, c.move)


def test_evaluate_gives_each_strategy_what_its_own_rollout_gives() -> None:
    policies: list[BookPolicy] = [Twap(), Passive(), menu_optimum(P)]
    together = evaluate(P, policies, 300, seed=5)
    for policy in policies:
        alone = rollout(P, policy, 300, seed=5).outcomes
        np.testing.assert_array_equal(together.outcomes[policy.name].cost, alone.cost)
        np.testing.assert_array_equal(together.outcomes[policy.name].filled, alone.filled)


def test_draws_do_not_depend_on_the_actions_and_continue_after_the_order_is_done() -> None:
    rngs = [np.random.default_rng(3) for _ in range(2)]
    states = [reset(P, rng, 4) for rng in rngs]
    for k in range(P.N):
        orders = [menu_orders(P, np.full(4, 5)), menu_orders(P, np.full(4, k % P.n_actions))]
        for j in range(2):
            states[j], _ = step(P, states[j], orders[j], rngs[j])
        if k == 10:
            assert (states[0].q == 0).all()  # market 2 every step: done after 10 steps
    assert rngs[0].random() == rngs[1].random()


def test_reset_draws_the_spreads_of_the_batch_then_the_imbalances() -> None:
    s = reset(P, np.random.default_rng(9), 1000)
    u = np.random.default_rng(9).random((2, 1000))
    np.testing.assert_array_equal(s.spread, (u[0] >= 5 / 6).astype(int))
    np.testing.assert_array_equal(s.imbalance, np.minimum((u[1] / 0.2).astype(int), 4))
    assert (s.k == 0).all() and (s.q == P.Q).all() and (s.S == P.P0).all()


# --- hand-computed steps ----------------------------------------------------------------------


def state(k: int = 0, q: float = 1000.0, S: float = 100.0, spread: int = 0, level: int = 2):
    one = np.ones(1)
    return BookState(
        k=np.array([k]),
        q=q * one,
        S=S * one,
        spread=np.array([spread]),
        imbalance=np.array([level]),
        last_move=np.zeros(1),
    )


def uniforms(fill: float, move: float, spread: float, level: float) -> np.ndarray:
    return np.array([[fill], [move], [spread], [level]])


def test_a_limit_order_fills_below_its_probability_and_earns_the_spread_plus_its_depth() -> None:
    s = state(spread=1, level=3)  # 2 ticks, iota = 0.4
    pf = 1 - math.exp(-0.6 * (1 + 0.5 * 0.4) * math.exp(-0.7 * 1))
    limit_1 = menu_orders(P, [2])
    nxt, info = advance(P, s, limit_1, uniforms(pf - 1e-9, 0.1, 0.45, 0.95))
    assert info.filled[0] and info.posted[0]
    assert info.proceeds[0] == pytest.approx(50 * 100.02, abs=1e-9)  # ask 100.01, one tick behind
    # (5001 - 50 * 100 - 2e-4 * 1000^2 / 1000) * 1e4 / (1000 * 100) = 0.08 bp
    assert info.reward[0] == pytest.approx(0.08, abs=1e-12)
    assert nxt.q[0] == 950 and info.passive[0] == 50
    # up = 0.3 (1 + 0.6 * 0.4) / 2 = 0.186 > 0.1: the mid ticks up
    assert nxt.S[0] == pytest.approx(100.01) and nxt.last_move[0] == 1
    assert nxt.spread[0] == 0  # 0.45 < Pi_s[2 ticks, 1 tick] = 0.5
    assert nxt.imbalance[0] == 4  # cumulative row 0.4: 0, 0, 0.1, 0.9, 1 -> 0.95 lands on 0.8
    _, missed = advance(P, s, limit_1, uniforms(pf + 1e-9, 0.1, 0.45, 0.95))
    assert missed.posted[0] and not missed.filled[0] and missed.shares[0] == 0
    assert missed.reward[0] == pytest.approx(-0.02, abs=1e-12)  # the inventory penalty alone


def test_a_market_order_walks_the_book_and_moves_the_mid() -> None:
    p = BookParams.from_settings({"book_permanent_impact": 1e-4})
    nxt, info = advance(p, state(spread=0), menu_orders(p, [5]), uniforms(0.0, 0.99, 0.0, 0.5))
    # 100 shares at bid 99.995 - 2e-5 * 100 = 99.993
    assert info.market[0] == 100 and info.proceeds[0] == pytest.approx(9999.3, abs=1e-9)
    assert info.reward[0] == pytest.approx((9999.3 - 10000 - 0.2) * 0.1, abs=1e-12)
    assert not info.posted[0] and info.passive[0] == 0
    # no exogenous move (u >= up + down = 0.3): the mid falls by alpha_b n only
    assert info.move[0] == 0 and nxt.S[0] == pytest.approx(100 - 1e-4 * 100, abs=1e-12)
    assert nxt.q[0] == 900


def test_the_last_step_sells_everything_at_the_bid_whatever_the_action() -> None:
    s = state(k=P.N - 1, q=150, spread=1)
    nxt, info = advance(P, s, menu_orders(P, [1]), uniforms(0.0, 0.5, 0.5, 0.5))
    # 150 shares at 100 - 0.01 - 2e-5 * 150 = 99.987; penalty 2e-4 * 150^2 / 1000
    assert info.proceeds[0] == pytest.approx(150 * 99.987, abs=1e-9)
    assert info.reward[0] == pytest.approx((150 * 99.987 - 15000 - 0.0045) * 0.1, abs=1e-12)
    assert not info.posted[0] and not info.filled[0] and info.passive[0] == 0
    assert nxt.q[0] == 0 and info.terminated[0]


def test_inverse_cdf_boundaries() -> None:
    s = state(level=2)  # iota = 0: up = down = 0.15
    moves = [
        advance(P, s, menu_orders(P, [0]), uniforms(0.5, u, 0.9, 0.1))[1].move[0]
        for u in (0.1499, 0.15, 0.2999, 0.3)
    ]
    assert moves == [1, -1, -1, 0]  # +1 iff U < up; -1 iff up <= U < up + down
    spreads = [
        advance(P, s, menu_orders(P, [0]), uniforms(0.5, 0.5, u, 0.1))[0].spread[0]
        for u in (0.8999, 0.9)
    ]
    assert spreads == [0, 1]  # the first outcome whose cumulative probability exceeds U
    # a market order of q: done; the draws still come, nothing more is sold
    done = state(q=0.0)
    nxt, info = advance(P, done, menu_orders(P, [5]), uniforms(0.0, 0.0, 0.95, 0.0))
    assert info.shares[0] == 0 and info.reward[0] == 0 and info.terminated[0]
    assert nxt.S[0] == pytest.approx(100.01) and nxt.spread[0] == 1


def test_twap_sells_q_over_the_steps_left_at_any_real_size() -> None:
    s = state(k=3, q=1000)
    _, info = advance(P, s, Twap()(P, s), uniforms(0.5, 0.5, 0.5, 0.5))
    assert info.market[0] == pytest.approx(1000 / 57)
    _, info = advance(P, s, market_orders(np.array([2000.0])), uniforms(0.5, 0.5, 0.5, 0.5))
    assert info.market[0] == 1000  # never more than held


def test_continuous_actions_map_to_market_and_limit_orders() -> None:
    orders = continuous_orders(P, [-0.3, -1.0, -1.0001, -7.0, 0.0, 3.7, 9.0])
    assert orders.kind.tolist() == [2, 2, 2, 2, 1, 1, 1]
    np.testing.assert_array_equal(orders.shares[:4], [50, 50, 100, 100])  # clipped to -M = -2
    np.testing.assert_array_equal(orders.depth[4:], [0.0, 3.7, 5.0])  # clipped to max_depth


def test_features_in_model_order() -> None:
    s = state(k=6, q=400, S=100.03, spread=1, level=0)
    s = BookState(s.k, s.q, s.S, s.spread, s.imbalance, np.array([-1.0]))
    obs = features(P, s)[0]
    expected = [54 / 60, 0.4, 0.03 / (0.01 * math.sqrt(0.3 * 60)), -1, 2, -0.8]
    np.testing.assert_allclose(obs, expected, rtol=1e-6)
    assert obs.dtype == np.float32


# --- Gymnasium --------------------------------------------------------------------------------


@pytest.mark.parametrize("continuous", [False, True])
def test_check_env_passes(continuous: bool) -> None:
    check_env(BookEnv(continuous=continuous), skip_render_check=True)


@pytest.mark.parametrize("continuous", [False, True])
def test_vector_env_of_one_episode_equals_the_single_env(continuous: bool) -> None:
    """Same seed, same actions, over several episodes with autoreset."""
    single, vector = BookEnv(continuous=continuous), BookVecEnv(1, continuous=continuous)
    obs, _ = single.reset(seed=21)
    vobs, _ = vector.reset(seed=21)
    np.testing.assert_array_equal(obs, vobs[0])
    actions = np.random.default_rng(0)
    episodes = 0
    a: Any
    for _ in range(3 * P.N):
        if continuous:
            a = actions.uniform(-2, 5, size=1).astype(np.float32)
        else:
            a = int(actions.integers(P.n_actions))
        obs, reward, terminated, truncated, info = single.step(a)
        vobs, vreward, vterminated, _, vinfo = vector.step(np.array([a]))
        assert reward == vreward[0] and terminated == vterminated[0] and not truncated
        assert info["limit_filled"] == vinfo["limit_filled"][0]
        if terminated:
            np.testing.assert_array_equal(obs, vinfo["final_obs"][0])
            obs, _ = single.reset()
            episodes += 1
        np.testing.assert_array_equal(obs, vobs[0])
    assert episodes >= 3


def test_vector_env_draws_what_rollout_draws() -> None:
    """`limit 2` every step: no episode ends before N here, so no autoreset draws intervene."""
    vector = BookVecEnv(64)
    vector.reset(seed=4)
    rewards = np.array([vector.step(np.full(64, 3))[1] for _ in range(P.N)]).T
    paths = rollout(P, Passive(depth=2.0), 64, seed=4)
    assert (paths.q[:, -2] > 0).all()
    np.testing.assert_allclose(rewards, paths.reward, atol=1e-12)


def test_episode_return_is_minus_the_cost_in_bp() -> None:
    env = BookEnv()
    env.reset(seed=8)
    total, proceeds, sold, terminated = 0.0, 0.0, 0.0, False
    while not terminated:
        _, reward, terminated, _, info = env.step(4)  # market 1: 50 shares a step
        total += reward
        proceeds += info["proceeds"]
        sold += info["shares"]
    assert sold == P.Q
    # held 1000, 950, ..., 50 at the 20 steps: lambda_b sum q_k^2 / Q = 2e-4 * 2500 * 2870 / 1000
    cost = P.Q * P.P0 - proceeds + 2e-4 * 2500 * 2870 / 1000
    assert total == pytest.approx(-cost * P.bps, abs=1e-10)
