"""Trustworthy outputs: a run's record is never overwritten or mixed, an untrained agent is never
reported as trained, interrupts and early failures leave nothing behind, plots say what they
claim, and the console is readable without a terminal."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner, Result

from rl_order_execution import experiment
from rl_order_execution.agents.training import TrainResult, ValidationPoint
from rl_order_execution.cli import app
from rl_order_execution.config import Settings
from rl_order_execution.evaluation import (
    SeedsSummary,
    across_seeds,
    evaluate,
    frontier,
    savings_stats,
    standard_error,
    std_error_of_std,
)
from rl_order_execution.evaluation.statistics import Z95
from rl_order_execution.market import MarketParams, shock_matrix
from rl_order_execution.reporting import plots
from rl_order_execution.reporting.tables import seeds_rows
from rl_order_execution.runs import folders as run_folders
from rl_order_execution.runs import training as run_training
from rl_order_execution.strategies import reference_strategies
from tests.test_cli import TINY  # the same tiny market as the CLI tests

runner = CliRunner()
README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(autouse=True)
def _in_empty_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No config/ or best_params.yaml of the developer's checkout applies; no terminal width."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COLUMNS", raising=False)


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Result]]:
    """One tiny `rl-exec run` shared by the tests that only read it: (run folder, its result)."""
    root = tmp_path_factory.mktemp("trained")
    (root / "tiny.yaml").write_text(TINY)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        for key in [k for k in os.environ if k == "COLUMNS" or k.upper().startswith("RL_")]:
            mp.delenv(key)
        result = runner.invoke(app, ["run", "--config", "tiny.yaml", "--output-dir", "run"])
    assert result.exit_code == 0, result.output
    yield root / "run", result


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file of a run folder (its evaluations/ aside) and its bytes."""
    return {
        str(f.relative_to(folder)): f.read_bytes()
        for f in sorted(folder.rglob("*"))
        if f.is_file() and "evaluations" not in f.parts
    }


