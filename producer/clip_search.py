"""Clips by streamer, game, creation time, featured and deleted, newest or most viewed, paged by key.

Every page is one range of one index (see schema.sql): the index is chosen here, named with INDEXED BY,
so the plan does not depend on the statistics a database happens to have. The leading filter picks it
(streamer, else game, else "deleted only", else none); the others are checked on the rows it yields.
Most viewed within a creation range (or a game) that holds few clips walks the creation index and sorts
the range instead: a probe steps over the range's first RANGE_PROBE index entries (no table rows) to decide,
which bounds the rows either way reads to about RANGE_PROBE (walking by views reads about clips x page /
range size, when the other filters keep most of what it walks).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, replace
from typing import Any

from shared.ports import Database, Row

SORTS = ("newest", "views")
DELETED = ("exclude", "include", "only")
MAX_SAFE_INTEGER = 2**53 - 1  # D1 refuses integers a JavaScript number cannot hold exactly
# The largest integer a cursor may carry: Pyodide hands 2**53 - 1 itself to JavaScript as a BigInt (a Number
# only below it), and D1's bind() refuses BigInt (seen in the Workers harness).
MAX_BOUND_INTEGER = 2**53 - 2
MAGNITUDE = "c.view_digits"  # length(view_count), kept by triggers (schema.sql)
RANGE_PROBE = 5_000  # a creation range with fewer clips than this is sorted rather than walked by views
EARLIEST = ""  # before every stored timestamp
LATEST = "9999-12-31T23:59:59Z"  # after every stored timestamp
COLUMNS = (
    "c.id, c.broadcaster_id, c.broadcaster_name, c.creator_id, c.creator_name, c.video_id, "
    "c.game_id, c.language, c.title, c.view_count, c.created_at, c.url, c.embed_url, c.thumbnail_url, "
    "c.duration, c.vod_offset, c.is_featured, c.first_seen_at, c.last_seen_at, c.deleted_at, "
    "g.name AS game_name, g.box_art_url AS game_box_art_url"
)


class BadCursor(ValueError):
    """An `after` value that no page handed out (or one made for the other sort)."""


@dataclass(frozen=True)
class ClipFilter:
    """What to list; times are stored-form RFC 3339, `created_to` exclusive."""

    streamer_id: str | None = None
    game_id: str | None = None
    created_from: str | None = None
    created_to: str | None = None
    featured: bool | None = None
    deleted: str = "exclude"
    sort: str = "newest"
    narrow: bool = False  # the creation range holds fewer than RANGE_PROBE clips (see `planned`)

    def __post_init__(self) -> None:
        if self.sort not in SORTS:
            raise ValueError(f"sort must be one of {SORTS}, got {self.sort!r}")
        if self.deleted not in DELETED:
            raise ValueError(f"deleted must be one of {DELETED}, got {self.deleted!r}")


@dataclass(frozen=True)
class Key:
    """Where a page ended: the last clip's sort value (created_at or view_count) and id."""

    sort: str
    value: str | int
    clip_id: str


def index_for(where: ClipFilter) -> str:
    """The index a page of `where` reads (every one is declared in schema.sql)."""
    by_views = where.sort == "views" and not where.narrow
    if where.deleted == "only":
        # Deleted clips are few: a streamer's or a game's are read from a small partial index, then sorted.
        if where.streamer_id is not None:
            return "clips_deleted_broadcaster"
        if where.game_id is not None:
            return "clips_deleted_game"
        lead = "clips_deleted"
    elif where.streamer_id is not None:
        lead = "clips_broadcaster"
    elif where.game_id is not None:
        # No (game, views) index: it would cost a row written per view-count change. A game with few clips
        # (in the range) is sorted; a big one walks all clips by views, and finds its own often enough;
        # its featured clips, too few for that, have a partial index of their own.
        if where.sort == "views" and where.featured:
            return "clips_featured_game_views"
        return "clips_views_magnitude" if by_views else "clips_game_created"
    else:
        lead = "clips"
    if not by_views:
        return f"{lead}_created"
    # All clips and a streamer's are indexed by the count's number of digits, not the count (see schema.sql).
    return "clips_deleted_views" if lead == "clips_deleted" else f"{lead}_views_magnitude"


def magnitude(view_count: int) -> int:
    """The number of decimal digits of a view count: SQLite's length(view_count), which the indexes hold."""
    return len(str(view_count))


def probe_sql(where: ClipFilter) -> tuple[str, list[Any]] | None:
    """Whether the creation range holds RANGE_PROBE clips, asked when the index choice depends on it."""
    ranged = where.created_from is not None or where.created_to is not None
    by_game = (
        where.game_id is not None
        and where.streamer_id is None
        and where.deleted != "only"
        and not where.featured
    )
    created = index_for(replace(where, narrow=True))
    if where.sort != "views" or not (ranged or by_game) or created == index_for(replace(where, narrow=False)):
        return None
    conditions = ["c.created_at >= ?", "c.created_at < ?"]
    params: list[Any] = [where.created_from or EARLIEST, where.created_to or LATEST]
    if where.streamer_id is not None:
        conditions.append("c.broadcaster_id = ?")
        params.append(where.streamer_id)
    elif where.game_id is not None:
        conditions.append("c.game_id = ?")
        params.append(where.game_id)
    if where.deleted == "only":
        conditions.append("c.deleted_at IS NOT NULL")  # what lets SQLite use the partial index
    # Whether a RANGE_PROBE-th entry exists: the skipped ones are index entries only, never table rows.
    return (
        f"SELECT 1 AS hit FROM clips AS c INDEXED BY {created} WHERE {' AND '.join(conditions)} "
        "LIMIT 1 OFFSET ?",
        [*params, RANGE_PROBE - 1],
    )


