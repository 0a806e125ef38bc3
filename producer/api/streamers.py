"""Streamers: list them, add them by login (resolved through Get Users), deactivate one."""

from __future__ import annotations

import base64
import binascii
import math
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from producer import queries
from producer.api.errors import ApiError, invalid
from producer.api.validation import choice_param, int_param, json_object, query, string_list
from producer.streamers import add_streamers
from shared.errors import ConfigError, HelixError, InvalidInput, RateLimited
from shared.helix import check_logins
from shared.ports import Row

if TYPE_CHECKING:
    from producer.context import AppContext

MAX_LOGINS = 1000
PAGE_DEFAULT = 100
PAGE_MAX = 500
RATE_LIMIT_DEFAULT_WAIT = 60  # seconds: Twitch's bucket refills within a minute


async def list_streamers(request: Request, context: AppContext) -> Response:
    """GET /streamers?active=&limit=&after=: by login; `next_after` is an opaque cursor."""
    params = query(request, ("active", "limit", "after"))
    wanted = choice_param(params, "active", ("true", "false", "all")) or "all"
    active = {"true": True, "false": False, "all": None}[wanted]
    limit = int_param(params, "limit", default=PAGE_DEFAULT, low=1, high=PAGE_MAX)
    assert limit is not None
    after = decode_cursor(params["after"]) if "after" in params else None
    rows = await queries.streamers_page(context.ports.db, limit=limit, after=after, active=active)
    return JSONResponse(
        {
            "streamers": [streamer_view(r) for r in rows],
            "next_after": encode_cursor(rows[-1]) if len(rows) == limit else None,
        }
    )


async def add(request: Request, context: AppContext) -> Response:
    """POST /streamers {"logins": [...]}: resolve through Get Users, store those found, report the rest."""
    body = await json_object(request, ("logins",), required=True)
    if "logins" not in body:
        raise invalid("logins", "is required")
    logins = string_list(body["logins"], "logins", max_items=MAX_LOGINS, check=_login)
    ports = context.ports
    if ports.http is None:
        raise ApiError(503, "no HTTP client is configured to reach Twitch")
    try:
        result = await add_streamers(ports.db, ports.http, context.settings, ports.clock, logins)
    except ConfigError as exc:
        raise ApiError(503, str(exc)) from None
    except RateLimited as exc:
        wait = retry_after(exc.reset_at, context.ports.clock.now())
        raise ApiError(
            503,
            f"Twitch is rate limiting this app; try again in {wait} s",
            headers={"Retry-After": str(wait)},
            code="upstream_rate_limited",
        ) from None
    except HelixError as exc:
        raise ApiError(502, f"Twitch did not resolve the logins: {exc}") from None
    return JSONResponse({"added": result.added, "unknown": result.unknown})


async def deactivate(request: Request, context: AppContext) -> Response:
    """DELETE /streamers/{streamer_id}: stop crawling it; its clips and history stay."""
    query(request, ())
    streamer_id = str(request.path_params["streamer_id"])
    if not await queries.deactivate_streamer(context.ports.db, streamer_id):
        raise ApiError(404, f"no streamer has id {streamer_id[:60]!r}")
    row = await queries.streamer(context.ports.db, streamer_id)
    assert row is not None
    return JSONResponse(streamer_view(row))


def retry_after(reset_at: float | None, now: float) -> int:
    """Whole seconds until Twitch's bucket refills (a minute when it did not say), at least 1."""
    if reset_at is None:
        return RATE_LIMIT_DEFAULT_WAIT
    return max(1, min(math.ceil(reset_at - now), RATE_LIMIT_DEFAULT_WAIT * 60))


def _login(item: str, where: str) -> str:
    try:
        return check_logins([item])[0]
    except InvalidInput as exc:
        raise invalid(where, str(exc)) from None


def streamer_view(row: Row) -> dict[str, Any]:
    return {
        **{
            k: row[k]
            for k in (
                "id",
                "login",
                "display_name",
                "crawled_through",
                "last_success_at",
                "last_failure_at",
                "failure_streak",
                "last_error",
                "added_at",
            )
        },
        "active": bool(row["active"]),
    }


def encode_cursor(row: Row) -> str:
    raw = f"{row['login']}\n{row['id']}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid("after", f"is not a cursor from next_after: {cursor[:60]!r}") from None
    login, sep, streamer_id = raw.partition("\n")
    if not sep or not streamer_id:
        raise invalid("after", f"is not a cursor from next_after: {cursor[:60]!r}")
    return login, streamer_id
