"""`rl-exec sweep`: spec checks, the aggregate, and the sweep on a local Dask cluster (two workers,
a worker killed mid-cell, failures bounded by --retries, resume after SIGKILL, Ctrl-C)."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil  # type: ignore[import-untyped]  # no stubs; installed with distributed
import pytest
import yaml
from rich.console import Console

from rl_order_execution.sweeps import engine
from rl_order_execution.sweeps.aggregate import (
    AggregateRow,
    CellResult,
    Estimate,
    aggregate,
    iqm,
    iqm_with_ci,
    read_cell,
)
from rl_order_execution.sweeps.cell import (
    AttemptLost,
    CellJob,
    CellSummary,
    cell_settings,
    fingerprint,
    run_cell,
)
from rl_order_execution.sweeps.command import sweep_command
from rl_order_execution.sweeps.report import quality_table

ROOT = Path(__file__).resolve().parents[1]
TINY = {  # a cell of a few seconds: an untrained network on a small test set
    "rl.episodes": 5,
    "evaluation.episodes": 50,
    "logging.tensorboard": False,
    "logging.progress": False,
}
SEEDS = [1, 2, 4, 5]  # seeds whose untrained networks all have a measurable share


@pytest.fixture(autouse=True)
def _in_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # market presets are found from the repository's root


def write_spec(folder: Path, **changes: Any) -> Path:
    spec = {"markets": ["default"], "agents": ["ddqn"], "seeds": SEEDS, "settings": TINY}
    spec |= changes
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def sweep(spec: Path, out: Path, **flags: Any) -> tuple[int, str, str]:
    """sweep_command in this process: (exit code, stdout, stderr)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    options: dict[str, Any] = {"workers": 2, "scheduler": None, "retries": 2} | flags
    code = sweep_command(
        spec,
        options.pop("workers"),
        options.pop("scheduler"),
        out,
        options.pop("retries"),
        Console(file=stdout, width=200),
        Console(file=stderr, width=200, soft_wrap=True),
        **options,
    )
    return code, stdout.getvalue(), stderr.getvalue()


def worker_processes(root: psutil.Process | None = None) -> list[psutil.Process]:
    """Dask worker processes below `root` (default: this process)."""
    found = []
    for process in (root or psutil.Process()).children(recursive=True):
        try:
            if "spawn_main" in " ".join(process.cmdline()):
                found.append(process)
        except psutil.Error:
            pass
    return found


def gone(processes: list[psutil.Process], within: float = 10.0) -> bool:
    _, alive = psutil.wait_procs(processes, timeout=within)
    return not alive