async def planned(db: Database, where: ClipFilter) -> ClipFilter:
    """`where` with `narrow` decided by the probe (one small index-only read), when it matters."""
    probe = probe_sql(where)
    if probe is None:
        return where
    sql, params = probe
    return replace(where, narrow=await db.first(sql, *params) is None)


def page_sql(where: ClipFilter, after: Key | None, limit: int) -> tuple[str, list[Any]]:
    """The statement and parameters for one page of at most `limit` clips after `after`."""
    upper = where.created_to or LATEST
    resume_at = after is not None and where.sort == "newest" and str(after.value) < upper
    # One upper bound on created_at, so that SQLite ranges over it: the cursor's when it is the tighter.
    conditions = ["c.created_at >= ?", "c.created_at <= ?" if resume_at else "c.created_at < ?"]
    params: list[Any] = [where.created_from or EARLIEST, after.value if resume_at and after else upper]
    if where.streamer_id is not None:
        conditions.append("c.broadcaster_id = ?")
        params.append(where.streamer_id)
    if where.game_id is not None:
        conditions.append("c.game_id = ?")
        params.append(where.game_id)
    if where.featured is not None:
        # A literal, not a parameter: only a literal lets SQLite use the partial index of featured clips.
        conditions.append(f"c.is_featured = {1 if where.featured else 0}")
    if where.deleted == "exclude":
        conditions.append("c.deleted_at IS NULL")
    elif where.deleted == "only":
        conditions.append("c.deleted_at IS NOT NULL")
    index = index_for(where)
    by_magnitude = index.endswith("_magnitude")
    # The same order either way (a count with more digits is larger); the magnitude indexes need it spelt so:
    # SQLite walks them a magnitude at a time and sorts only within one.
    order = (
        "c.created_at DESC, c.id DESC"
        if where.sort == "newest"
        else f"{MAGNITUDE} DESC, c.view_count DESC, c.id DESC"
        if by_magnitude
        else "c.view_count DESC, c.id DESC"
    )
    if after is not None and where.sort == "views" and by_magnitude:
        # The range on the index's magnitude, and the exact position within it checked on the rows.
        views = int(after.value)
        conditions += [f"{MAGNITUDE} <= ?", f"({MAGNITUDE}, c.view_count, c.id) < (?, ?, ?)"]
        params += [magnitude(views), magnitude(views), views, after.clip_id]
    elif after is not None and where.sort == "views":
        conditions.append("(c.view_count, c.id) < (?, ?)")  # one range of the (..., view_count, id) indexes
        params += [after.value, after.clip_id]
    elif resume_at and after is not None:
        # The creation indexes hold created_at but not id: the range is on created_at, ties checked after.
        conditions.append("(c.created_at < ? OR c.id < ?)")
        params += [after.value, after.clip_id]
    elif where.sort == "views":
        # A range from the first page on: a search, never a scan.
        conditions.append(f"{MAGNITUDE} >= ?" if by_magnitude else "c.view_count >= ?")
        params.append(1 if by_magnitude else 0)
    sql = (
        f"SELECT {COLUMNS} FROM clips AS c INDEXED BY {index} "
        "LEFT JOIN games AS g ON g.id = c.game_id "
        f"WHERE {' AND '.join(conditions)} ORDER BY {order} LIMIT ?"
    )
    return sql, [*params, limit]


async def clips_page(
    db: Database, where: ClipFilter, *, limit: int, after: Key | None = None
) -> tuple[list[Row], Key | None]:
    """Up to `limit` clips, and the key of the next page (None when this is the last one)."""
    if after is not None and after.sort != where.sort:
        raise BadCursor(f"the cursor was made for sort={after.sort}, not sort={where.sort}")
    sql, params = page_sql(await planned(db, where), after, limit + 1)  # one more: is there another page?
    rows = await db.all(sql, *params)
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    value = last["created_at"] if where.sort == "newest" else int(last["view_count"])
    return rows[:limit], Key(where.sort, value, str(last["id"]))


def encode_key(key: Key) -> str:
    raw = json.dumps([key.sort, key.value, key.clip_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_key(cursor: str) -> Key:
    """The key an `after` cursor carries; BadCursor unless it is one this module made."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        sort, value, clip_id = json.loads(raw)
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError):
        raise BadCursor(f"is not a cursor from next_after: {cursor[:60]!r}") from None
    valid_value = (
        isinstance(value, str) and len(value) <= 40
        if sort == "newest"
        else isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_BOUND_INTEGER
    )
    if sort not in SORTS or not valid_value or not isinstance(clip_id, str) or not 0 < len(clip_id) <= 200:
        raise BadCursor(f"is not a cursor from next_after: {cursor[:60]!r}")
    return Key(sort, value, clip_id)
