"""The emulated Twitch in a process of its own, on a loopback port.

Twitch does its work on Twitch's machines: served from the crawler's own event loop, the emulator's request
handling and JSON rendering would be billed to the crawler as CPU time it never spends in production. The
child rebuilds the same world from the same seed and reads the same scaled clock: `perf_counter` is the
system-wide monotonic clock on Linux, and the start instant is shared through memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import multiprocessing
import socket
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from bench.clock import ScaledClock
from local.emulator import EmulatorConfig, HelixWorld, create_emulator_app
from local.emulator.faults import HelixFaultInjector, HelixFaults

STARTUP_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class WorldSpec:
    """Everything that determines the emulated world; the child builds it again from this."""

    seed: int
    streamers: int
    clips_per_day: tuple[int, int]
    heavy: tuple[str, float] | None  # (broadcaster id, clips per day) for S3's heavy streamer
    warm: tuple[str, ...]  # broadcaster ids whose clips are generated before serving, as the parent did
    warm_from: float
    warm_to: float
    faults: HelixFaults | None = None  # S4's traps, injected into the served app


def build_world(spec: WorldSpec, clock: ScaledClock) -> HelixWorld:
    world = HelixWorld(spec.seed, spec.streamers, spec.clips_per_day, clock=clock)
    furnish(world, spec)
    return world


def furnish(world: HelixWorld, spec: WorldSpec) -> None:
    """Give a freshly built world its heavy streamer and generate the clips it will serve."""
    if spec.heavy is not None:
        world.set_rate(*spec.heavy)
    for broadcaster_id in spec.warm:  # generating clips is setup, not serving: do it before the clock starts
        world.clips(broadcaster_id, spec.warm_from, spec.warm_to)


@contextlib.contextmanager
def helix_process(spec: WorldSpec, emulator: EmulatorConfig, clock: ScaledClock) -> Iterator[str]:
    """Serve the world in a child process until the block ends; yields its base URL."""
    context = multiprocessing.get_context("spawn")
    parent_end, child_end = context.Pipe()
    child = context.Process(
        target=_serve,
        name="helix-emulator",
        daemon=True,
        args=(spec, emulator, clock.origin, clock.factor, clock.start_cell, child_end),
    )
    child.start()
    child_end.close()
    try:
        if not parent_end.poll(STARTUP_TIMEOUT_S):
            raise RuntimeError(f"the Helix emulator process did not start within {STARTUP_TIMEOUT_S:.0f} s")
        ready = parent_end.recv()
        if "error" in ready:
            raise RuntimeError(f"the Helix emulator process failed to start: {ready['error']}")
        yield ready["url"]
    finally:
        parent_end.close()  # the child serves until this end closes
        child.join(10)
        if child.is_alive():
            child.kill()
            child.join()


def _serve(
    spec: WorldSpec,
    emulator: EmulatorConfig,
    origin: float,
    factor: float,
    start_cell: Any,
    parent: Connection,
) -> None:
    try:
        _event_loop_runner()(
            _serve_until_parent_leaves(spec, emulator, ScaledClock(origin, factor, start_cell), parent)
        )
    except BaseException as exc:  # tell the parent why instead of leaving it to time out
        with contextlib.suppress(OSError):
            parent.send({"error": f"{type(exc).__name__}: {exc}"})
        raise


# The emulated Twitch is not what is measured: it runs on uvloop and httptools where they are installed (the
# local extra has them on Linux and macOS), so it takes less of the CPU it shares with the crawler's process.
def _event_loop_runner() -> Callable[[Coroutine[Any, Any, None]], None]:
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    return uvloop.run


def _http_parser() -> str:
    return "httptools" if importlib.util.find_spec("httptools") is not None else "h11"


async def _serve_until_parent_leaves(
    spec: WorldSpec, emulator: EmulatorConfig, clock: ScaledClock, parent: Connection
) -> None:
    import uvicorn  # CPython only, like the whole benchmark

    wrap = HelixFaultInjector(spec.faults).wrap if spec.faults is not None else None
    app = create_emulator_app(build_world(spec, clock), emulator, wrap=wrap)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(2048)
    host, port = listener.getsockname()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level="warning",
            lifespan="off",
            server_header=False,
            date_header=False,
            access_log=False,
            backlog=2048,
            timeout_keep_alive=3600,
            loop="none",
            http=_http_parser(),
        )
    )
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.01)
    parent.send({"url": f"http://{host}:{port}"})
    # Serve until the parent closes its end of the pipe (or dies, which closes it too).
    with contextlib.suppress(EOFError, OSError):
        await asyncio.get_running_loop().run_in_executor(None, parent.recv)
    server.should_exit = True
    with contextlib.suppress(asyncio.CancelledError):
        await serving
