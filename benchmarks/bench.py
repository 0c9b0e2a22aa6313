"""`make bench`: speed measured side by side in one run (ratios; the machine is shared and noisy).

1. environment steps per second: the single-episode env vs the vectorised env at several B;
2. time to quality: wall seconds until the greedy agent captures 90 % of the optimum's advantage
   on one fixed validation set (the default run's 1,000 episodes), median over training seeds, for
   our defaults, the original loop shape and Stable-Baselines3's DQN;
3. evaluation: 10,000 shared-shock episodes x every strategy;
4. the default update loop with the other core busy vs idle (torch threads).
Writes benchmarks/results.json and prints a table.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import platform
import resource
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from rl_order_execution.agents.dqn import DQNAgent, train
from rl_order_execution.agents.validation import Validator
from rl_order_execution.config import Settings
from rl_order_execution.evaluation import evaluate, optimum_gap
from rl_order_execution.exact import linear_schedule
from rl_order_execution.experiment import run_references, seed_list
from rl_order_execution.market import (
    ExecutionEnv,
    MarketParams,
    MarketState,
    VecExecutionEnv,
    shock_matrix,
)
from rl_order_execution.reporting import write_json
from rl_order_execution.strategies import POV, GreedyAgent, ScheduleStrategy, Strategy

RESULTS = Path(__file__).with_name("results.json")
TARGET = 0.9


def env_throughput(seconds: float) -> dict[str, float]:
    """Environment steps per second, single env vs vectorised at B = 1, 64, 1024, 16384."""
    out: dict[str, float] = {}
    env = ExecutionEnv()
    env.reset(seed=0)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(100):
            if env.step(2)[2]:
                env.reset()
        steps += 100
    out["single"] = steps / (time.perf_counter() - start)
    for batch in (1, 64, 1024, 16384):
        vec = VecExecutionEnv(batch)
        vec.reset(seed=0)
        actions = np.full(batch, 2)
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            for _ in range(10):
                vec.step(actions)
            steps += 10
        out[f"vec_{batch}"] = batch * steps / (time.perf_counter() - start)
    return out


class _Stop(Exception):
    """Raised from the validation hook to end a training run early."""


def _quality_run(settings: Settings, limit_s: float, validator: Validator) -> dict[str, Any]:
    """Train until the validation gap share reaches TARGET or the time limit passes."""
    p = MarketParams.from_settings(settings.simulation)
    gap_bps = optimum_gap(p) * p.bps
    start = time.perf_counter()
    state: dict[str, Any] = {"best": -np.inf, "seconds": None, "episodes": 0}

    def hook(episodes: int, savings_bps: float) -> None:
        share = savings_bps / gap_bps
        state["best"] = max(state["best"], share)
        state["episodes"] = episodes
        if share >= TARGET:
            state["seconds"] = time.perf_counter() - start
            raise _Stop
        if time.perf_counter() - start > limit_s:
            raise _Stop

    with contextlib.suppress(_Stop):
        train(settings, validation_hook=hook, validator=validator)
    return {
        "seed": settings.simulation.seed,
        "seconds_to_90": state["seconds"],
        "best_share": float(state["best"]),
        "episodes": state["episodes"],
        "wall_s": time.perf_counter() - start,
    }


def median_seconds(runs: list[dict[str, Any]]) -> float | None:
    """Median time to TARGET, a run that never got there counting as infinitely slow."""
    times = [np.inf if r["seconds_to_90"] is None else r["seconds_to_90"] for r in runs]
    median = float(np.median(times))
    return median if np.isfinite(median) else None


def time_to_quality(
    seeds: list[int], limit_s: float, validator: Validator, **rl: Any
) -> dict[str, Any]:
    """One run per training seed on the same validation set; the median is the headline.

    A run that does not reach TARGET counts as infinitely slow, so the median is "not reached"
    when half of the runs or more did not get there.
    """
    runs = [_quality_run(_settings(100_000, seed, **rl), limit_s, validator) for seed in seeds]
    return {
        "seconds_to_90": median_seconds(runs),
        "best_share": max(r["best_share"] for r in runs),
        "wall_s": float(np.median([r["wall_s"] for r in runs])),
        "reached": sum(r["seconds_to_90"] is not None for r in runs),
        "runs": runs,
    }


def _settings(episodes: int, seed: int | None = None, **rl: Any) -> Settings:
    simulation = {} if seed is None else {"seed": seed}
    return Settings.model_validate({"rl": {"episodes": episodes, **rl}, "simulation": simulation})


def sb3_quality(limit_s: float, eval_every: int, validator: Validator, seed: int) -> dict[str, Any]:
    """Stable-Baselines3 DQN, default settings and our network size, on our registered env."""
    import gymnasium as gym
    from stable_baselines3 import DQN
    from stable_baselines3.common.callbacks import BaseCallback

    from rl_order_execution.market import ENV_ID

    settings = Settings()
    p = MarketParams.from_settings(settings.simulation)
    gap_bps = optimum_gap(p) * p.bps
    start = time.perf_counter()
    state: dict[str, Any] = {"best": -np.inf, "seconds": None}

    class Probe(BaseCallback):  # type: ignore[misc, unused-ignore]  # Any without the bench extra
        def _on_step(self) -> bool:
            if self.n_calls % eval_every:
                return True
            network = self.model.q_net  # type: ignore[attr-defined, unused-ignore]
            agent = _SB3Greedy(network)
            cost = validator.cost(agent)
            share = (validator.twap_cost - cost) * p.bps / gap_bps
            state["best"] = max(state["best"], share)
            if share >= TARGET:
                state["seconds"] = time.perf_counter() - start
                return False
            return time.perf_counter() - start < limit_s

    env = gym.make(ENV_ID)
    net_arch = list(settings.rl.hidden_sizes)  # the same network size as ours
    model = DQN("MlpPolicy", env, policy_kwargs={"net_arch": net_arch}, seed=seed, device="cpu")
    model.learn(total_timesteps=2_000_000, callback=Probe())
    run = {
        "seed": seed,
        "seconds_to_90": state["seconds"],
        "best_share": float(state["best"]),
        "wall_s": time.perf_counter() - start,
    }
    return {**run, "reached": int(run["seconds_to_90"] is not None), "runs": [run]}


class _SB3Greedy:
    """SB3's Q-network as one of our strategies."""

    name = "sb3"

    def __init__(self, q_net: Any) -> None:
        self.q_net = q_net

    def __call__(self, p: MarketParams, s: MarketState) -> np.ndarray:
        from rl_order_execution.market import desired_from_actions, observe

        with torch.no_grad():
            actions = self.q_net(torch.from_numpy(observe(p, s))).argmax(dim=1).numpy()
        return desired_from_actions(p, s, actions)


