"""Who may call: the API token as a bearer header, or a dashboard session cookie derived from it."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from starlette.requests import Request

from producer.api.errors import ApiError
from shared.batch import Batch
from shared.errors import ConfigError
from shared.ports import Database, Statement

SESSION_COOKIE = "clipcrawler_session"
SESSION_SECONDS = 12 * 3600
MIN_TOKEN_LENGTH = 16
TOKEN_HINT = "set CLIPCRAWLER_API_TOKEN (a Worker secret, or the environment of `clipcrawler serve`)"


def require_token(api_token: str) -> None:
    """No token configured means no access at all: the API never runs open."""
    if not api_token:
        raise ApiError(503, f"the API token is not configured: {TOKEN_HINT}")


def check_token_strength(api_token: str) -> None:
    """A configured token must be long enough that guessing it, even unthrottled, is hopeless."""
    if api_token and len(api_token) < MIN_TOKEN_LENGTH:
        raise ConfigError(
            f"CLIPCRAWLER_API_TOKEN is {len(api_token)} characters; use at least "
            f"{MIN_TOKEN_LENGTH} (for example `python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))'`)"
        )


def bearer_given(request: Request) -> bool:
    """Whether the request presents a credential in its Authorization header (a try, right or wrong)."""
    return bool(request.headers.get("authorization", "").strip())


def bearer_ok(request: Request, api_token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    # compare_digest takes the same time wherever the strings differ.
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), api_token.encode())


def _sign(api_token: str, purpose: str, value: str) -> str:
    return hmac.new(api_token.encode(), f"clipcrawler-{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def new_session(api_token: str, now: float) -> str:
    """A cookie value that proves the token was known, without containing it: `expiry.id.hmac`.

    The random id makes every login's cookie its own, and lets logout end that one session.
    """
    claims = f"{int(now) + SESSION_SECONDS}.{secrets.token_urlsafe(18)}"
    return f"{claims}.{_sign(api_token, 'session', claims)}"


def session_claims(value: str | None, api_token: str, now: float) -> tuple[int, str] | None:
    """(expiry, session id) of a cookie signed with the token and not yet expired; None otherwise."""
    if not value or not api_token or len(value) > 200:
        return None
    expires, _, rest = value.partition(".")
    session_id, _, signature = rest.partition(".")
    if not expires.isascii() or not expires.isdigit() or len(expires) > 12 or int(expires) <= now:
        return None
    if not session_id or not hmac.compare_digest(
        signature.encode(), _sign(api_token, "session", f"{expires}.{session_id}").encode()
    ):
        return None
    return int(expires), session_id


async def session_live(db: Database, value: str | None, api_token: str, now: float) -> bool:
    """A signed, unexpired cookie whose session was not ended by a logout."""
    claims = session_claims(value, api_token, now)
    if claims is None:
        return False
    return await db.first("SELECT 1 AS ended FROM ended_sessions WHERE id = ?", claims[1]) is None


async def end_session(db: Database, value: str, api_token: str, now: float) -> None:
    """Logout: every copy of this cookie is refused from now on (one D1 write; stale rows pruned)."""
    claims = session_claims(value, api_token, now)
    if claims is None:
        return
    expires, session_id = claims
    await (
        Batch()
        .add(Statement("DELETE FROM ended_sessions WHERE expires_at <= ?1", (int(now),)), "pruned")
        .add(
            Statement(
                "INSERT INTO ended_sessions (id, expires_at) VALUES (?1, ?2) ON CONFLICT (id) DO NOTHING",
                (session_id, expires),
            ),
            "ended",
        )
        .run(db)
    )


def csrf_token(api_token: str, session: str) -> str:
    """The form token bound to one session: a page from another site cannot know it."""
    return _sign(api_token, "csrf", session)[:32]


def csrf_ok(given: str | None, api_token: str, session: str) -> bool:
    return bool(given) and hmac.compare_digest(str(given).encode(), csrf_token(api_token, session).encode())


def session_cookie_header(request: Request, value: str, max_age: int = SESSION_SECONDS) -> str:
    """The Set-Cookie value: HttpOnly, SameSite=Strict, and Secure whenever the request came over https."""
    secure = "; Secure" if request.url.scheme == "https" else ""
    return f"{SESSION_COOKIE}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
