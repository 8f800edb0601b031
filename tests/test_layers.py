"""The house keeps its shape: no upward import between layers, no import circle.

An AST walk over every module of ``gitfactory/``: each import (at the top, inside a
function, or under ``TYPE_CHECKING``) must go to the importer's own layer or one
below it, and the imports that run (all but the ``TYPE_CHECKING`` ones) must form no
circle. (An annotation may name a type of its own package whose module imports it:
the ``Factory`` handle in the store, the ``Dispatcher`` in run; with
``from __future__ import annotations`` such an import never runs.) ARCHITECTURE.md draws the same picture; the last test checks that the
subpackages it names are the ones that exist.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parent.parent
PACKAGE = TOP / "gitfactory"

# Floors, bottom up. A module may import from its own floor and from lower ones;
# two different packages on one floor know nothing of each other.
FLOORS: list[set[str]] = [
    {"errors", "resources", ""},  # "" is gitfactory/__init__.py (its __version__)
    {"store"},
    {"config"},
    {"plan"},
    {"mail", "knowledge"},
    {"qa", "peers"},
    {"run"},
    {"board"},
    {"cli", "mcp", "demo", "demo_peers", "create", "entry", "__main__"},
]


def _module_name(path: Path, package: Path) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(package: Path = PACKAGE) -> dict[str, Path]:
    return {_module_name(p, package): p for p in sorted(package.rglob("*.py"))}


def _type_checking_block(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(name: str, path: Path, known: set[str]) -> list[tuple[str, bool, int]]:
    """(imported gitfactory module, whether it runs, line) for every import in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, bool, int]] = []

    def visit(node: ast.AST, runs: bool) -> None:
        if isinstance(node, ast.If) and _type_checking_block(node):
            for child in node.body:
                visit(child, False)
            for child in node.orelse:
                visit(child, runs)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "gitfactory":
                    found.append((alias.name, runs, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.split(".")[0] == "gitfactory":
                for alias in node.names:
                    full = f"{module}.{alias.name}"
                    found.append((full if full in known else module, runs, node.lineno))
        elif isinstance(node, ast.Call):
            target = _dynamic_import(node)
            if target is not None:
                found.append((target, runs, node.lineno))
        for child in ast.iter_child_nodes(node):
            visit(child, runs)

    visit(tree, True)
    return found


def _dynamic_import(call: ast.Call) -> str | None:
    """The gitfactory module an importlib.import_module(...) or __import__(...) call
    names (for an f-string, its constant head: "gitfactory.cli." -> gitfactory.cli)."""
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if name not in ("import_module", "__import__") or not call.args:
        return None
    arg = call.args[0]
    if isinstance(arg, ast.JoinedStr):
        head = arg.values[0] if arg.values else None
        arg = head if isinstance(head, ast.Constant) else ast.Constant("")
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        text = arg.value.rstrip(".")
        if text.split(".")[0] == "gitfactory":
            return text
    return None


def tricks(package: Path = PACKAGE) -> list[str]:
    """What would hide an import from the walk: exec and eval, or a TYPE_CHECKING
    that is not typing's (assigned, so that a 'type-only' import runs)."""
    bad = []
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        where = path.relative_to(package.parent)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("exec", "eval"):
                bad.append(f"{where}:{node.lineno}: {node.func.id}() hides what it imports")  # type: ignore[attr-defined]
            targets = (
                node.targets if isinstance(node, ast.Assign)
                else [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign))
                else []
            )  # fmt: skip
            if any(isinstance(t, ast.Name) and t.id == "TYPE_CHECKING" for t in targets):
                bad.append(f"{where}:{node.lineno}: TYPE_CHECKING is typing's; do not assign it")
    return bad


def _unit(module: str) -> str:
    """The top-level part of gitfactory a module belongs to ('store', 'errors', '')."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _floor(module: str) -> int:
    unit = _unit(module)
    for n, floor in enumerate(FLOORS):
        if unit in floor:
            return n
    raise AssertionError(f"{module}: not on any floor; add its package to FLOORS")


def upward_imports(package: Path = PACKAGE) -> list[str]:
    """Imports that go to a higher floor, or sideways to another package of the floor."""
    modules = _modules(package)
    bad = []
    for name, path in modules.items():
        for target, _, line in sorted(set(imports_of(name, path, set(modules)))):
            mine, theirs = _floor(name), _floor(target)
            sideways = (
                mine == theirs
                and _unit(name) != _unit(target)
                and _floor(name) != len(FLOORS) - 1
                and _unit(target) != ""
                and theirs != 0
            )
            if theirs > mine or sideways:
                where = path.relative_to(package.parent)
                bad.append(f"{where}:{line}: {name} imports {target} (floor {theirs} > {mine})")
    return bad


def circles(package: Path = PACKAGE) -> list[list[str]]:
    """Circles among the imports that run (Tarjan's strongly connected components)."""
    modules = _modules(package)
    graph = {
        name: sorted({t for t, runs, _ in imports_of(name, path, set(modules)) if runs} - {name})
        for name, path in modules.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, []):
            if nxt not in graph:
                continue  # gitfactory.__version__ and the like: not a module
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def test_no_module_imports_a_higher_floor() -> None:
    assert upward_imports() == []


def test_no_import_circles() -> None:
    assert circles() == []


def test_no_import_hides_from_the_walk() -> None:
    assert tricks() == []


def test_every_package_is_on_a_floor_and_says_what_it_may_import() -> None:
    for init in sorted(PACKAGE.glob("*/__init__.py")):
        unit = init.parent.name
        assert any(unit in floor for floor in FLOORS), f"{unit}: add it to FLOORS"
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        assert "may import" in doc.lower(), f"{init.relative_to(TOP)}: say what it may import"


def test_no_module_is_over_400_lines() -> None:
    long = {
        str(p.relative_to(TOP)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400
    }
    assert long == {}


def test_the_checker_sees_an_upward_import_and_a_circle(tmp_path: Path) -> None:
    # The old flat layout's two faults, rebuilt small: store reaching up to config
    # (lazily, inside a function), and clock -> records -> ids -> clock.
    package = tmp_path / "gitfactory"
    (package / "store").mkdir(parents=True)
    (package / "config").mkdir()
    for init in (package, package / "store", package / "config"):
        (init / "__init__.py").write_text("")
    (package / "store" / "factory.py").write_text(
        "def config():\n    from gitfactory.config import load\n    return load\n"
    )
    (package / "config" / "load.py").write_text("from gitfactory.store import factory\n")
    (package / "store" / "git.py").write_text(
        "import importlib\n\ndef later():\n    return importlib.import_module('gitfactory.config.load')\n"
        "TYPE_CHECKING = True\nexec('from gitfactory.config import load')\n"
    )
    (package / "store" / "clock.py").write_text("from gitfactory.store import records\n")
    (package / "store" / "records.py").write_text("from gitfactory.store import ids\n")
    (package / "store" / "ids.py").write_text(
        "def now():\n    from gitfactory.store import clock\n    return clock\n"
    )
    bad = upward_imports(package)
    found = circles(package)
    assert bad == [
        "gitfactory/store/factory.py:2: gitfactory.store.factory imports "
        "gitfactory.config.load (floor 2 > 1)",
        "gitfactory/store/git.py:4: gitfactory.store.git imports "
        "gitfactory.config.load (floor 2 > 1)",
    ]
    assert tricks(package) == [
        "gitfactory/store/git.py:5: TYPE_CHECKING is typing's; do not assign it",
        "gitfactory/store/git.py:6: exec() hides what it imports",
    ]
    assert found == [
        ["gitfactory.config.load", "gitfactory.store.factory"],
        ["gitfactory.store.clock", "gitfactory.store.ids", "gitfactory.store.records"],
    ]


def test_architecture_md_names_the_packages_that_exist() -> None:
    text = (TOP / "ARCHITECTURE.md").read_text(encoding="utf-8")
    named = set(re.findall(r"^### `gitfactory/(\w+)/`", text, re.M))
    actual = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert named == actual
    assert len(text.splitlines()) < 200
    # Every module it names is there: by path (run/dispatch.py) or by file name.
    names = {p.name for p in PACKAGE.rglob("*.py")}
    for name in set(re.findall(r"`([\w/]+\.py)`", text)):
        found = (PACKAGE / name).exists() or (TOP / name).exists() or name in names
        assert found, f"ARCHITECTURE.md names {name}, which does not exist"


@pytest.mark.parametrize("module", ["gitfactory.cli", "gitfactory.store.factory"])
def test_reading_modules_do_not_import_pygit2(module: str) -> None:
    # The lazy-import discipline: a query the index answers never loads pygit2.
    import subprocess
    import sys

    code = f"import sys, {module}; print('pygit2' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.strip() == "False", proc.stderr


def test_reads_the_index_answers_import_neither_pygit2_nor_yaml(factory_repo: Path) -> None:
    import subprocess
    import sys

    from conftest import gf

    gf(factory_repo, "task", "add", "Something to list")
    reads = (["task", "list"], ["ready", "--json"], ["log"], ["mail", "inbox", "--as", "coder/a"])
    for args in reads:
        gf(factory_repo, *args)  # the index catches up (that may need pygit2)
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "gitfactory", *args],
            cwd=factory_repo, capture_output=True, text=True, check=True,
        )  # fmt: skip
        loaded = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()}
        assert "pygit2" not in loaded and "ruamel.yaml" not in loaded, args