def comparable(aggregate_json: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """An aggregate without its timing (the one part two equal sweeps do not share)."""
    return [{k: v for k, v in row.items() if k != "training_seconds"} for row in aggregate_json]


# --- the spec and the sweep folder: one line, exit 2, before any cell starts ---


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"markets": ["default", "atlantis"]}, "unknown market 'atlantis'"),
        ({"agents": ["ddqn", "a2c"]}, "unknown agent 'a2c'"),
        ({"settings": {"rl.episodez": 5}}, "setting rl.episodez: unknown setting"),
        ({"settings": {"rl.episodes": -1}}, "setting rl.episodes"),
        ({"seeds": []}, "seeds: empty"),
        ({"agents": []}, "agents: empty"),
        ({"seeds": [1, 2, 1]}, "seeds: 1 is listed twice"),
        ({"markets": ["jump", "benchmarks/markets/jump.yaml"]}, "two markets are named 'jump'"),
        ({"settings": {"simulation.seed": 3}}, "simulation.seed is set by the seeds axis"),
        ({"settings": {"rl": {"agent": "ppo"}}}, "rl.agent is set by the agents axis"),
        ({"colour": "blue"}, "unknown key 'colour'"),
    ],
)
def test_bad_spec_is_one_line_and_exit_2_before_any_cell(
    tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    out = tmp_path / "sweep"
    code, _, err = sweep(write_spec(tmp_path, **changes), out)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_unreachable_scheduler_is_exit_2_without_cells(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "CONNECT_TIMEOUT", 1.0)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "sweep"
    started = time.perf_counter()
    code, _, err = sweep(
        write_spec(tmp_path), out, workers=None, scheduler=f"tcp://127.0.0.1:{port}"
    )
    assert code == 2
    assert f"scheduler tcp://127.0.0.1:{port}: not reachable within 1 s" in err
    assert time.perf_counter() - started < 15
    assert not (out / "cells").exists()


def test_sweep_folder_of_another_spec_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    out.mkdir()
    recorded = {"markets": ["default"], "agents": ["ddqn"], "seeds": [1, 2], "settings": TINY}
    (out / "spec.json").write_text(json.dumps(recorded))
    code, _, err = sweep(write_spec(tmp_path), out)
    assert code == 2
    assert "holds a sweep of other seeds ([1, 2] there, [1, 2, 4, 5] in this spec)" in err
    assert not (out / "cells").exists()


def test_workers_and_scheduler_together_are_refused(tmp_path: Path) -> None:
    code, _, err = sweep(write_spec(tmp_path), tmp_path / "s", scheduler="tcp://127.0.0.1:1")
    assert code == 2
    assert "--workers" in err


# --- a cell ---


def test_a_cell_has_the_settings_of_rl_exec_run() -> None:
    from rl_order_execution.cli import build_settings

    market = Path("benchmarks/markets/jump.yaml")
    run, _ = build_settings(market, no_best_params=True, seed=7, agent="ppo", episodes=11)
    cell = cell_settings(market, "ppo", 7, {"rl.episodes": 11})
    assert cell.model_dump() == run.model_dump()


def test_fingerprint_ignores_where_a_run_writes_not_what_it_computes() -> None:
    market = Path("benchmarks/markets/default.yaml")
    base = fingerprint(cell_settings(market, "ddqn", 1, {}))
    elsewhere = {"logging.output_root": "/elsewhere", "logging.progress": False}
    assert fingerprint(cell_settings(market, "ddqn", 1, elsewhere)) == base
    assert fingerprint(cell_settings(market, "ddqn", 1, {"rl.episodes": 7})) != base
    assert fingerprint(cell_settings(market, "ddqn", 2, {})) != base


def test_an_attempt_started_again_after_its_worker_died_is_lost(tmp_path: Path) -> None:
    job = CellJob("c", str(tmp_path), {}, "f", attempt=1, session="s")
    job.work_dir.mkdir()  # what the attempt on the dead worker left
    with pytest.raises(AttemptLost):
        run_cell(job)


def test_quality_spec_is_every_market_with_the_default_agent_and_3_seeds() -> None:
    from rl_order_execution.sweeps.command import plan_cells
    from rl_order_execution.sweeps.spec import load_spec

    spec = load_spec(Path("benchmarks/sweeps/quality.yaml"))
    presets = sorted(p.stem for p in Path("benchmarks/markets").glob("*.yaml"))
    assert sorted(m.name for m in spec.markets) == presets
    assert spec.agents == ("ddqn",)
    assert spec.seeds == (536987300, 1944468666, 233227757)  # rl-exec run --seeds 3's, seed 42
    assert len(plan_cells(spec, Path("quality.yaml"))) == 3 * len(presets)


# --- the aggregate ---


def test_iqm_is_the_mean_of_the_middle_half() -> None:
    assert iqm(np.array([1.0, 2.0, 3.0])) == pytest.approx(2.0)  # n < 4: nothing is cut
    assert iqm(np.array([100.0, 2.0, 3.0, -50.0])) == pytest.approx(2.5)
    assert iqm(np.array([8.0, 1, 2, 3, 4, 5, 6, 7])) == pytest.approx(4.5)  # 2 cut at each end


def test_bootstrap_interval_is_fixed_and_ignores_the_order_of_cells() -> None:
    values = [0.91, 0.95, 0.97, 0.93, 0.96]
    first = iqm_with_ci(values)
    assert iqm_with_ci(list(reversed(values))) == first
    assert iqm_with_ci(values) == first
    low, high = first.ci95
    assert min(values) <= low < first.iqm < high <= max(values)
    assert iqm_with_ci([0.5]) == Estimate(0.5, (0.5, 0.5))


def _result(seed: int, share: float | None, market: str = "m") -> CellResult:
    return CellResult(
        cell=f"{market}-ddqn-seed{seed}",
        market=market,
        agent="ddqn",
        seed=seed,
        savings_bps=10.0 + seed,
        share=share,
        share_kind=None if share is None else "gap_captured",
        training_seconds=2.0 * seed,
        evaluation_seconds=1.0,
        references={"best-discrete": 0.971},
    )


def test_aggregate_rows_per_market_and_agent() -> None:
    rows = aggregate(
        [_result(3, 0.9), _result(1, 0.8), _result(2, None, "n")], [("m", "ddqn"), ("n", "ddqn")]
    )
    m, n = rows
    assert m.cells == 2
    assert [c.seed for c in m.per_cell] == [1, 3]
    assert m.share_of_optimum is not None
    assert m.share_of_optimum.iqm == pytest.approx(0.85)
    assert m.training_seconds == pytest.approx(4.0)
    assert n.cells == 1
    assert n.share_of_optimum is None  # a cell without a share: no share for the row
    assert n.savings_bps == Estimate(12.0, (12.0, 12.0))


def test_a_book_cell_is_scored_against_its_own_optimum_on_the_same_episodes(
    tmp_path: Path,
) -> None:
    """On the book market the cell's share is the agent's advantage_share (the optimum of its own
    action set run on the same test episodes), not the savings over the exact gap."""
    strategy = {
        "savings_cost": {"avg_savings_bps": 1.47},
        "gap_captured": {"value": 0.788},  # savings / the exact E[C] gap
    }
    metrics = {
        "strategies": {"agent": strategy},
        "agents": {"agent": {"action_set": "menu", "advantage_share": {"value": 0.782}}},
        "timing": {"training_seconds": 3.0, "evaluation_seconds": 1.0},
    }
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    cell = read_cell(tmp_path, "book", "ddqn", 1)
    assert (cell.share, cell.share_kind) == (0.782, "advantage_share")
    del metrics["agents"]  # any other market: the simulated market's share
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    assert read_cell(tmp_path, "m", "ddqn", 1).share == 0.788


def test_quality_table_in_markdown() -> None:
    rows = aggregate([_result(1, 0.97), _result(2, 0.968), _result(3, 0.966)], [("m", "ddqn")])
    table = quality_table(rows).splitlines()
    assert table[0] == (
        "| market | agent | per seed | IQM | bootstrap 95 % CI | grid best | VWAP |"
    )
    assert table[2] == (
        "| m | ddqn | 97.0 %, 96.8 %, 96.6 % | 96.8 % | [96.6 %, 97.0 %] | 97.1 % | - |"
    )


def test_empty_row_renders() -> None:
    row = AggregateRow("m", "sac", 0, None, None, None, None)
    assert "| m | sac | - | - | - | - | - |" in quality_table([row])


# --- on a local Dask cluster ---


def test_local_cluster_workers_are_one_thread_processes_on_localhost() -> None:
    import torch

    with engine.dask_client(2, None) as client:
        info = client.scheduler_info()
        assert info["address"].startswith("tcp://127.0.0.1:")
        assert len(info["workers"]) == 2
        for address, worker in info["workers"].items():
            assert address.startswith("tcp://127.0.0.1:")
            assert worker["nthreads"] == 1
        assert set(client.run(torch.get_num_threads).values()) == {1}
        pids = set(client.run(os.getpid).values())
        assert os.getpid() not in pids
        allowed = client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.allowed_failures)  # type: ignore[no-untyped-call]
        assert allowed == 0
        # everything listens on the loopback only; the scheduler's HTTP routes on a free port
        me = psutil.Process()
        listening = [
            c.laddr
            for p in [me, *me.children(recursive=True)]
            for c in p.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN
        ]
        assert listening and all(a.ip == "127.0.0.1" for a in listening), listening
        assert 8787 not in {a.port for a in listening}
    assert not worker_processes()


