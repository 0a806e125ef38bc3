"""Clips: GET /clips, filtered by streamer, game, creation date, featured and deleted, paged by key."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from producer import queries
from producer.api.errors import invalid
from producer.api.validation import choice_param, int_param, query
from producer.clip_search import (
    DELETED,
    SORTS,
    BadCursor,
    ClipFilter,
    Key,
    clips_page,
    decode_key,
    encode_key,
)
from shared.errors import InvalidInput
from shared.ports import Database, Row
from shared.timefmt import parse_rfc3339, to_rfc3339

if TYPE_CHECKING:
    from producer.context import AppContext

PAGE_DEFAULT = 25
PAGE_MAX = 100
PARAMS = ("streamer", "game", "created_from", "created_to", "featured", "deleted", "sort", "limit", "after")
MAX_TEXT = 100  # a login, id or game name is far shorter; longer input is refused before any query
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
GAME_ID = re.compile(r"\d{1,20}")
DAY = 86_400
EPOCH = 0.0
YEAR_9999 = 253_370_764_800.0  # 9999-01-01T00:00:00Z


@dataclass(frozen=True)
class ClipQuery:
    """A validated request: what to list, how many, and from where."""

    where: ClipFilter
    limit: int
    after: Key | None
    streamer: Row | None  # the streamer the filter named, if any
    game: Row | None  # the game the filter named, if it is known


async def list_clips(request: Request, context: AppContext) -> Response:
    """GET /clips: a page of clips; `next_after` pages on with the same filters."""
    wanted = await read_clip_query(context.ports.db, query(request, PARAMS))
    rows, next_key = await clips_page(context.ports.db, wanted.where, limit=wanted.limit, after=wanted.after)
    return JSONResponse(
        {"clips": [clip_view(r) for r in rows], "next_after": encode_key(next_key) if next_key else None}
    )


async def read_clip_query(db: Database, params: Mapping[str, str]) -> ClipQuery:
    """The filters of GET /clips (and of the dashboard's clip browser), each checked, or a 422 naming it."""
    # A filter given empty is refused (422), not read as "no filter": `?streamer=` is a typo, not a wish.
    streamer = await _streamer(db, params["streamer"]) if "streamer" in params else None
    game_id, game = await _game(db, params["game"]) if "game" in params else (None, None)
    start = when_param(params, "created_from", end_of_day=False)
    end = when_param(params, "created_to", end_of_day=True)
    if start is not None and end is not None and start >= end:
        raise invalid(
            "created_to", f"{params['created_to']!r} is not after created_from {params['created_from']!r}"
        )
    featured = choice_param(params, "featured", ("true", "false"))
    sort = choice_param(params, "sort", SORTS) or "newest"
    limit = int_param(params, "limit", default=PAGE_DEFAULT, low=1, high=PAGE_MAX)
    assert limit is not None
    after = None
    if "after" in params:
        try:
            after = decode_key(params["after"])
        except BadCursor as exc:
            raise invalid("after", str(exc)) from None
        if after.sort != sort:
            raise invalid("after", f"the cursor was made for sort={after.sort}, not sort={sort}")
    where = ClipFilter(
        streamer_id=str(streamer["id"]) if streamer else None,
        game_id=game_id,
        created_from=to_rfc3339(start) if start is not None else None,
        created_to=to_rfc3339(end) if end is not None else None,
        featured=None if featured is None else featured == "true",
        deleted=choice_param(params, "deleted", DELETED) or "exclude",
        sort=sort,
    )
    return ClipQuery(where, limit, after, streamer, game)


async def _streamer(db: Database, value: str) -> Row:
    text = _short(value, "streamer")
    found = await queries.streamer_by_login_or_id(db, text)
    if found is None:
        raise invalid("streamer", f"no streamer has login or id {text!r} (see GET /streamers)")
    return found


async def _game(db: Database, value: str) -> tuple[str, Row | None]:
    """A game id as given (its name may not be fetched yet), or the id of the game with this name."""
    text = _short(value, "game")
    if GAME_ID.fullmatch(text):
        return text, await queries.game(db, text)
    found = await queries.game_by_name(db, text)
    if found is None:
        raise invalid("game", f"no known game is named {text!r}; give its id to filter on it anyway")
    return str(found["id"]), found


def when_param(params: Mapping[str, str], name: str, *, end_of_day: bool) -> float | None:
    """A date (YYYY-MM-DD, UTC: as `created_to`, the whole day is included) or an RFC 3339 timestamp."""
    if name not in params:
        return None
    text = params[name].strip()
    try:
        when = (
            parse_rfc3339(f"{text}T00:00:00Z") + (DAY if end_of_day else 0)
            if DATE.fullmatch(text)
            else parse_rfc3339(text)
        )
    except InvalidInput:
        raise invalid(name, f"is not a date (YYYY-MM-DD) or an RFC 3339 timestamp: {text[:60]!r}") from None
    if not EPOCH <= when < YEAR_9999:
        raise invalid(name, f"{text[:60]!r} is not between 1970 and 9998")
    return when


def _short(value: str, name: str) -> str:
    text = value.strip()
    if not text or len(text) > MAX_TEXT:
        raise invalid(name, f"must be 1 to {MAX_TEXT} characters, got {len(text)}")
    return text


def clip_view(row: Row) -> dict[str, Any]:
    """A clip as the API shows it; `game_name` is null while the game is unknown."""
    view = {
        k: row[k]
        for k in (
            "id",
            "url",
            "embed_url",
            "broadcaster_id",
            "broadcaster_name",
            "creator_id",
            "creator_name",
            "video_id",
            "game_id",
            "game_name",
            "language",
            "title",
            "view_count",
            "created_at",
            "thumbnail_url",
            "duration",
            "vod_offset",
            "deleted_at",
            "first_seen_at",
            "last_seen_at",
        )
    }
    view["is_featured"] = bool(row["is_featured"])
    view["duration"] = float(row["duration"])
    return view
