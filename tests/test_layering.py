"""Which package may import which: read from the source with `ast`, so a wrong import fails here first."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKER_SIDE = ("shared", "producer", "consumer")
CPYTHON_ONLY = {"aiosqlite", "pyarrow", "uvicorn", "uvloop", "httptools", "duckdb", "local", "bench"}
RUNTIME = {"workers", "js", "pyodide"}
# The entries and the one binding adapter are the only modules that meet the Workers runtime.
RUNTIME_ADAPTERS = {"producer/entry.py", "consumer/entry.py", "shared/bindings.py"}


def modules(package: str) -> Iterator[Path]:
    yield from sorted((ROOT / package).rglob("*.py"))


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module `path` imports, at any depth of the file (type-checking blocks included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = absolute(node, path)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def absolute(node: ast.ImportFrom, path: Path, root: Path = ROOT) -> str:
    """The module a `from ... import` names, with a relative one resolved against `path`."""
    base = node.module or ""
    if not node.level:
        return base
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
    return ".".join([*anchor, base] if base else anchor)


def test_the_worker_side_imports_nothing_cpython_only() -> None:
    wrong = [
        f"{path.relative_to(ROOT)} imports {name}"
        for package in WORKER_SIDE
        for path in modules(package)
        for name in imports(path)
        if name.split(".")[0] in CPYTHON_ONLY
    ]
    assert not wrong


def test_only_the_entries_and_the_binding_adapter_meet_the_runtime() -> None:
    wrong = [
        f"{path.relative_to(ROOT)} imports {name}"
        for package in WORKER_SIDE
        for path in modules(package)
        for name in imports(path)
        if name.split(".")[0] in RUNTIME and str(path.relative_to(ROOT)) not in RUNTIME_ADAPTERS
    ]
    assert not wrong


def test_the_shipped_cli_never_imports_the_benchmark() -> None:
    wrong = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in modules("local")
        for name in imports(path)
        if name.split(".")[0] == "bench"
    ]
    assert not wrong


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports, at any depth (type-checking blocks included)."""
    paths = {module_name(path, root): path for path in sorted((root / package).rglob("*.py"))}
    return {
        name: {target for target in import_targets(path, root, set(paths)) if target != name}
        for name, path in paths.items()
    }


def import_targets(path: Path, root: Path, known: set[str]) -> set[str]:
    """The `known` modules `path` imports: for `from a import b`, `a.b` when that is a module, else `a`.

    A parent package is not an edge of itself: `from p.m import x` runs `p/__init__.py` first, but a
    package's `__init__` importing its own submodules is the usual layout, not a cycle to refuse.
    """
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = absolute(node, path, root)
            found.update(f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names)
    return found & known


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (its first module repeated at its end), or None."""
    finished: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return [*path[path.index(module) :], module]
        if module in finished:
            return None
        for target in sorted(graph[module]):
            if cycle := visit(target, [*path, module]):
                return cycle
        finished.add(module)
        return None

    for module in sorted(graph):
        if cycle := visit(module, []):
            return cycle
    return None


@pytest.mark.parametrize("package", WORKER_SIDE)
def test_no_import_cycle_between_the_modules_of_a_package(package: str) -> None:
    assert find_cycle(import_graph(ROOT, package)) is None


def test_the_cycle_finder_sees_a_planted_cycle(tmp_path: Path) -> None:
    (tmp_path / "pkg" / "api").mkdir(parents=True)
    files = {
        "pkg/__init__.py": "",
        "pkg/app.py": "from pkg.api import routes\nfrom pkg import leaf\n",
        "pkg/leaf.py": "import json\n",
        "pkg/api/__init__.py": "from . import routes\n",  # a package importing its own module: no cycle
        # Type-only, as AppContext's was: still a cycle.
        "pkg/api/routes.py": (
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..app import App\n"
        ),
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert find_cycle(import_graph(tmp_path, "pkg")) == ["pkg.api.routes", "pkg.app", "pkg.api.routes"]
    (tmp_path / "pkg/api/routes.py").write_text("from pkg.leaf import json\n")
    assert find_cycle(import_graph(tmp_path, "pkg")) is None
