"""The arrows of the README's layout table, checked on every import: module level, inside functions and under
TYPE_CHECKING alike. runtimes imports nothing of ours; fleet only runtimes; builder and agent never each
other; nothing imports the edgectl command line; and no two modules import each other, however indirectly."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("runtimes", "fleet", "builder", "agent", "edgectl")
ALLOWED = {"runtimes": {"runtimes"}, "fleet": {"fleet", "runtimes"}, "builder": {"builder", "fleet", "runtimes"},
           "agent": {"agent", "fleet", "runtimes"}, "edgectl": set(PACKAGES)}
SKIP = ("builder/toolchain/",)  # scripts run inside the isolated converter environment, not our modules


def _modules() -> dict[str, Path]:
    found = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            rel = path.relative_to(ROOT).as_posix()
            if not rel.startswith(SKIP):
                parts = list(path.relative_to(ROOT).with_suffix("").parts)
                found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _resolve(name: str, mods: dict[str, Path]) -> str | None:
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def _targets(node: ast.AST, package: str, mods: dict[str, Path]) -> set[str]:
    if isinstance(node, ast.Import):
        return {r for a in node.names if (r := _resolve(a.name, mods))}
    if not isinstance(node, ast.ImportFrom):
        return set()
    base = package.split(".")[: len(package.split(".")) - (node.level - 1)] if node.level else []
    full = ".".join(base + ([node.module] if node.module else []))
    found = {r for a in node.names if f"{full}.{a.name}" in mods and (r := f"{full}.{a.name}")}
    return found or ({r} if (r := _resolve(full, mods)) else set())


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    graph = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):  # every import, however deep in the file
            edges |= _targets(node, package, mods)
        graph[name] = edges - {name}
    return graph


def _cycle_from(start: str, graph: dict[str, set[str]]) -> list[str] | None:
    stack, seen = [(start, [start])], set()
    while stack:
        node, path = stack.pop()
        for nxt in graph[node]:
            if nxt == start:
                return [*path, start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, [*path, nxt]))
    return None


GRAPH = _graph()


def test_the_graph_sees_function_level_and_type_checking_imports() -> None:
    assert "agent.inference.selection" in GRAPH["agent.cli"]  # imported inside a command function
    assert "agent.inference.serving" in GRAPH["agent.reporting.messaging"]  # under TYPE_CHECKING


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_no_import_cycle(module: str) -> None:
    assert _cycle_from(module, GRAPH) is None


def test_imports_point_one_way() -> None:
    wrong = [f"{m} -> {t}" for m, targets in GRAPH.items() for t in targets
             if t.split(".")[0] not in ALLOWED[m.split(".")[0]]]
    assert wrong == []