@pytest.fixture(scope="module")
def straight_sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path, str]:
    """A sweep of four cells on two workers that nothing interrupts."""
    folder = tmp_path_factory.mktemp("straight")
    out = folder / "sweep"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(ROOT)
        code, stdout, _ = sweep(write_spec(folder), out, workers=2)
    return code, out, stdout


def test_sweep_on_two_workers_writes_run_folders_and_the_aggregate(
    straight_sweep: tuple[int, Path, str],
) -> None:
    code, out, stdout = straight_sweep
    assert code == 0
    assert not worker_processes()  # the cluster's processes ended with the sweep
    report = json.loads((out / "sweep.json").read_text())
    assert report["workers"] == "local cluster of 2 workers"
    assert report["failures"] == []
    (row,) = report["aggregate"]
    assert (row["market"], row["agent"], row["cells"]) == ("default", "ddqn", 4)
    savings = [c["savings_bps"] for c in row["per_cell"]]
    assert min(savings) <= row["savings_bps"]["ci95"][0] <= row["savings_bps"]["iqm"]
    assert row["savings_bps"]["iqm"] <= row["savings_bps"]["ci95"][1] <= max(savings)
    assert row["share_of_optimum"]["iqm"] == pytest.approx(
        iqm(np.array([c["share"] for c in row["per_cell"]]))
    )
    for seed in SEEDS:
        cell = out / "cells" / f"default-ddqn-seed{seed}"
        metrics = json.loads((cell / "metrics.json").read_text())
        assert metrics["settings"]["simulation"]["seed"] == seed
        assert metrics["settings"]["rl"]["agent"] == "ddqn"
        assert metrics["settings"]["evaluation"]["episodes"] == 50
        assert set(metrics["timing"]) == {"training_seconds", "evaluation_seconds"}
        assert (cell / "model.pt").is_file() and (cell / "report.md").is_file()
    assert not [p for p in (out / "cells").iterdir() if p.name.startswith(".")]
    assert "| default | ddqn | 4 |" in (out / "sweep.md").read_text()
    assert (out / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    assert "default-ddqn-seed5" in stdout


def test_rerun_of_a_finished_sweep_runs_nothing(
    straight_sweep: tuple[int, Path, str], tmp_path: Path
) -> None:
    _, out, _ = straight_sweep
    before = json.loads((out / "sweep.json").read_text())
    code, stdout, _ = sweep(write_spec(tmp_path), out)
    assert code == 0
    assert "4 cells, 4 already finished, 0 to run" in stdout
    assert json.loads((out / "sweep.json").read_text())["aggregate"] == before["aggregate"]


def _fail_seed2(job: CellJob) -> CellSummary:
    """A cell runner whose seed-2 cell always raises; it notes every attempt beside the cells."""
    Path(job.cells_dir, f"attempt-{job.name}-{job.attempt}").touch()
    if job.name.endswith("seed2"):
        raise RuntimeError("boom")
    return run_cell(job)


def test_a_failing_cell_is_tried_1_plus_retries_times_then_reported(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    code, stdout, _ = sweep(write_spec(tmp_path, seeds=[1, 2]), out, retries=2, runner=_fail_seed2)
    assert code == 1
    attempts = sorted(p.name for p in (out / "cells").glob("attempt-*"))
    assert attempts == [
        "attempt-default-ddqn-seed1-1",
        "attempt-default-ddqn-seed2-1",
        "attempt-default-ddqn-seed2-2",
        "attempt-default-ddqn-seed2-3",
    ]
    report = json.loads((out / "sweep.json").read_text())
    assert report["failures"] == [{"cell": "default-ddqn-seed2", "reason": "RuntimeError: boom"}]
    assert report["aggregate"][0]["cells"] == 1  # the aggregate is written all the same
    assert "retry  default-ddqn-seed2  attempt 1 of 3 failed: RuntimeError: boom" in stdout
    assert "`default-ddqn-seed2`: RuntimeError: boom" in (out / "sweep.md").read_text()
    assert not worker_processes()


def test_a_worker_killed_mid_cell_costs_one_attempt(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    spec = write_spec(tmp_path, seeds=[1, 2])
    killed: list[int] = []

    def kill_first_worker_running_a_cell() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            if any((out / "cells").glob(".default-ddqn-seed1.*.a1")):
                for process in worker_processes():
                    process.kill()
                    killed.append(process.pid)
            time.sleep(0.02)

    killer = threading.Thread(target=kill_first_worker_running_a_cell)
    killer.start()
    code, stdout, _ = sweep(spec, out, workers=1, retries=1)
    killer.join()
    assert killed
    assert code == 0
    assert "attempt 1 of 2 failed: its worker process died" in stdout
    cells = {c["cell"]: c for c in json.loads((out / "sweep.json").read_text())["cells"]}
    assert cells["default-ddqn-seed1"]["attempts"] == 2
    assert cells["default-ddqn-seed1"]["status"] == "finished"
    assert not worker_processes()


def _terminal_signals() -> None:
    """Ctrl-C as a terminal's foreground command gets it: a test run started in the background
    of a script (`make test &`) inherits SIGINT ignored, and Python then never raises
    KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(spec: Path, out: Path) -> subprocess.Popen[bytes]:
    """`python -m rl_order_execution.sweeps` in a session of its own, as a terminal runs it."""
    command = [sys.executable, "-m", "rl_order_execution.sweeps", str(spec), "--workers", "2"]
    return subprocess.Popen(
        [*command, "--output-dir", str(out)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=_terminal_signals,
    )


def _wait_for(condition: Any, sweep: subprocess.Popen[bytes], within: float = 120.0) -> None:
    """Until `condition()`, while the sweep runs (its output is shown if it ended first)."""
    deadline = time.monotonic() + within
    while not condition():
        if sweep.poll() is not None:
            stdout, stderr = sweep.communicate()
            pytest.fail(f"the sweep ended (exit {sweep.returncode}):\n{stdout!r}\n{stderr!r}")
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_resume_after_sigkill_keeps_finished_cells_and_aggregates_alike(
    straight_sweep: tuple[int, Path, str], tmp_path: Path
) -> None:
    out = tmp_path / "sweep"
    spec = write_spec(tmp_path)
    cells = out / "cells"
    first = _start(spec, out)
    _wait_for(lambda: any(cells.glob("*/cell.json")), first)
    workers = worker_processes(psutil.Process(first.pid))
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    assert gone(workers)  # the workers end with the sweep that started them
    finished = {p.parent.name: p.stat().st_mtime_ns for p in cells.glob("*/cell.json")}
    assert 1 <= len(finished) < len(SEEDS)

    second = _start(spec, out)
    stdout, _ = second.communicate(timeout=120)
    assert second.returncode == 0
    assert f"{len(finished)} already finished, {len(SEEDS) - len(finished)} to run" in (
        stdout.decode()
    )
    for name, mtime in finished.items():  # kept, not run again
        assert (cells / name / "cell.json").stat().st_mtime_ns == mtime
    resumed = json.loads((out / "sweep.json").read_text())["aggregate"]
    straight = json.loads((straight_sweep[1] / "sweep.json").read_text())["aggregate"]
    assert comparable(resumed) == comparable(straight)


def test_ctrl_c_stops_the_sweep_and_its_workers(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    long_cells = {**TINY, "rl.episodes": 3000}  # seconds each: still running at the Ctrl-C
    proc = _start(write_spec(tmp_path, settings=long_cells), out)
    _wait_for(lambda: any((out / "cells").glob(".default-*")), proc)  # cells are running
    workers = worker_processes(psutil.Process(proc.pid))
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole process group
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130
    lines = stderr.decode().strip().splitlines()
    assert len(lines) == 1, stderr.decode()
    assert lines[0].startswith("interrupted: stopped by Ctrl-C; ")
    assert "run the same command again" in lines[0]
    assert gone(workers, within=5)
    assert not [p for p in (out / "cells").iterdir() if p.name.startswith(".")]
