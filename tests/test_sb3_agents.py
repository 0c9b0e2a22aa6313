"""PPO and SAC (Stable-Baselines3) behind our seam: the VecEnv adapter, the learner's reward,
checkpoints in our format (and nothing executed on load), seeds, search spaces, short trainings."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import torch
from typer.testing import CliRunner

from rl_order_execution.agents.checkpoint import load_checkpoint, save_checkpoint
from rl_order_execution.agents.greedy import GreedyAgent
from rl_order_execution.agents.registry import AGENTS, agent_spec, settings_kind
from rl_order_execution.agents.sb3.env import LearnerReward, MarketVecEnv, speed_from_action
from rl_order_execution.agents.shaping import learner_reward
from rl_order_execution.agents.training import TrainResult
from rl_order_execution.cli import app
from rl_order_execution.config import Settings
from rl_order_execution.errors import CheckpointError
from rl_order_execution.experiment import evaluate_strategies
from rl_order_execution.market import MarketParams, VecContinuousExecutionEnv
from rl_order_execution.strategies import TWAP, Strategy
from rl_order_execution.tuning import trial_settings

KINDS = ("ppo", "sac")


def _tiny(kind: str, episodes: int = 64, **rl: Any) -> Settings:
    """A few seconds of training: small nets, small batches, a small validation set."""
    sections = {
        "ppo": {"n_envs": 16, "n_steps": 16, "batch_size": 64, "n_epochs": 2, "hidden_sizes": [16]},
        "sac": {"n_envs": 16, "batch_size": 32, "gradient_steps": 1, "hidden_sizes": [16]},
    }
    data = {"agent": kind, "episodes": episodes, "eval_interval": 32, "validation_episodes": 50}
    return Settings.model_validate({"rl": data | {kind: sections[kind]} | rl})


def _observations(dim: int) -> np.ndarray:
    obs = np.random.default_rng(1).normal(size=(64, dim)).astype(np.float32)
    obs[:, 0] = np.linspace(0.02, 1.0, 64)  # time left
    obs[:, 1] = np.linspace(1.0, 0.0, 64)  # inventory left
    return obs


# --- the adapter ------------------------------------------------------------------------------


def test_actions_in_minus_one_one_map_onto_speeds_in_zero_max() -> None:
    p = MarketParams(max_multiplier=10.0)
    speeds = speed_from_action(p, np.array([[-1.0], [-0.8], [0.0], [1.0], [-7.0], [3.0]]))
    np.testing.assert_allclose(speeds, [0.0, 1.0, 5.0, 10.0, 0.0, 10.0])


def test_vecenv_adapter_gives_the_transitions_of_stepping_the_market_directly() -> None:
    p = MarketParams()
    adapter = MarketVecEnv(p, 8, seed=7)
    market = VecContinuousExecutionEnv(8, p)
    np.testing.assert_array_equal(adapter.reset(), market.reset(seed=7)[0])
    rng = np.random.default_rng(0)
    finished = 0
    for _ in range(110):  # two episodes and some: same-step resets included
        actions = rng.uniform(-1.0, 0.2, size=(8, 1)).astype(np.float32)
        adapter.step_async(actions)
        obs, reward, done, infos = adapter.step_wait()
        m_obs, m_reward, m_done, _, m_info = market.step(speed_from_action(p, actions))
        np.testing.assert_array_equal(obs, m_obs)
        np.testing.assert_array_equal(reward, m_reward.astype(np.float32))
        np.testing.assert_array_equal(done, m_done)
        for i in np.flatnonzero(m_done):
            np.testing.assert_array_equal(infos[i]["terminal_observation"], m_info["final_obs"][i])
            np.testing.assert_array_equal(adapter.next_obs[i], m_info["final_obs"][i])
        assert all("terminal_observation" not in infos[i] for i in np.flatnonzero(~m_done))
        finished += int(m_done.sum())
    assert adapter.episodes == finished >= 16


def test_learner_reward_wrapper_changes_only_the_reward() -> None:
    p, rl = MarketParams(), Settings().rl
    plain = MarketVecEnv(p, 4, seed=3)
    wrapped = LearnerReward(MarketVecEnv(p, 4, seed=3), rl)
    obs = np.asarray(plain.reset())
    np.testing.assert_array_equal(wrapped.reset(), obs)
    for _ in range(60):
        actions = np.full((4, 1), -0.7, dtype=np.float32)
        plain.step_async(actions)
        wrapped.step_async(actions)
        next_obs, reward, done, _ = plain.step_wait()
        w_obs, w_reward, w_done, _ = wrapped.step_wait()
        np.testing.assert_array_equal(w_obs, next_obs)
        np.testing.assert_array_equal(w_done, done)
        expected = learner_reward(p, rl, obs, reward, plain.next_obs, done)
        np.testing.assert_array_equal(w_reward, expected)
        obs = np.asarray(next_obs)
    # the env's returns, not the learner's, are what the adapter reports
    assert wrapped.market_env.stats.recent == plain.stats.recent


def test_without_shaping_and_scale_one_the_learner_sees_the_env_reward() -> None:
    p = MarketParams()
    rl = Settings().rl.model_copy(
        update={"reward_shaping": False, "price_control_variate": False, "reward_scale": 1.0}
    )
    plain, wrapped = MarketVecEnv(p, 4, seed=1), LearnerReward(MarketVecEnv(p, 4, seed=1), rl)
    plain.reset()
    wrapped.reset()
    actions = np.full((4, 1), 0.3, dtype=np.float32)
    plain.step_async(actions)
    wrapped.step_async(actions)
    np.testing.assert_array_equal(plain.step_wait()[1], wrapped.step_wait()[1])


# --- settings and registry ----------------------------------------------------------------------


def test_rl_agent_chooses_the_kind_and_its_budget() -> None:
    assert settings_kind(Settings()) == "ddqn" and Settings().rl.episodes == 3000
    for kind in KINDS:
        settings = Settings.model_validate({"rl": {"agent": kind}})
        assert settings_kind(settings) == kind and AGENTS[kind].kind == kind
        assert agent_spec(kind) is AGENTS[kind]
    assert Settings.model_validate({"rl": {"agent": "ppo", "episodes": 7}}).rl.episodes == 7


@pytest.mark.parametrize("kind", KINDS)
def test_search_space_changes_only_the_agents_own_section(kind: str) -> None:
    untuned: dict[str, Any] = {"vf_coef": 0.9} if kind == "ppo" else {"auto_entropy": False}
    base = Settings.model_validate({"rl": {"agent": kind, kind: untuned}})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    changes = agent_spec(kind).suggest(study.ask(), base.optimization)
    assert changes["agent"] == kind and set(changes) == {"agent", kind}
    tuned = trial_settings(base, changes)
    section = getattr(tuned.rl, kind)
    assert section.model_dump() == getattr(base.rl, kind).model_dump() | changes[kind]
    assert section.model_dump().items() >= untuned.items()  # the user's untuned choice stays
    assert tuned.rl.episodes == base.optimization.tuning_episodes


# --- checkpoints --------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=KINDS)
def trained(request: pytest.FixtureRequest) -> tuple[Settings, TrainResult]:
    settings = _tiny(request.param)
    return settings, agent_spec(request.param).train(settings, MarketParams.of(settings))


def test_checkpoint_round_trip_records_the_kind_and_restores_the_policy(
    trained: tuple[Settings, TrainResult], tmp_path: Path
) -> None:
    settings, result = trained
    path = tmp_path / "model.pt"
    save_checkpoint(path, result, settings)
    payload = torch.load(path, weights_only=True)
    assert payload["kind"] == settings.rl.agent and payload["format"] == 2
    assert all(isinstance(v, torch.Tensor) for v in payload["weights"].values())
    loaded = load_checkpoint(path)
    assert loaded.kind == settings.rl.agent and loaded.settings == settings
    obs = _observations(4)
    speeds = loaded.agent.speeds(obs)
    np.testing.assert_array_equal(speeds, result.agent.speeds(obs))
    assert speeds.shape == (64,) and speeds.dtype == np.float64
    assert speeds.min() >= 0.0 and speeds.max() <= settings.simulation.max_multiplier


class _Payload:
    """What a malicious pickle does on load: here, create a file."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (Path.touch, (self.target,))


