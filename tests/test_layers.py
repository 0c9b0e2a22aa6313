"""The package's floors: which module may import which, read from the source (run-time imports,
module-level or inside functions; only `if TYPE_CHECKING:` imports are left out where a rule says
so). Importing `a.b.c` runs `a/__init__.py` and `a/b/__init__.py` too, so those count as imported,
except a module's own ancestors (they are being imported when it runs)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = "rl_order_execution"
GROUND = {f"{PACKAGE}.errors", f"{PACKAGE}.files", f"{PACKAGE}.arrays"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted((SRC / PACKAGE).rglob("*.py"))}


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str, typing_too: bool) -> Iterator[str]:
    package = module if modules()[module].name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _type_checking(node) and not typing_too:
            yield from (i for stmt in node.orelse for i in _imports(stmt, module, typing_too))
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)
        yield from _imports(node, module, typing_too)


def imported(module: str, typing_too: bool = False) -> set[str]:
    """The toolkit's modules that importing `module` runs (with their parent packages)."""
    tree = ast.parse(modules()[module].read_text())
    found: set[str] = set()
    for name in _imports(tree, module, typing_too):
        parts = name.split(".")
        found |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
    # a module's own ancestor packages are being imported already when it runs: not an edge
    ancestors = {module.rsplit(".", i)[0] for i in range(1, module.count(".") + 1)}
    return {m for m in found if m in modules() and m != module and m not in ancestors}


def _in(module: str, *packages: str) -> bool:
    return any(module == p or module.startswith(f"{p}.") for p in packages)


def _all_in(prefix: str) -> list[str]:
    return [m for m in modules() if _in(m, f"{PACKAGE}.{prefix}")]


@pytest.mark.parametrize("module", sorted(GROUND))
def test_the_ground_floor_imports_nothing_of_ours(module: str) -> None:
    assert imported(module, typing_too=True) == set()


@pytest.mark.parametrize("layer", ["config", "data"])
def test_config_and_data_import_only_themselves_and_the_ground_floor(layer: str) -> None:
    for module in _all_in(layer):
        outside = {
            m for m in imported(module) if not _in(m, f"{PACKAGE}.{layer}") and m not in GROUND
        }
        assert outside == set(), f"{module} imports {sorted(outside)}"


def test_agents_import_nothing_of_the_floors_above_them() -> None:
    above = [f"{PACKAGE}.{name}" for name in ("reporting", "runs", "cli", "experiment", "tuning")]
    for module in _all_in("agents"):
        bad = {m for m in imported(module) if _in(m, *above)}
        assert bad == set(), f"{module} imports {sorted(bad)}"


def test_strategies_import_nothing_of_agents_not_even_for_type_hints() -> None:
    for module in _all_in("strategies"):
        bad = {m for m in imported(module, typing_too=True) if _in(m, f"{PACKAGE}.agents")}
        assert bad == set(), f"{module} imports {sorted(bad)}"


def test_no_cli_flag_names_below_the_cli() -> None:
    for module in _all_in("agents"):
        text = modules()[module].read_text()
        assert '"--' not in text, f"{module} names a CLI flag"


def test_no_run_time_import_cycle() -> None:
    graph = {m: imported(m) for m in modules()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    assert cycles == []
