"""Generate every marked section of README.md and docs/SETTINGS.md (`make docs`).

A generated section sits between `<!-- NAME -->` and `<!-- /NAME -->`; NAME says what fills it:

- `cli`: every `rl-exec` command and subcommand, read from the Typer app;
- `settings`: the full settings table (scripts/settings_table.py), `settings:compact` one row per
  settings section;
- `results:simulated`, `results:volume`, `results:replay`, `results:book`: one table per market
  family from benchmarks/quality.json (`make quality`), the family read from each file in
  benchmarks/markets/; a market without results reads "not measured yet";
- `speed`: the speed benchmark from benchmarks/results.json (`make bench`).

    python scripts/readme_tables.py            # rewrite every stale section of both files
    python scripts/readme_tables.py --check    # exit 1 if any section is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
import yaml
from typer._click.core import Command, Context, Parameter
from typer.core import TyperGroup

from rl_order_execution.config.schema import SimulationSettings

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SETTINGS_DOC = ROOT / "docs" / "SETTINGS.md"
MARKETS = ROOT / "benchmarks" / "markets"
QUALITY = ROOT / "benchmarks" / "quality.json"
SPEED = ROOT / "benchmarks" / "results.json"
FILES = (README, SETTINGS_DOC)
AGENT_ORDER = ("ddqn", "ppo", "sac")
AGENT_NAMES = {"ddqn": "Double DQN", "ppo": "PPO", "sac": "SAC"}
CONTENDERS = {
    **AGENT_NAMES,
    "original_loop": "the original loop shape (1 env, 1 update per env step)",
    "sb3_dqn": "Stable-Baselines3 DQN (its defaults, our network size)",
}
NOT_MEASURED = "not measured yet"


def markers(name: str) -> tuple[str, str]:
    """The opening and closing marker of the section NAME."""
    return f"<!-- {name} -->", f"<!-- /{name} -->"


def _bounds(text: str, name: str) -> tuple[int, int]:
    start_marker, end_marker = markers(name)
    start = text.find(start_marker)
    end = text.find(end_marker, start + len(start_marker)) if start >= 0 else -1
    if start < 0 or end < 0:
        raise ValueError(f"markers {start_marker} ... {end_marker} not found (in that order)")
    return start + len(start_marker), end


def has_block(text: str, name: str) -> bool:
    start_marker, end_marker = markers(name)
    return start_marker in text and end_marker in text


def extract(text: str, name: str) -> str:
    """The content between NAME's markers, without the newline after the opening one."""
    start, end = _bounds(text, name)
    return text[start:end].removeprefix("\n")


def replace(text: str, name: str, content: str) -> str:
    """`text` with NAME's section replaced by `content`; the rest is left byte for byte."""
    start, end = _bounds(text, name)
    return text[:start] + "\n" + content + text[end:]


def _note(source: str) -> str:
    return f"<!-- Generated from {source} by `make docs`; do not edit by hand. -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").strip() or "-"


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return [_row(header), _row(["---"] * len(header)), *(_row(r) for r in rows)]


# --- the command line ------------------------------------------------------------------------


@dataclass(frozen=True)
class CliCommand:
    """One leaf command of the Typer app."""

    path: tuple[str, ...]
    arguments: str
    options: tuple[str, ...]
    help: str


def _argument(param: Parameter) -> str:
    name = (param.metavar or param.name or "").upper()
    if param.nargs == -1:
        name += " ..."
    return name if param.required else f"[{name}]"


def _first_paragraph(text: str | None) -> str:
    return " ".join((text or "").strip().split("\n\n")[0].split())


