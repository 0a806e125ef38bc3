"""The dashboard: server-rendered HTML from the producer's app, usable with JavaScript off."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from producer import auth
from producer.api.errors import ApiError
from producer.dashboard import clips, pages, streamer
from producer.dashboard.html import esc, page, url
from producer.dashboard.session import Viewer, authenticate, safe_next
from producer.throttle import AuthThrottle

if TYPE_CHECKING:
    from producer.context import AppContext, ContextFactory

Page = Callable[[Request, Viewer], Awaitable[Response]]


def is_page(request: Request) -> bool:
    """Whether errors on this path are answered as HTML (the dashboard) rather than JSON (the API)."""
    path = request.url.path
    return path == "/" or path.startswith("/ui/")


async def error_page(request: Request, exc: ApiError) -> Response:
    back = '<p><a href="/">Back to the overview</a></p>'
    body = f'<h1>{esc(exc.status)}</h1><p class="notice bad">{esc(exc.message)}</p>{back}'
    return page(f"Error {exc.status}", body, status=exc.status, headers=exc.headers)


def routes(context_factory: ContextFactory, throttle: AuthThrottle) -> list[Route]:
    def viewed(handler: Page, *, form: bool = False) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            context = await context_factory(request)
            viewer = await authenticate(request, context, throttle)
            if viewer is None:
                if form:  # a form posted without a session: log in first, then come back to the page
                    return RedirectResponse("/ui/login", status_code=303)
                wanted = safe_next(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
                return RedirectResponse(url("/ui/login", next=wanted), status_code=303)
            return await handler(request, viewer)

        return endpoint

    async def login(request: Request) -> Response:
        context: AppContext = await context_factory(request)
        if request.method == "POST":
            return await pages.login(request, context, throttle)
        auth.require_token(context.api_token)
        return pages.login_form(safe_next(request.query_params.get("next")))

    return [
        Route("/", viewed(pages.overview), methods=["GET"]),
        Route("/ui/login", login, methods=["GET", "POST"]),
        Route("/ui/logout", viewed(pages.logout, form=True), methods=["POST"]),
        Route("/ui/runs", viewed(pages.runs_list), methods=["GET"]),
        Route("/ui/runs/{run_id}", viewed(pages.run_page), methods=["GET"]),
        Route("/ui/runs/{run_id}/retry-failed", viewed(pages.retry, form=True), methods=["POST"]),
        Route("/ui/kick", viewed(pages.kick, form=True), methods=["POST"]),
        Route("/ui/streamers", viewed(pages.streamers_list), methods=["GET"]),
        Route("/ui/streamers/{streamer_id}", viewed(streamer.streamer_page), methods=["GET"]),
        Route("/ui/clips", viewed(clips.browser), methods=["GET"]),
    ]
