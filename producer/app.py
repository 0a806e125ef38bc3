"""The producer's HTTP side (Starlette): the authenticated manual kick and a health check."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from producer.core import ProducerPorts, start_run
from shared.config import Settings
from shared.ports import Clock, Database, QueueSender


@dataclass
class AppContext:
    """What a request needs: the ports, the settings and the API token (a secret)."""

    db: Database
    queue: QueueSender
    clock: Clock
    settings: Settings
    api_token: str
    http: httpx.AsyncClient | None = None

    def __repr__(self) -> str:
        return f"AppContext(settings={self.settings!r})"


# Production builds the context from the Worker's env (request.scope["env"]); local code passes one in.
ContextFactory = Callable[[Request], Awaitable[AppContext]]


def authorised(request: Request, context: AppContext) -> Response | None:
    """None if the bearer token matches; otherwise the response to send instead."""
    if not context.api_token:
        return JSONResponse({"error": "the API token is not configured (CLIPCRAWLER_API_TOKEN)"}, status_code=503)
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    # compare_digest takes the same time wherever the strings differ.
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), context.api_token.encode()):
        return JSONResponse({"error": "missing or wrong bearer token"}, status_code=401,
                            headers={"WWW-Authenticate": "Bearer"})
    return None


def create_app(context_factory: ContextFactory) -> Starlette:
    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def kick(request: Request) -> Response:
        context = await context_factory(request)
        refused = authorised(request, context)
        if refused is not None:
            return refused
        ports = ProducerPorts(context.db, context.queue, context.clock, context.http)
        started = await start_run(ports, context.settings)
        return JSONResponse({"run_id": started.run_id, "jobs": started.jobs, "finished": started.finished},
                            status_code=202)

    return Starlette(routes=[
        Route("/health", health, methods=["GET"]),
        Route("/runs", kick, methods=["POST"]),
    ])
