"""Who may call: the API token as a bearer header, or a dashboard session cookie derived from it."""

from __future__ import annotations

import hashlib
import hmac

from starlette.requests import Request

from producer.api.errors import ApiError

SESSION_COOKIE = "clipcrawler_session"
SESSION_SECONDS = 12 * 3600
TOKEN_HINT = "set CLIPCRAWLER_API_TOKEN (a Worker secret, or the environment of `clipcrawler serve`)"


def require_token(api_token: str) -> None:
    """No token configured means no access at all: the API never runs open."""
    if not api_token:
        raise ApiError(503, f"the API token is not configured: {TOKEN_HINT}")


def bearer_ok(request: Request, api_token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    # compare_digest takes the same time wherever the strings differ.
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), api_token.encode())


def require_bearer(request: Request, api_token: str) -> None:
    require_token(api_token)
    if not bearer_ok(request, api_token):
        raise ApiError(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})


def _sign(api_token: str, purpose: str, value: str) -> str:
    return hmac.new(api_token.encode(), f"clipcrawler-{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def new_session(api_token: str, now: float) -> str:
    """A cookie value that proves the token was known, without containing it: `expiry.hmac`."""
    expires = str(int(now) + SESSION_SECONDS)
    return f"{expires}.{_sign(api_token, 'session', expires)}"


def session_ok(value: str | None, api_token: str, now: float) -> bool:
    if not value or not api_token:
        return False
    expires, _, signature = value.partition(".")
    if not expires.isdigit() or int(expires) <= now:
        return False
    return hmac.compare_digest(signature.encode(), _sign(api_token, "session", expires).encode())


def csrf_token(api_token: str, session: str) -> str:
    """The form token bound to one session: a page from another site cannot know it."""
    return _sign(api_token, "csrf", session)[:32]


def csrf_ok(given: str | None, api_token: str, session: str) -> bool:
    return bool(given) and hmac.compare_digest(str(given).encode(), csrf_token(api_token, session).encode())


def session_cookie_header(request: Request, value: str, max_age: int = SESSION_SECONDS) -> str:
    """The Set-Cookie value: HttpOnly, SameSite=Strict, and Secure whenever the request came over https."""
    secure = "; Secure" if request.url.scheme == "https" else ""
    return f"{SESSION_COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
