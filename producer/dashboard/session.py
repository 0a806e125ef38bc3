"""Who is looking at the dashboard: a bearer header or a session cookie, and CSRF-checked forms."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

from starlette.requests import Request

from producer import auth
from producer.api.errors import ApiError
from producer.api.validation import read_body
from producer.throttle import AuthThrottle, check_bearer

if TYPE_CHECKING:
    from producer.context import AppContext

FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FORM_BYTES = 8 * 1024


@dataclass(frozen=True)
class Viewer:
    """An authenticated dashboard user; `session` is set when the cookie (not a bearer header) proved it."""

    context: AppContext
    session: str | None

    @property
    def csrf(self) -> str:
        # A bearer header cannot be sent by another site's form, so bearer callers need no form token.
        return auth.csrf_token(self.context.api_token, self.session) if self.session else ""


async def authenticate(request: Request, context: AppContext, throttle: AuthThrottle) -> Viewer | None:
    """The viewer, or None when neither the bearer token nor a live session cookie is presented."""
    if await check_bearer(request, context, throttle):
        return Viewer(context, None)
    cookie = request.cookies.get(auth.SESSION_COOKIE)
    ports = context.ports
    if cookie and await auth.session_live(ports.db, cookie, context.api_token, ports.clock.now()):
        return Viewer(context, cookie)
    return None


async def read_form(request: Request) -> dict[str, str]:
    """A small url-encoded form (no multipart: nothing here uploads files)."""
    raw = await read_body(request, MAX_FORM_BYTES)
    if not raw:
        return {}
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != FORM_TYPE:
        raise ApiError(415, f"expected a form ({FORM_TYPE}), got {kind[:60] or 'no content type'!r}")
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError(400, f"the form cannot be read: {type(exc).__name__}") from None
    return dict(pairs)


def check_csrf(viewer: Viewer, form: dict[str, str]) -> None:
    session, token = viewer.session, viewer.context.api_token
    if session is not None and not auth.csrf_ok(form.get("csrf"), token, session):
        raise ApiError(403, "the form's CSRF token is missing or stale: reload the page and try again")


def token_matches(given: str, api_token: str) -> bool:
    return bool(given) and hmac.compare_digest(given.strip().encode(), api_token.encode())


def safe_next(target: str | None) -> str:
    """Only a path on this site: never `//elsewhere` or a full URL (an open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    # Browsers drop tabs and newlines from URLs, so "/\t/evil.example" would become "//evil.example".
    if any(c.isspace() or not c.isprintable() for c in target) or urlsplit(target).netloc:
        return "/"
    return target
