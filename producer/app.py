"""The producer's HTTP side (Starlette): the JSON API, the dashboard, a health check, the API description."""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from producer import dashboard
from producer.api import clips, openapi, runs, streamers
from producer.api.errors import ApiError, to_response
from producer.auth import check_token_strength
from producer.context import AppContext, ContextFactory, Handler
from producer.throttle import AuthThrottle, check_bearer
from shared.errors import ConfigError, DatabaseError
from shared.logs import EventLog, Redactor, log_bug


def api_route(
    path: str, handlers: dict[str, Handler], context_factory: ContextFactory, throttle: AuthThrottle
) -> Route:
    """JSON endpoints behind the bearer token, one per method, on one path (so 405 lists them all)."""

    async def endpoint(request: Request) -> Response:
        context = await context_factory(request)
        if not await check_bearer(request, context, throttle):
            raise ApiError(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})
        return await handlers["GET" if request.method == "HEAD" else request.method](request, context)

    return Route(path, endpoint, methods=list(handlers))


def _configured(context_factory: ContextFactory) -> ContextFactory:
    """The factory, with a configuration error answered as 503 rather than a crash."""

    async def factory(request: Request) -> AppContext:
        try:
            context = await context_factory(request)
            check_token_strength(context.api_token)
        except ConfigError as exc:
            raise ApiError(503, f"the producer is misconfigured: {exc}") from None
        return context

    return factory


def create_app(context_factory: ContextFactory, *, throttle: AuthThrottle | None = None) -> Starlette:
    """The app; `throttle` keeps failed-credential counts for its life (one per app, not per request)."""
    context_factory = _configured(context_factory)
    throttle = throttle or AuthThrottle()

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def spec(request: Request) -> Response:
        return JSONResponse(openapi.SPEC)

    routes: list[BaseRoute] = [
        Route("/health", health, methods=["GET"]),
        Route("/openapi.json", spec, methods=["GET"]),
        api_route("/runs", {"GET": runs.list_runs, "POST": runs.kick}, context_factory, throttle),
        api_route("/runs/{run_id}", {"GET": runs.show_run}, context_factory, throttle),
        api_route("/runs/{run_id}/jobs", {"GET": runs.list_jobs}, context_factory, throttle),
        api_route("/runs/{run_id}/retry-failed", {"POST": runs.retry}, context_factory, throttle),
        api_route(
            "/streamers", {"GET": streamers.list_streamers, "POST": streamers.add}, context_factory, throttle
        ),
        api_route("/streamers/{streamer_id}", {"DELETE": streamers.deactivate}, context_factory, throttle),
        api_route("/clips", {"GET": clips.list_clips}, context_factory, throttle),
        *dashboard.routes(context_factory, throttle),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            DatabaseError: _database_error,
            Exception: _server_error,
        },
    )


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    if dashboard.is_page(request):
        return await dashboard.error_page(request, exc)
    return to_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    path = request.url.path[:200]
    messages = {404: f"no route for {path}", 405: f"{request.method} is not allowed on {path}"}
    message = messages.get(exc.status_code, exc.detail)
    return await _api_error(request, ApiError(exc.status_code, message, headers=dict(exc.headers or {})))


async def _database_error(request: Request, exc: Exception) -> Response:
    # The exception text can quote anything (SQL, a URL); only its type leaves the process unmasked.
    EventLog(Redactor()).emit(
        "request_failed",
        level=logging.ERROR,
        method=request.method,
        path=request.url.path,
        error=type(exc).__name__,
    )
    return await _internal_error(request, exc)


async def _server_error(request: Request, exc: Exception) -> Response:
    log_bug("producer.request", exc, method=request.method, path=request.url.path)
    return await _internal_error(request, exc)


async def _internal_error(request: Request, exc: Exception) -> Response:
    failure = ApiError(500, f"internal error ({type(exc).__name__}); see the Worker's logs")
    if dashboard.is_page(request):
        return await dashboard.error_page(request, failure)
    return to_response(failure)


class SecurityHeaders:
    """Headers every answer carries: nothing cached, nothing sniffed, no referrer, no framing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                for name, value in _SECURITY_HEADERS:
                    if name not in present:
                        headers.append((name, value))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


_SECURITY_HEADERS = [
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