def cli_commands() -> Iterator[CliCommand]:
    """Every leaf command, in the app's order, with its arguments, option flags and help."""
    from rl_order_execution.cli import app

    root = typer.main.get_command(app)

    def walk(cmd: Command, ctx: Context, path: tuple[str, ...]) -> Iterator[CliCommand]:
        if isinstance(cmd, TyperGroup):
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                if sub is not None and not sub.hidden:
                    yield from walk(sub, Context(sub, info_name=name, parent=ctx), (*path, name))
            return
        params = cmd.get_params(ctx)
        yield CliCommand(
            path=path,
            arguments=" ".join(_argument(p) for p in params if p.param_type_name == "argument"),
            options=tuple(
                p.opts[0] for p in params if p.param_type_name == "option" and p.opts[0] != "--help"
            ),
            help=_first_paragraph(cmd.help),
        )

    yield from walk(root, Context(root, info_name="rl-exec"), ())


def render_cli() -> str:
    rows = [
        (
            "`" + " ".join(("rl-exec", *c.path, c.arguments)).strip() + "`",
            c.help,
            ", ".join(f"`{o}`" for o in c.options),
        )
        for c in cli_commands()
    ]
    lines = [_note("the Typer app in src/rl_order_execution/cli.py (scripts/readme_tables.py)")]
    lines += ["", *_table(("command", "what it does", "options"), rows)]
    return "\n".join(lines) + "\n"


# --- settings --------------------------------------------------------------------------------


def render_settings_full() -> str:
    from scripts import settings_table

    return settings_table.render(heading_level=2)


def render_settings_compact() -> str:
    from scripts import settings_table

    rows = []
    for section in settings_table.sections():
        if not section.path:  # top-level leaves (a free section such as `book`): a row each
            top = section.rows
            rows += [(f"`{r.env_name[3:].lower()}`", r.description, r.default) for r in top]
            continue
        prefix = "RL_" + "__".join(section.path).upper() + "__"
        names = ", ".join(
            f"`{row.env_name.removeprefix(prefix).lower()}` {row.default}" for row in section.rows
        )
        rows.append((f"`{'.'.join(section.path)}`", section.doc, names))
    lines = [_note("src/rl_order_execution/config/schema.py (scripts/readme_tables.py)")]
    lines += ["", *_table(("section", "what it sets", "settings and their defaults"), rows)]
    return "\n".join(lines) + "\n"


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Market:
    """A file of benchmarks/markets/ and the family it belongs to."""

    name: str
    family: str
    differs: str


def _family(simulation: dict[str, Any]) -> str:
    fields = SimulationSettings.model_fields
    model = simulation.get("price_model", fields["price_model"].default)
    profile = simulation.get("volume_profile", fields["volume_profile"].default)
    if model in ("book", "replay"):
        return str(model)
    return "simulated" if profile == fields["volume_profile"].default else "volume"


def _value(value: Any) -> str:
    return json.dumps(value) if isinstance(value, list | dict) else str(value)