def evaluation_speed(episodes: int = 10_000) -> dict[str, float]:
    """All strategies on `episodes` shared-shock episodes in one batched pass each."""
    p = MarketParams.from_settings(Settings().simulation)
    start = time.perf_counter()
    strategies: list[Strategy] = [
        *run_references(p),
        POV(),
        ScheduleStrategy("front-loaded", linear_schedule(p, front=True)),
        ScheduleStrategy("back-loaded", linear_schedule(p, front=False)),
        GreedyAgent(DQNAgent.for_market(p, Settings().rl, torch.device("cpu"), seed=0)),
    ]
    built = time.perf_counter() - start
    shocks = shock_matrix(p, 1, episodes, antithetic=True)
    start = time.perf_counter()
    evaluate(p, strategies, shocks, antithetic=True).metrics(exact_gap=optimum_gap(p))
    return {
        "strategies": len(strategies),
        "build_s": built,
        "evaluate_s": time.perf_counter() - start,
    }


def _spin(stop_at: float) -> None:
    x = 0
    while time.time() < stop_at:
        x += 1


def busy_core_ratio(episodes: int) -> dict[str, float]:
    """Training time with the other core spinning divided by the idle time."""
    settings = _settings(episodes, eval_interval=10_000)
    idle = _timed_train(settings)
    spinner = mp.get_context("spawn").Process(target=_spin, args=(time.time() + 3 * idle + 30,))
    spinner.start()
    try:
        busy = _timed_train(settings)
    finally:
        spinner.terminate()
    return {"idle_s": idle, "busy_s": busy, "ratio": busy / idle}


def _timed_train(settings: Settings) -> float:
    start = time.perf_counter()
    train(settings)
    return time.perf_counter() - start


