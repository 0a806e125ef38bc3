"""The producer Worker: the hourly cron, and the HTTP app (API, dashboard) through the ASGI bridge."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from workers import WorkerEntrypoint, asgi  # type: ignore[import-not-found]

from producer.app import AppContext, create_app
from producer.core import ProducerPorts, start_run
from shared.bindings import worker_ports
from shared.logs import Redactor, configure


async def context_from_scope(request: Request) -> AppContext:
    """The app's ports, from the env the ASGI bridge puts in the request scope."""
    ports = worker_ports(request.scope["env"])
    configure(Redactor.for_settings(ports.settings, ports.api_token))
    return AppContext(ports.db, ports.queue, ports.clock, ports.settings, ports.api_token, ports.http,
                      behind_cloudflare=True, failure_counter=ports.auth_limiter)


# Built once at import: the runtime snapshots module state at deploy time, and the app holds no bindings.
app = create_app(context_from_scope)


class Default(WorkerEntrypoint):  # type: ignore[misc]
    async def fetch(self, request: Any) -> Any:
        return await asgi.fetch(app, request.js_object, self.env)

    async def scheduled(self, controller: Any, env: Any = None, ctx: Any = None) -> None:
        # The runtime passes (controller, env, ctx) positionally, and None for env and ctx on a class
        # entrypoint: the bindings are on self.env.
        ports = worker_ports(self.env)
        configure(Redactor.for_settings(ports.settings, ports.api_token))
        async with ports.http:
            await start_run(ProducerPorts(ports.db, ports.queue, ports.clock, ports.http), ports.settings,
                            scheduled_time=controller.scheduledTime / 1000)
