"""The price models of the README ("The model"): GBM, OU, Merton jumps and GARCH(1,1), each
behind the PriceModel protocol, with common random numbers and exact means."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rl_order_execution.exact import (
    optimal_cost,
    schedule_moments,
    solve_lq,
    twap_schedule,
)
from rl_order_execution.market import (
    PRICE_MODELS,
    MarketParams,
    MarketState,
    Shocks,
    market_step,
    price_model,
    shock_matrix,
)
from rl_order_execution.market.prices.jump import jump_compensator

JUMP = MarketParams(price_model="jump")
GARCH = MarketParams(price_model="garch")


def test_registry_names_every_model_and_rejects_an_unknown_one() -> None:
    assert set(PRICE_MODELS) == {"gbm", "ou", "jump", "garch", "replay"}
    with pytest.raises(ValueError, match="price_model 'heston' is not one of: gbm, ou"):
        price_model("heston")
    with pytest.raises(ValueError, match="heston"):
        MarketParams(price_model="heston")


def test_jump_step_by_hand() -> None:
    p = JUMP.with_(mu=0.001)
    s = MarketState.initial(p, 2)
    shock = Shocks(np.array([0.5, -1.0]), np.array([0.0, -0.03]))
    market_step(p, s, np.array([10.0, 0.0]), shock)
    drift = p.mu - p.sigma**2 / 2 - p.jump_intensity * (math.exp(-0.005 + 0.01**2 / 2) - 1)
    expected = [
        100 * math.exp(drift + p.sigma * 0.5) - p.alpha * 10,
        100 * math.exp(drift - p.sigma - 0.03),
    ]
    np.testing.assert_allclose(s.S, expected, rtol=1e-15)


def test_garch_variance_follows_the_recursion_by_hand() -> None:
    p = GARCH.with_(sigma=0.01)
    s = MarketState.initial(p, 1)
    assert s.latent[0] == pytest.approx(1e-4)
    for z in (2.0, -0.5):
        var = s.latent[0]
        S = s.S[0]
        market_step(p, s, np.array([0.0]), Shocks(np.array([z])))
        assert s.S[0] == pytest.approx(S * math.exp(-var / 2 + math.sqrt(var) * z), rel=1e-14)
        assert s.latent[0] == pytest.approx(1e-4 * 0.05 + 0.1 * var * z * z + 0.85 * var)


def test_jump_draws_follow_the_documented_order_and_antithetic_pairs_share_jumps() -> None:
    p = JUMP.with_(N=3, jump_intensity=0.7)
    shocks = shock_matrix(p, 5, 4, antithetic=True)
    rng = np.random.default_rng(5)
    assert shocks.jump is not None
    for k in range(3):  # per step, for the 2 first episodes: Z, then N, then Y
        z = rng.standard_normal(2)
        count = rng.poisson(0.7, 2)
        y = rng.standard_normal(2)
        np.testing.assert_array_equal(shocks.z[:2, k], z)
        np.testing.assert_array_equal(
            shocks.jump[:2, k], -0.005 * count + 0.01 * np.sqrt(count) * y
        )
    np.testing.assert_array_equal(shocks.z[2:], -shocks.z[:2])
    np.testing.assert_array_equal(shocks.jump[2:], shocks.jump[:2])


def test_gbm_and_ou_keep_the_first_editions_shock_stream() -> None:
    for p in (MarketParams(), MarketParams(price_model="ou")):
        shocks = shock_matrix(p, 3, 6, antithetic=True)
        half = np.random.default_rng(3).standard_normal((3, p.N))
        np.testing.assert_array_equal(shocks.z, np.concatenate([half, -half]))
        assert shocks.jump is None


@pytest.mark.parametrize("p", [JUMP, JUMP.with_(mu=0.002), GARCH, GARCH.with_(mu=-0.001)])
def test_one_step_mean_is_exact_within_monte_carlo_error(p: MarketParams) -> None:
    """E[S' | S] = S e^mu - alpha n for jumps and GARCH (their compensators are right)."""
    p = p.with_(sigma=0.02, jump_intensity=0.5, jump_std=0.05)
    E = 400_000
    s = MarketState.initial(p, E)
    shocks = shock_matrix(p, 1, E)
    market_step(p, s, np.full(E, 5.0), shocks.steps()[0])
    expected = 100 * math.exp(p.mu) - p.alpha * 5
    se = s.S.std() / math.sqrt(E)
    assert abs(s.S.mean() - expected) < 4 * se


def test_jump_second_moment_matches_monte_carlo() -> None:
    p = JUMP.with_(sigma=0.01, jump_intensity=0.3, jump_mean=-0.02, jump_std=0.03, mu=0.001)
    E = 400_000
    s = MarketState.initial(p, E)
    market_step(p, s, np.zeros(E), shock_matrix(p, 2, E).steps()[0])
    x2 = (s.S / 100) ** 2
    m2 = PRICE_MODELS["jump"].lq_transition(p).e2
    assert abs(x2.mean() - m2) < 4 * x2.std() / math.sqrt(E)
    assert jump_compensator(p) == pytest.approx(math.exp(-0.02 + 0.03**2 / 2) - 1)


@pytest.mark.parametrize("name", ["jump", "garch"])
def test_martingale_jump_and_garch_share_gbms_exact_costs(name: str) -> None:
    """The README's figures: E[C_TWAP] = 7617.0 $ and E[C_opt] = 7210.33 $ at the defaults."""
    p = MarketParams(price_model=name)
    assert schedule_moments(p, twap_schedule(p)).e_c == pytest.approx(7617.0, abs=0.01)
    assert optimal_cost(p) == pytest.approx(7210.33, abs=0.01)
    assert solve_lq(p).exact and solve_lq(p).is_deterministic


def test_garch_variance_is_unavailable_never_gbms() -> None:
    m = schedule_moments(GARCH, twap_schedule(GARCH))
    assert m.var_is is None and m.std_is is None
    jump = schedule_moments(JUMP, twap_schedule(JUMP))
    gbm = schedule_moments(MarketParams(), twap_schedule(MarketParams()))
    assert jump.std_is is not None and gbm.std_is is not None and jump.std_is > gbm.std_is


def test_garch_with_drift_is_labelled_approximate_and_jump_with_drift_stays_exact() -> None:
    assert not solve_lq(GARCH.with_(mu=0.0005)).exact
    assert solve_lq(JUMP.with_(mu=0.0005)).exact
    assert solve_lq(MarketParams(mu=0.0005)).exact


@pytest.mark.parametrize(
    "p",
    [JUMP, GARCH, JUMP.with_(mu=0.0005, jump_intensity=0.1), GARCH.with_(mu=-0.0005)],
    ids=["jump", "garch", "jump-drift", "garch-drift"],
)
def test_self_check_passes_on_jump_and_garch_markets(p: MarketParams) -> None:
    """`rl-exec benchmark`: Monte Carlo means within 4 standard errors of the closed forms."""
    from rl_order_execution.evaluation import run_checks

    checks, _ = run_checks(p, shock_matrix(p, 11, 10_000))
    assert [c.name for c in checks if not c.ok] == []
    twap = next(c for c in checks if c.name == "twap")
    assert twap.z_is_mean is not None and twap.z_cost_mean is not None
    if p.price_model == "garch":  # no closed-form variance: unavailable, never GBM's
        assert all(c.exact.is_std_exact is None and c.z_is_std is None for c in checks)
    else:
        assert twap.z_is_std is not None


def test_self_check_catches_a_wrong_jump_compensator(monkeypatch: pytest.MonkeyPatch) -> None:
    """A jump model whose drift forgets the compensator moves the mean: the check must fail."""
    from rl_order_execution.evaluation import run_checks
    from rl_order_execution.market.prices import jump

    p = JUMP.with_(jump_intensity=0.5, jump_mean=-0.01)
    monkeypatch.setattr(jump, "jump_compensator", lambda p: 0.0)
    checks, _ = run_checks(p, shock_matrix(p, 11, 10_000))
    assert "twap" in [c.name for c in checks if not c.ok]
