"""The producer Worker: the hourly cron, and the HTTP app (API, dashboard) through the ASGI bridge."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from workers import WorkerEntrypoint, asgi  # type: ignore[import-not-found]

from producer.app import create_app
from producer.context import AppContext
from producer.core import start_run
from shared.bindings import worker_env
from shared.logs import Redactor, configure


async def context_from_scope(request: Request) -> AppContext:
    """The app's ports, from the env the ASGI bridge puts in the request scope."""
    worker = worker_env(request.scope["env"])
    configure(Redactor.for_settings(worker.settings, worker.api_token))
    return AppContext(
        ports=worker.ports,
        settings=worker.settings,
        api_token=worker.api_token,
        behind_cloudflare=True,
        failure_counter=worker.auth_limiter,
    )


# Built once at import: the runtime snapshots module state at deploy time, and the app holds no bindings.
app = create_app(context_from_scope)


class Default(WorkerEntrypoint):  # type: ignore[misc]
    async def fetch(self, request: Any) -> Any:
        return await asgi.fetch(app, request.js_object, self.env)

    async def scheduled(self, controller: Any, env: Any = None, ctx: Any = None) -> None:
        # The runtime passes (controller, env, ctx) positionally, and None for env and ctx on a class
        # entrypoint: the bindings are on self.env.
        worker = worker_env(self.env)
        configure(Redactor.for_settings(worker.settings, worker.api_token))
        async with worker.http:
            await start_run(worker.ports, worker.settings, scheduled_time=controller.scheduledTime / 1000)
