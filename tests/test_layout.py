"""The package tree follows the data flow, and stays readable.

Layers, lowest first: contract -> evidence -> diagnosis -> notebook -> records (a record's
files) -> execution (running a notebook) -> storage (the index's database) -> incidents
(incidents and the run queue) -> service -> lab -> the command line. A module may import its
own layer or a lower one, never a higher one; no import cycles between modules (type-checking
imports count: they are how cycles start); no module over 400 lines. The order below is
written here by hand on purpose."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "runbook_lib"
LAYERS = [
    "contract",
    "evidence",
    "diagnosis",
    "notebook",
    "records",
    "execution",
    "storage",
    "incidents",
    "service",
    "lab",
    "cli",
]
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Modules of runbook_lib that `name` imports (a name imported from a package counts as
    its submodule when there is one)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("runbook_lib")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([node.module] if node.module else []))
            if not base.startswith("runbook_lib"):
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else base)
    return found - {name}


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {name: _imports(name, path, set(mods)) for name, path in mods.items()}


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if len(parts) < 2:
        return None  # runbook_lib itself
    head = parts[1]
    return LAYERS.index(head) if head in LAYERS else None


def test_every_module_is_in_a_layer() -> None:
    outside = [m for m in _modules() if m != "runbook_lib" and _layer(m) is None]
    assert outside == []


def test_imports_point_down() -> None:
    upward = []
    for module, deps in _graph().items():
        for dep in deps:
            mine, theirs = _layer(module), _layer(dep)
            if mine is not None and theirs is not None and theirs > mine:
                upward.append(f"{module} imports {dep}")
    assert sorted(upward) == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _without_own_package_init(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """A package's __init__ importing its own submodules (to re-export them) is not a cycle
    between modules: drop the edges from a package to modules inside it."""
    return {m: {d for d in deps if not d.startswith(m + ".")} for m, deps in graph.items()}


def test_no_import_cycles() -> None:
    assert _cycles(_without_own_package_init(_graph())) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The check above can fail: a planted two-module cycle and a three-module one."""
    planted = {"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"e"}, "e": {"c"}, "f": {"a"}}
    assert _cycles(planted) == [["a", "b"], ["c", "d", "e"]]


def test_upward_import_is_seen(tmp_path: Path) -> None:
    path = tmp_path / "mod.py"
    path.write_text("from runbook_lib.service import server\nimport runbook_lib.lab.stack\n")
    known = {"runbook_lib.service.server", "runbook_lib.lab.stack"}
    deps = _imports("runbook_lib.evidence.mod", path, known)
    assert deps == {"runbook_lib.service.server", "runbook_lib.lab.stack"}
    assert _layer("runbook_lib.evidence.mod") == 1 and _layer("runbook_lib.service.server") == 8
    assert _layer("runbook_lib.storage.database") < _layer("runbook_lib.incidents.queue")


@pytest.mark.parametrize("name", sorted(_modules()))
def test_module_is_short(name: str) -> None:
    lines = len(_modules()[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines"


def test_every_package_says_what_it_owns() -> None:
    missing = [
        str(p.relative_to(ROOT.parent))
        for p in ROOT.rglob("__init__.py")
        if ast.get_docstring(ast.parse(p.read_text())) is None
    ]
    assert missing == []


def test_every_import_of_the_library_resolves() -> None:
    """Imports inside functions run only when the function does (a post-mortem chart, a
    container check); check them all here, so a moved name fails the fast tier."""
    import importlib

    broken = []
    others = [*ROOT.parent.glob("benchmarks/*.py"), *ROOT.parent.glob("tests/**/*.py")]
    files = {**_modules(), **{str(p.relative_to(ROOT.parent)): p for p in others}}
    for name, path in files.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom) or node.level:
                continue
            if not (node.module or "").startswith("runbook_lib"):
                continue
            module = importlib.import_module(node.module)
            for alias in node.names:
                if not hasattr(module, alias.name):
                    try:
                        importlib.import_module(f"{node.module}.{alias.name}")
                    except ImportError:
                        broken.append(f"{name}: from {node.module} import {alias.name}")
    assert broken == []
