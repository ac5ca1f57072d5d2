"""The package's shape, held by reading its imports: core → features → app/cli, devtools kept out, no cycles."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import ROOT

PACKAGE = ROOT / "daemon"
FEATURES = frozenset({"remediation", "scan", "sync", "dlq", "findings", "doctor", "evidence", "failures"})
TOP = frozenset({"app", "features", "cli", "__main__"})
MAX_LINES = 400


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    lazy: bool  # inside a function or a try block: not run at import time of the importer
    line: int


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _imports() -> list[Import]:
    modules = _modules()
    found: list[Import] = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        lazy_nodes = {
            id(inner)
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Try)
            for inner in ast.walk(node)
            if inner is not node or isinstance(node, ast.Try)
        }
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module:
                base = node.module
                # `from daemon.cli import dlq` imports the submodule daemon.cli.dlq when there is one.
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            found.extend(Import(name, target, id(node) in lazy_nodes, node.lineno) for target in targets)
    return found


def layer(module: str) -> str:
    """`core`, `feature:<name>`, `top` (app, features, cli) or `devtools`."""
    parts = module.split(".")
    head = parts[1] if len(parts) > 1 else ""
    if head in FEATURES:
        return f"feature:{head}"
    if head in TOP:
        return "top"
    if head == "devtools":
        return "devtools"
    return "core"


def _internal() -> list[Import]:
    return [i for i in _imports() if i.imported == "daemon" or i.imported.startswith("daemon.")]


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("daemon.config", "core"),
        ("daemon.table", "core"),
        ("daemon.scan.scanner", "feature:scan"),
        ("daemon.remediation.plan", "feature:remediation"),
        ("daemon.evidence.reader", "feature:evidence"),
        ("daemon.cli.dlq", "top"),
        ("daemon.app", "top"),
        ("daemon.devtools.patches.sqs", "devtools"),
    ],
)
def test_layer_of_a_module(module: str, expected: str) -> None:
    """Each module's layer comes from its place in the package."""
    assert layer(module) == expected


def test_core_imports_no_feature_and_nothing_above_it() -> None:
    """A core module imports only other core modules."""
    bad = [i for i in _internal() if layer(i.importer) == "core" and layer(i.imported) != "core"]
    assert bad == []


def test_features_import_only_core_and_themselves() -> None:
    """A feature imports core and its own package: never another feature, `app`, `cli` or the dev tools."""
    bad = [
        i
        for i in _internal()
        if layer(i.importer).startswith("feature:") and layer(i.imported) not in ("core", layer(i.importer))
    ]
    assert bad == []


def test_nothing_imports_the_cli_or_the_app_but_the_entry_points() -> None:
    """Only the entry points (the CLI, `__main__`, the dev tools' `rotaudit local`) import `app` and `cli`."""
    bad = [
        i
        for i in _internal()
        if i.imported.split(".")[1:2] in (["app"], ["cli"]) and layer(i.importer) not in ("top", "devtools")
    ]
    assert bad == []


def test_devtools_are_imported_once_lazily_by_the_cli_and_nowhere_else() -> None:
    """The product never needs the emulator: one guarded import in the CLI, none elsewhere outside devtools."""
    outside = [i for i in _internal() if layer(i.imported) == "devtools" and layer(i.importer) != "devtools"]
    assert [i.importer for i in outside] == ["daemon.cli"]
    assert all(i.lazy for i in outside)


def test_only_devtools_import_moto() -> None:
    """moto is a dev dependency: no product module imports it."""
    bad = [i for i in _imports() if i.imported.split(".")[0] == "moto" and layer(i.importer) != "devtools"]
    assert bad == []


def test_no_import_cycle() -> None:
    """Import-time imports among the package's modules form no cycle."""
    graph: dict[str, set[str]] = {}
    modules = set(_modules())
    for i in _internal():
        if not i.lazy and i.imported in modules and i.imported != i.importer:
            graph.setdefault(i.importer, set()).add(i.imported)
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            # A package's __init__ is imported before its submodules: that edge is not a cycle.
            if node.startswith(nxt + "."):
                continue
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt] if nxt in path else [node, nxt])
            elif state.get(nxt) is None:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_no_module_is_past_the_size_where_a_second_job_hides() -> None:
    """Every module stays under 400 lines (STYLE.md: at about 400, look for the second job hiding in it)."""
    long = {name: n for name, path in _modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_every_module_names_its_job_in_a_docstring() -> None:
    """Each module starts with a docstring, as the house style asks."""
    missing = [name for name, path in _modules().items() if not ast.get_docstring(ast.parse(path.read_text()))]
    assert missing == []
