"""Runs inside Pyodide next to one Worker's modules: the part of workerd's Python glue the harness needs.

workerd builds the entrypoint class with (ctx, env) for each invocation and calls its handler with the
event's arguments converted by the SDK's python_from_rpc, and the result converted back by python_to_rpc;
fetch is called "relaxed" (extra arguments dropped). `dispatch` does the same, in one call from Node.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import inspect
import json
import platform
import sys
import time
import types
from collections.abc import Callable
from typing import Any

from pyodide.code import relaxed_call  # type: ignore[import-not-found]
from workers import python_from_rpc, python_to_rpc  # type: ignore[import-not-found]


async def dispatch(entrypoint: type, ctx: Any, env: Any, handler: str, relaxed: bool, *args: Any) -> Any:
    """One invocation: a fresh instance of the entrypoint class, one handler call."""
    instance = entrypoint(ctx, env)
    method = getattr(instance, handler)
    converted = [python_from_rpc(arg) for arg in args]
    result = relaxed_call(method, *converted) if relaxed else method(*converted)
    if inspect.isawaitable(result):
        result = await result
    return python_to_rpc(result)


_REAL_TIME = time.time


def shift_wall_clock(seconds: float) -> None:
    """Make time.time() (and so the Worker's SystemClock) run `seconds` ahead of the real clock."""
    time.time = lambda: _REAL_TIME() + seconds


def apply_sdk_package_patches() -> None:
    """Apply the SDK's own package patches (anyio.to_thread runs inline), as its .pth loader does in workerd.

    The loader needs workerd's `_cloudflare.import_patch_manager`, which patches a module when it is first
    imported. Here the module is imported at once and patched then: the same patch, applied earlier.
    """
    manager = types.ModuleType("_cloudflare.import_patch_manager")
    manager.register_exec_patch = _patch_now  # type: ignore[attr-defined]
    package = types.ModuleType("_cloudflare")
    package.__path__ = []  # type: ignore[attr-defined]
    package.import_patch_manager = manager  # type: ignore[attr-defined]
    sys.modules.update({"_cloudflare": package, "_cloudflare.import_patch_manager": manager})
    try:
        importlib.import_module("_workers_sdk_package_patches")
    finally:
        del sys.modules["_cloudflare"], sys.modules["_cloudflare.import_patch_manager"]


def _patch_now(name: str) -> Callable[[Callable[[Any], contextlib.AbstractContextManager[None]]], Any]:
    def register(patch: Callable[[Any], contextlib.AbstractContextManager[None]]) -> Any:
        with patch(importlib.import_module(name)):
            pass
        return patch

    return register


def describe(env: Any) -> str:
    """What this interpreter is and how the SDK hands it the D1 binding, as JSON (for the harness's
    result).
    """
    import anyio.to_thread
    import pyodide  # type: ignore[import-not-found]
    import workers  # type: ignore[import-not-found]

    entry = sys.modules.get("entry")
    return json.dumps(
        {
            "platform": sys.platform,
            "python": platform.python_version(),
            "pyodide": pyodide.__version__,
            "sdk": importlib.metadata.version("workers-runtime-sdk"),
            "workers_module": workers.__file__,
            "entry_module": getattr(entry, "__file__", None),
            "db_binding": type(workers._EnvWrapper(env).DB).__name__,
            "auth_limiter": type(getattr(workers._EnvWrapper(env), "AUTH_FAILURES", None)).__name__,
            "threads_inline": anyio.to_thread.run_sync.__module__ == "_workers_sdk_package_patches",
        }
    )
