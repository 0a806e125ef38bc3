"""Serve the scenario's Helix emulator on a free loopback port, for the Node harness.

Usage: python -m tests.workers_harness.emulator (from the repository root). The first stdout line is JSON:
the emulator's base URL and the scenario (tests/workers_harness/scenario.py). It serves until stdin closes,
so it never outlives the harness that started it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys

import uvicorn

from local.emulator import EmulatorConfig
from tests.workers_harness import scenario


async def serve() -> None:
    helix = scenario.world()
    config = EmulatorConfig()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    host, port = listener.getsockname()
    server = uvicorn.Server(
        uvicorn.Config(
            scenario.emulator_app(helix, config),
            log_level="warning",
            lifespan="off",
            server_header=False,
            access_log=False,
        )
    )
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    while not server.started:
        if serving.done():
            serving.result()  # the server failed to start: say why
        await asyncio.sleep(0.01)
    ready = {
        "url": f"http://{host}:{port}",
        "client_id": config.client_id,
        "client_secret": config.client_secret,
        **scenario.describe(helix),
    }
    print(json.dumps(ready), flush=True)
    # Serve until the harness closes our stdin (or dies, which closes it too).
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    server.should_exit = True
    with contextlib.suppress(asyncio.CancelledError):
        await serving


if __name__ == "__main__":
    asyncio.run(serve())
