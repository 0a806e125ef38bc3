"""Which package may import which: read from the source with `ast`, so a wrong import fails here first."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKER_SIDE = ("shared", "producer", "consumer")
CPYTHON_ONLY = {"aiosqlite", "pyarrow", "uvicorn", "uvloop", "httptools", "duckdb", "local", "bench"}
RUNTIME = {"workers", "js", "pyodide"}
# The entries and the one binding adapter are the only modules that meet the Workers runtime.
RUNTIME_ADAPTERS = {"producer/entry.py", "consumer/entry.py", "shared/bindings.py"}


def modules(package: str) -> Iterator[Path]:
    yield from sorted((ROOT / package).rglob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module `path` imports, at any depth of the file (type-checking blocks included)."""
    found: set[str] = set()
    package = module_name(path).rpartition(".")[0] if path.name != "__init__.py" else module_name(path)
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def test_the_worker_side_imports_nothing_cpython_only() -> None:
    wrong = [f"{path.relative_to(ROOT)} imports {name}"
             for package in WORKER_SIDE for path in modules(package)
             for name in imports(path) if name.split(".")[0] in CPYTHON_ONLY]
    assert not wrong


def test_only_the_entries_and_the_binding_adapter_meet_the_runtime() -> None:
    wrong = [f"{path.relative_to(ROOT)} imports {name}"
             for package in WORKER_SIDE for path in modules(package)
             for name in imports(path)
             if name.split(".")[0] in RUNTIME and str(path.relative_to(ROOT)) not in RUNTIME_ADAPTERS]
    assert not wrong


def test_the_shipped_cli_never_imports_the_benchmark() -> None:
    wrong = [f"{path.relative_to(ROOT)} imports {name}"
             for path in modules("local") for name in imports(path) if name.split(".")[0] == "bench"]
    assert not wrong