def test_a_crafted_checkpoint_cannot_run_code(tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    path = tmp_path / "model.pt"
    payload = {"format": 2, "kind": "ppo", "weights": {"x": _Payload(target)}, "settings": {}}
    torch.save(payload, path)  # torch.save pickles: a full torch.load would touch the file
    with pytest.raises(CheckpointError, match="not a readable rl-exec checkpoint"):
        load_checkpoint(path)
    assert not target.exists()
    path.write_bytes(pickle.dumps(_Payload(target)))  # a bare pickle, not even a torch file
    with pytest.raises(CheckpointError):
        load_checkpoint(path)
    assert not target.exists()


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_gives_the_same_numbers(kind: str) -> None:
    tiny = _tiny(kind, episodes=48)
    a = agent_spec(kind).train(tiny, MarketParams.of(tiny))
    b = agent_spec(kind).train(tiny, MarketParams.of(tiny))
    assert [v.savings_bps for v in a.history] == [v.savings_bps for v in b.history]
    state_a, state_b = a.agent.policy_state(), b.agent.policy_state()
    assert state_a.keys() == state_b.keys()
    assert all(torch.equal(state_a[name], state_b[name]) for name in state_a)


# --- short trainings: better than TWAP on the default market -------------------------------------


def _savings_bps(settings: Settings, result: TrainResult) -> tuple[float, float]:
    """The trained agent's mean cost savings vs TWAP and its 95 % half-width (test shocks)."""
    test = settings.model_copy(
        update={"evaluation": settings.evaluation.model_copy(update={"episodes": 2000})}
    )
    strategies: list[Strategy] = [TWAP(), GreedyAgent(result.agent)]
    metrics = evaluate_strategies(test, MarketParams.of(test), strategies).metrics()
    s = metrics["agent"].savings_cost
    return s.avg_savings_bps, (s.ci95_high_bps - s.ci95_low_bps) / 2


@pytest.mark.parametrize(
    ("kind", "episodes"),
    [("ppo", 1000), ("sac", 150)],
)
def test_short_training_beats_twap_on_the_default_market(kind: str, episodes: int) -> None:
    settings = Settings.model_validate(
        {"rl": {"agent": kind, "episodes": episodes, "eval_interval": 100}}
    )
    result = agent_spec(kind).train(settings, MarketParams.of(settings))
    savings, half_width = _savings_bps(settings, result)
    assert savings - half_width > 10.0  # the optimum saves 40.7 bps; TWAP 0
    assert result.best_validation_bps > 10.0


# --- the command line ---------------------------------------------------------------------------


def test_run_and_evaluate_with_agent_flag(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "run"
    args = ["run", "--agent", "ppo", "--episodes", "64", "--eval-episodes", "200"]
    result = runner.invoke(app, [*args, "--output-dir", str(out), "--no-best-params"])
    assert result.exit_code == 0, result.output
    assert torch.load(out / "model.pt", weights_only=True)["kind"] == "ppo"
    evaluated = runner.invoke(app, ["evaluate", "--checkpoint", str(out / "model.pt")])
    assert evaluated.exit_code == 0, evaluated.output
    bad = runner.invoke(app, ["train", "--agent", "a3c", "--no-best-params"])
    assert bad.exit_code == 2 and "rl.agent" in bad.output