def markets(folder: Path = MARKETS) -> list[Market]:
    found = []
    for path in sorted(folder.glob("*.yaml")):
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        simulation = config.get("simulation") or {}
        differs = ", ".join(f"{k} {_value(v)}" for k, v in simulation.items()) or "-"
        found.append(Market(path.stem, _family(simulation), differs))
    return found


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def _agent_runs(results: dict[str, Any], market: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for agent in AGENT_ORDER:
        key = market if agent == "ddqn" else f"{market}/{agent}"
        if key in results:
            yield agent, results[key]


def _link(market: Market) -> str:
    return f"[{market.name}](benchmarks/markets/{market.name}.yaml)"


def _mean(run: dict[str, Any]) -> str:
    summary = run.get("summary")
    return "n/a" if summary is None else _pct(summary["mean"])


def _seeds(run: dict[str, Any]) -> str:
    return ", ".join("n/a" if v is None else _pct(v) for v in run["shares"])


FamilyColumns = tuple[tuple[str, ...], Callable[[Market, str, dict[str, Any]], tuple[str, ...]]]

FAMILY_COLUMNS: dict[str, FamilyColumns] = {
    "simulated": (
        ("market", "settings", "agent", "per seed", "mean", "grid best", "snapped optimum"),
        lambda m, a, r: (
            _link(m),
            m.differs,
            AGENT_NAMES[a],
            _seeds(r),
            _mean(r),
            _pct(r.get("best_discrete")),
            _pct(r.get("optimal_snapped")),
        ),
    ),
    "volume": (
        ("market", "settings", "agent", "per seed", "mean", "grid best", "VWAP", "snapped optimum"),
        lambda m, a, r: (
            _link(m),
            m.differs,
            AGENT_NAMES[a],
            _seeds(r),
            _mean(r),
            _pct(r.get("best_discrete")),
            _pct(r.get("vwap")),
            _pct(r.get("optimal_snapped")),
        ),
    ),
    "replay": (
        ("market", "settings", "agent", "per seed", "mean", "VWAP", "calibrated optimum"),
        lambda m, a, r: (
            _link(m),
            m.differs,
            AGENT_NAMES[a],
            _seeds(r),
            _mean(r),
            _pct(r.get("vwap")),
            _pct(r.get("calibrated")),
        ),
    ),
    "book": (
        ("market", "settings", "agent", "per seed", "mean"),
        lambda m, a, r: (_link(m), m.differs, AGENT_NAMES[a], _seeds(r), _mean(r)),
    ),
}

FAMILY_SHARE = {
    "simulated": "the exact optimum's advantage over TWAP (the optimum run on the same episodes)",
    "volume": "the exact optimum's advantage over TWAP (the optimum run on the same episodes)",
    "replay": "the hindsight schedule's advantage over TWAP (a look-ahead bound, run on the same "
    "episodes)",
    "book": "the advantage over TWAP of the exact optimum of the agent's own action set (that "
    "optimum run on the same episodes)",
}


def render_results(family: str, quality: Path = QUALITY, folder: Path = MARKETS) -> str:
    data = json.loads(quality.read_text(encoding="utf-8"))
    results: dict[str, Any] = data.get("markets", {})
    header, row = FAMILY_COLUMNS[family]
    rows: list[tuple[str, ...]] = []
    for market in (m for m in markets(folder) if m.family == family):
        runs = list(_agent_runs(results, market.name))
        rows += [row(market, agent, run) for agent, run in runs]
        if not runs:
            blank = ["-"] * (len(header) - 4)
            rows.append((_link(market), market.differs, "-", NOT_MEASURED, *blank))
    source = "benchmarks/quality.json and benchmarks/markets/ (scripts/readme_tables.py)"
    lines = [_note(source), ""]
    if not rows:
        lines.append(f"No market file of this family: {NOT_MEASURED}.")
        return "\n".join(lines) + "\n"
    lines.append(
        f"Share of {FAMILY_SHARE[family]} captured, {data.get('seeds', '?')} training seeds per "
        "agent, on each file's test episodes:"
    )
    lines += ["", *_table(header, rows)]
    return "\n".join(lines) + "\n"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _seconds(value: float | None) -> str:
    return "not reached" if value is None else f"{value:.1f} s"


def _env_label(key: str) -> str:
    """`single`, `vec_<B>` or `replay_vec_<B>` (the replayed market's vector env) in words."""
    if key == "single":
        return "single-episode env"
    prefix, _, batch = key.rpartition("_")
    market = "replayed bars, " if prefix.startswith("replay") else ""
    return f"{market}vectorised env, B = {int(batch):,}"


def render_speed(results: Path = SPEED) -> str:
    data = json.loads(results.read_text(encoding="utf-8"))
    machine = data.get("machine", {})
    rows: list[tuple[str, str]] = []
    for key, steps in data.get("env", {}).items():
        rows.append((f"env steps/s, {_env_label(key)}", _rate(steps)))
    for agent, q in data.get("quality", {}).items():
        name = CONTENDERS.get(agent, agent)
        runs = len(q.get("runs", []))
        rows.append(
            (
                f"time to {_pct(q['target'])} of the optimum's advantage, {name} (median)",
                f"{_seconds(q['seconds_to_target'])} ({q['reached']}/{runs} seeds reached; "
                f"best share {_pct(q['best_share'])})",
            )
        )
    for agent, t in data.get("throughput", {}).items():
        rows.append(
            (
                f"training, {AGENT_NAMES.get(agent, agent)}: {t['episodes']:,} episodes",
                f"{t['seconds']:.1f} s, {_rate(t['env_steps_per_s'])} env steps/s, "
                f"{_rate(t['updates_per_s'])} updates/s",
            )
        )
    evaluation = data.get("evaluation")
    if evaluation:
        rows.append(
            (
                f"evaluation, {evaluation['strategies']} strategies",
                f"{evaluation['evaluate_s']:.2f} s",
            )
        )
    book = data.get("book")
    if book:
        episodes, strategies = book["evaluation_episodes"], book["evaluation_strategies"]
        rows += [
            (
                f"limit-order book market: env steps/s, vectorised env, B = {book['batch']:,}",
                _rate(book["env_steps_per_second"]),
            ),
            (
                f"limit-order book market: evaluation of {episodes:,} episodes x {strategies} "
                "strategies",
                f"{book['evaluation_seconds']:.2f} s",
            ),
        ]
    sweep = data.get("sweep")
    if sweep:
        rows.append(
            (
                f"sweep of {sweep['cells']} cells on {sweep['workers']} Dask workers, start to end",
                f"{sweep['wall_seconds']:.1f} s = {sweep['ratio']:.3f} x the cells' "
                f"{sweep['cell_seconds_sum']:.1f} s / {sweep['workers']} (bar: "
                f"{sweep['limit']:.2f} x; shortest cell {sweep['shortest_cell_seconds']:.1f} s)",
            )
        )
    if "peak_rss_mb" in data:
        rows.append(("peak memory of the whole benchmark", f"{data['peak_rss_mb']:.0f} MB"))
    lines = [_note("benchmarks/results.json (scripts/readme_tables.py)"), ""]
    lines.append(
        f"Run of {data.get('date', '?')}: {machine.get('cpu', '?')}, {machine.get('cores', '?')} "
        f"cores, Python {machine.get('python', '?')}, torch {machine.get('torch', '?')}"
        + (" (`--quick`)." if data.get("quick") else ".")
    )
    lines += ["", *_table(("measurement", "result"), rows)]
    return "\n".join(lines) + "\n"


RENDERERS: dict[str, Callable[[], str]] = {
    "cli": render_cli,
    "settings": render_settings_full,
    "settings:compact": render_settings_compact,
    "results:simulated": lambda: render_results("simulated"),
    "results:volume": lambda: render_results("volume"),
    "results:replay": lambda: render_results("replay"),
    "results:book": lambda: render_results("book"),
    "speed": render_speed,
}
EXPECTED = {
    README: ("cli", "settings:compact", *(f"results:{f}" for f in FAMILY_COLUMNS), "speed"),
    SETTINGS_DOC: ("settings",),
}


def stale_blocks(path: Path) -> list[str]:
    """The names of the generated sections of `path` whose content is not what they would be."""
    text = path.read_text(encoding="utf-8")
    names = [name for name in RENDERERS if has_block(text, name)]
    return [name for name in names if extract(text, name) != RENDERERS[name]()]


def update_file(path: Path) -> list[str]:
    """Rewrite the stale sections of `path`; return their names."""
    text = path.read_text(encoding="utf-8")
    changed = []
    for name in RENDERERS:
        if has_block(text, name):
            content = RENDERERS[name]()
            if extract(text, name) != content:
                text = replace(text, name, content)
                changed.append(name)
    if changed:
        path.write_text(text, encoding="utf-8")
    return changed


def _shown(path: Path) -> str:
    resolved = path.resolve()
    return str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else str(path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if a section is stale")
    parser.add_argument("files", nargs="*", type=Path, help="default: README.md, docs/SETTINGS.md")
    args = parser.parse_args(argv)
    stale = False
    try:
        for path in args.files or FILES:
            if args.check:
                names = stale_blocks(path)
                for name in names:
                    print(f"{_shown(path)}: {name} is stale; run `make docs`", file=sys.stderr)
                stale = stale or bool(names)
            else:
                names = update_file(path)
                print(
                    f"{_shown(path)}: " + (", ".join(names) + " updated" if names else "up to date")
                )
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