def machine() -> dict[str, Any]:
    model = (
        next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.processor(),
        )
        if Path("/proc/cpuinfo").exists()
        else platform.processor()
    )
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "platform": platform.platform(),
    }


def _fmt_s(value: float | None) -> str:
    return "not reached" if value is None else f"{value:.1f} s"


def print_tables(console: Console, r: dict[str, Any]) -> None:
    env = Table(title="1. Environment steps per second")
    env.add_column("env")
    env.add_column("steps/s", justify="right")
    env.add_column("x single env", justify="right")
    for key, value in r["env"].items():
        env.add_row(key, f"{value:,.0f}", f"{value / r['env']['single']:,.1f}")
    console.print(env)
    quality = Table(
        title=f"2. Time to {TARGET:.0%} of the optimum's advantage (fixed validation set, "
        "median over training seeds)"
    )
    for col in ("contender", "median", "reached", "per seed", "best share", "x slower than ours"):
        quality.add_column(col, justify="right")
    ours = r["quality"]["ours_default"]["seconds_to_90"]
    for key, q in r["quality"].items():
        theirs = q["seconds_to_90"] if q["seconds_to_90"] is not None else q["wall_s"]
        ratio = (
            f"{theirs / ours:.1f}" + ("" if q["seconds_to_90"] is not None else "+")
            if ours
            else "n/a"
        )
        per_seed = " ".join(_fmt_s(run["seconds_to_90"]) for run in q["runs"])
        quality.add_row(
            key,
            _fmt_s(q["seconds_to_90"]),
            f"{q['reached']}/{len(q['runs'])}",
            per_seed,
            f"{q['best_share']:.1%}",
            ratio,
        )
    console.print(quality)
    ev = r["evaluation"]
    console.print(
        f"3. Evaluation: {ev['strategies']} strategies x 10,000 episodes in "
        f"{ev['evaluate_s']:.3f} s (+{ev['build_s']:.3f} s to build them)"
    )
    if "busy_core" in r:
        b = r["busy_core"]
        console.print(
            f"4. Training with the other core busy: {b['busy_s']:.1f} s vs "
            f"{b['idle_s']:.1f} s idle (ratio {b['ratio']:.2f})"
        )
    console.print(f"Peak memory: {r['peak_rss_mb']:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit-s", type=float, default=600, help="Time limit per contender.")
    parser.add_argument("--env-seconds", type=float, default=1.0, help="Seconds per env timing.")
    parser.add_argument(
        "--seeds", type=int, default=5, help="Training seeds per contender (SB3: the first only)."
    )
    parser.add_argument("--skip-sb3", action="store_true", help="Leave out Stable-Baselines3.")
    parser.add_argument("--skip-original", action="store_true", help="Leave out the original loop.")
    args = parser.parse_args()
    torch.set_num_threads(1)
    console = Console()
    defaults = Settings().rl
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "target_share": TARGET,
    }
    console.print("measuring environment throughput ...")
    results["env"] = env_throughput(args.env_seconds)
    # one fixed validation set (the default run's) for every contender; the seeds vary training
    validator = Validator.from_settings(Settings())
    seeds = seed_list(Settings().simulation.seed, args.seeds)
    results["seeds"] = seeds
    _quality_run(_settings(100, eval_interval=50), args.limit_s, validator)  # warm up torch
    console.print(f"time to quality: ours (defaults), {len(seeds)} seeds ...")
    results["quality"] = {"ours_default": time_to_quality(seeds, args.limit_s, validator)}
    if not args.skip_original:
        console.print("time to quality: original loop shape (1 env, 1 update per env step) ...")
        results["quality"]["original_loop"] = time_to_quality(
            seeds, args.limit_s, validator, n_envs=1, updates_per_step=1.0
        )
    if not args.skip_sb3:
        console.print("time to quality: Stable-Baselines3 DQN (its defaults, our network size) ...")
        every = defaults.eval_interval * Settings().simulation.time_horizon
        results["quality"]["sb3_dqn"] = sb3_quality(args.limit_s, every, validator, seeds[0])
    console.print("evaluation speed ...")
    results["evaluation"] = evaluation_speed()
    console.print("busy-core check ...")
    results["busy_core"] = busy_core_ratio(defaults.episodes // 2)
    results["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    write_json(RESULTS, results)
    print_tables(console, results)
    console.print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