def _err_lines(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


# --- 1. evaluate never rewrites the run it evaluates -------------------------------------------


def test_evaluate_writes_its_own_folder_and_leaves_the_run_untouched(
    trained: tuple[Path, Result],
) -> None:
    run, _ = trained
    before = _snapshot(run)
    first = runner.invoke(app, ["evaluate", "--checkpoint", str(run / "model.pt")])
    second = runner.invoke(app, ["evaluate", "--checkpoint", str(run / "model.pt")])
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    assert _snapshot(run) == before  # metrics.json, report.md, plots, model.pt: byte for byte
    assert "training" in json.loads((run / "metrics.json").read_text())

    folders = sorted((run / "evaluations").iterdir())
    assert len(folders) == 2  # two evaluations, two folders: neither overwrites the other
    for folder in folders:
        evaluated = json.loads((folder / "metrics.json").read_text())
        assert evaluated["checkpoint"] == str(run / "model.pt")
        assert "training" not in evaluated
        assert str(folder / "metrics.json") in first.output + second.output
    ran = json.loads((run / "metrics.json").read_text())
    assert evaluated["strategies"]["agent"] == ran["strategies"]["agent"]


def test_evaluate_refuses_to_write_into_the_run_folder_even_with_overwrite(
    trained: tuple[Path, Result],
) -> None:
    run, _ = trained
    before = _snapshot(run)
    result = runner.invoke(
        app, ["evaluate", "--checkpoint", str(run / "model.pt"), "--output-dir", str(run)]
    )
    forced = runner.invoke(
        app,
        [
            "evaluate",
            "--checkpoint",
            str(run / "model.pt"),
            "--output-dir",
            str(run),
            "--overwrite",
        ],
    )
    for r in (result, forced):
        assert r.exit_code == 2
        assert "holds the checkpoint" in r.stderr and len(_err_lines(r)) == 1
    assert _snapshot(run) == before


def test_evaluate_help_says_where_results_go() -> None:
    result = runner.invoke(app, ["evaluate", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "evaluations/<date-time>" in result.output
    assert "default: output/runs/<name>" not in result.output


# --- 2. a run name is never reused silently ----------------------------------------------------


def test_reusing_a_run_folder_is_refused_and_overwrite_replaces_it(tiny: Path) -> None:
    args = ["run", "--config", str(tiny), "--output-dir", "prec"]
    assert runner.invoke(app, args).exit_code == 0
    before = _snapshot(Path("prec"))

    again = runner.invoke(app, args)
    assert again.exit_code == 2
    (line,) = _err_lines(again)
    assert "prec" in line and "--overwrite" in line
    assert _snapshot(Path("prec")) == before  # nothing written, nothing added

    replaced = runner.invoke(app, [*args, "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    (events,) = Path("prec").glob("events.out.tfevents.*")  # one run in TensorBoard
    assert events.name not in before  # the old run's events are gone
    assert set(_snapshot(Path("prec"))) - {events.name} == {
        f for f in before if "tfevents" not in f
    }


def test_overwrite_never_removes_files_rl_exec_did_not_write(tiny: Path) -> None:
    Path("mine").mkdir()
    (Path("mine") / "thesis.tex").write_text("years of work")
    result = runner.invoke(
        app, ["run", "--config", str(tiny), "--output-dir", "mine", "--overwrite"]
    )
    assert result.exit_code == 2
    assert "thesis.tex" in result.stderr and len(_err_lines(result)) == 1
    assert (Path("mine") / "thesis.tex").read_text() == "years of work"


# --- 3. an untrained agent is reported as untrained -------------------------------------------


def test_a_run_without_gradient_updates_warns_everywhere(
    tiny: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RL_RL__LEARNING_STARTS", "1000000")  # never reached in 40 episodes
    result = runner.invoke(app, ["run", "--config", str(tiny), "--output-dir", "untrained"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(Path("untrained/metrics.json").read_text())
    training = metrics["training"]["agent"]
    assert training["updates"] == 0
    assert training["episodes_asked"] == 40 and training["episodes"] >= 40
    # with no update the kept network is the untrained one: the probe must score it identically
    assert training["initial_validation_bps"] == training["best_validation_bps"]
    assert "made no gradient update" in metrics["warnings"][0]
    report = Path("untrained/report.md").read_text()
    assert report.index("made no gradient update") < report.index("## Costs")
    summary = f"trained {training['episodes']} episodes (40 asked), 0 gradient updates"
    assert summary in result.output
    assert "made no gradient update" in result.output

    evaluated = runner.invoke(app, ["evaluate", "--checkpoint", "untrained/model.pt"])
    assert evaluated.exit_code == 0, evaluated.output
    (folder,) = Path("untrained/evaluations").iterdir()
    warnings = json.loads((folder / "metrics.json").read_text())["warnings"]
    assert "made 0 gradient updates" in warnings[0] and "initial network" in warnings[0]


def _result(updates: int, best: float, history: list[float] | None = None) -> TrainResult:
    points = [ValidationPoint(50 * (i + 1), bps) for i, bps in enumerate(history or [])]
    return TrainResult(None, 3000, updates, 1.0, best, points)  # type: ignore[arg-type]


def test_training_warnings_flag_few_updates_and_no_improvement() -> None:
    settings = Settings()
    assert run_training.training_warnings("agent", _result(2312, 39.4), settings, 25.7) == []
    few = run_training.training_warnings("agent", _result(99, 39.4), settings, 25.7)
    assert len(few) == 1 and "only 99 gradient updates" in few[0]
    flat = run_training.training_warnings("agent", _result(2312, 25.7), settings, 25.7)
    assert len(flat) == 1 and "never improved on its untrained network" in flat[0]
    # a kind of agent whose untrained score is unknown: judged against its first validation
    first = run_training.training_warnings("agent", _result(500, 3.0, [3.0, 1.0]), settings, None)
    assert len(first) == 1 and "never improved after its first check" in first[0]


# --- 5. nothing is created before everything is validated; Ctrl-C leaves no debris ------------


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_device_cuda_without_cuda_creates_no_folder() -> None:
    result = runner.invoke(app, ["run", "--device", "cuda", "--run-name", "gpu"])
    assert result.exit_code == 2
    assert "no CUDA device" in result.stderr and len(_err_lines(result)) == 1
    assert not Path("output").exists()


def test_an_output_root_that_is_a_file_creates_nothing(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("")
    result = runner.invoke(app, ["train", "--output-dir", "afile/sub/run"])
    assert result.exit_code == 2
    assert "afile is not a folder" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def _interrupt_after_tensorboard(
    settings: Settings, market: Any, run_dir: Path, *args: Any, **kw: Any
) -> None:
    (run_dir / "events.out.tfevents.1.host.1.0").write_bytes(b"\x00")
    raise KeyboardInterrupt


def test_ctrl_c_prints_one_line_exits_130_and_leaves_no_empty_run(
    tiny: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(experiment, "train_with_progress", _interrupt_after_tensorboard)
    for command in ("run", "train"):
        result = runner.invoke(app, [command, "--config", str(tiny), "--run-name", "stopped"])
        assert result.exit_code == 130
        (line,) = _err_lines(result)
        assert line.startswith("interrupted:") and "removed" in line
        assert "Traceback" not in result.output
        assert not Path("output/runs/stopped").exists()


def test_an_interrupted_run_that_saved_a_result_is_kept(tmp_path: Path) -> None:
    folder = tmp_path / "kept"
    with pytest.raises(KeyboardInterrupt, match="kept"), run_folders.run_folder(folder, "cpu"):
        (folder / "model.pt").write_bytes(b"weights")
        raise KeyboardInterrupt
    assert (folder / "model.pt").read_bytes() == b"weights"


# --- 6. plots say what their titles say ---------------------------------------------------------


@pytest.fixture
def small_evaluation() -> Any:
    p = MarketParams.from_settings(Settings().simulation)
    shocks = shock_matrix(p, 7, 400, True)
    return evaluate(p, reference_strategies(p, runs_only=True), shocks, antithetic=True)


def _captured(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    figures: list[Any] = []
    monkeypatch.setattr(plots, "_save_figure", lambda fig, path: figures.append(fig))
    return figures


def test_savings_plot_shows_the_cost_objective_beside_is_for_every_agent(
    small_evaluation: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    figures = _captured(monkeypatch)
    names = ["optimal", "almgren-chriss"]  # two "agents", as with --seeds 2
    plots.plot_savings(small_evaluation, Path("unused.png"), names)
    cost_ax, is_ax = figures[0].axes
    assert "cost" in cost_ax.get_title().lower() and "objective" in cost_ax.get_title()
    assert "shortfall" in is_ax.get_title().lower()
    p, out = small_evaluation.params, small_evaluation.outcomes
    for ax, kind in ((cost_ax, "cost"), (is_ax, "shortfall")):
        (legend,) = ax.get_figure(root=False).legends  # below its panel, off the bars
        labels = [t.get_text() for t in legend.get_texts()]
        for name in names:
            s = savings_stats(getattr(out["twap"], kind), getattr(out[name], kind), p)
            (label,) = [text for text in labels if text.startswith(f"{name}:")]
            assert f"cheaper in {s.win_rate:.1%}" in label
            assert f"mean {s.avg_savings_bps:.2f} bps" in label
    # at lambda > 0 the optimum saves on the objective and loses on IS: both panels must show it
    assert savings_stats(out["twap"].cost, out["optimal"].cost, p).avg_savings_bps > 0
    assert savings_stats(out["twap"].shortfall, out["optimal"].shortfall, p).avg_savings_bps < 0


def test_frontier_zoom_shows_both_95_percent_intervals(
    small_evaluation: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    figures = _captured(monkeypatch)
    p = small_evaluation.params
    names = ["twap", "optimal", "almgren-chriss"]
    plots.plot_frontier(small_evaluation, frontier(p), Path("unused.png"), names)
    full, zoom = figures[0].axes
    bars = [c for c in zoom.containers if c.has_xerr and c.has_yerr]
    assert len(bars) == len(names)
    (x_lo, x_hi), (y_lo, y_hi) = zoom.get_xlim(), zoom.get_ylim()
    assert y_hi - y_lo < (full.get_ylim()[1] - full.get_ylim()[0]) / 4  # really a zoom
    for name, container in zip(names, bars, strict=True):
        is_bps = small_evaluation.outcomes[name].shortfall * p.bps
        half_x = Z95 * std_error_of_std(is_bps)
        half_y = Z95 * standard_error(is_bps, antithetic=True)
        x_segments, y_segments = (np.asarray(c.get_segments()) for c in container.lines[2])
        assert np.ptp(x_segments[0][:, 0]) == pytest.approx(2 * half_x)
        assert np.ptp(y_segments[0][:, 1]) == pytest.approx(2 * half_y)
        assert x_lo < is_bps.std(ddof=1) - half_x and is_bps.std(ddof=1) + half_x < x_hi
        assert y_lo < is_bps.mean() - half_y and is_bps.mean() + half_y < y_hi


# --- 7. the README stands on its own -----------------------------------------------------------


def test_readme_points_nowhere_outside_the_repository() -> None:
    text = README.read_text(encoding="utf-8")
    assert "../" not in text and "/work/" not in text  # docs/MODEL.md is the repository's own
    for target in re.findall(r"\]\(([^)#]+)\)", text):
        if not target.startswith(("http://", "https://")):
            assert (README.parent / target).exists(), target


def test_readme_states_the_default_number_of_test_episodes() -> None:
    intro = README.read_text(encoding="utf-8").split("## Quick start")[0]
    assert f"{Settings().evaluation.episodes:,} by default" in intro


# --- 8. smaller things ----------------------------------------------------------------------------


def test_evaluate_says_rl_simulation_variables_are_not_used(
    trained: tuple[Path, Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    run, _ = trained
    monkeypatch.setenv("RL_SIMULATION__DRIFT", "0.001")
    result = runner.invoke(
        app, ["evaluate", "--checkpoint", str(run / "model.pt"), "--output-dir", "ev"]
    )
    assert result.exit_code == 0, result.output
    assert "RL_SIMULATION__DRIFT not used" in result.output
    assert json.loads(Path("ev/metrics.json").read_text())["settings"]["simulation"]["drift"] == 0


@pytest.mark.parametrize("command", [["config", "show"], ["run", "--episodes", "1"]])
def test_a_binary_best_params_file_is_one_line_naming_it(command: list[str]) -> None:
    Path("config").mkdir()
    Path("config/best_params.yaml").write_bytes(bytes(range(128, 256)) * 4)
    result = runner.invoke(app, command)
    assert result.exit_code == 2
    (line,) = _err_lines(result)
    assert "config/best_params.yaml" in line and "UTF-8" in line
    assert not Path("output").exists()


def test_two_seeds_say_the_interval_is_not_meaningful_on_the_console(tiny: Path) -> None:
    result = runner.invoke(
        app, ["run", "--config", str(tiny), "--output-dir", "two", "--seeds", "2"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(Path("two/metrics.json").read_text())["seeds_summary"]
    assert summary["cost_savings_bps"]["ci95_meaningful"] is False
    assert "Across 2 training seeds" in result.output
    assert "not meaningful with 2 seeds" in result.output
    assert "not meaningful with 2 seeds" in Path("two/report.md").read_text()


def test_seeds_rows_print_gap_in_percent_and_a_ci_from_four_seeds() -> None:
    gap = across_seeds([0.91, 0.95, 0.97, 0.93], 0)
    rows = seeds_rows(
        SeedsSummary(cost_savings_bps=across_seeds([38.0, 39.5, 39.0, 40.1], 0), gap_captured=gap)
    )
    (cost, share) = rows
    assert share[0] == "gap captured" and share[1] == f"{gap.mean:.1%}" == "94.0%"
    assert share[3] == f"[{gap.ci95_low:.1%}, {gap.ci95_high:.1%}]"
    assert share[4] == "91.0%, 95.0%, 97.0%, 93.0%"
    assert cost[1] == "39.15"
    assert across_seeds([1.0, 2.0, 3.0], 0).ci95_meaningful is False


def test_without_a_terminal_tables_are_wide_enough_for_every_name(
    trained: tuple[Path, Result],
) -> None:
    _, result = trained
    assert "almgren-chriss" in result.stdout and "best-discrete" in result.stdout
    assert "…" not in result.stdout
