"""Hottest clips: views gained in the last 24 h, from daily view marks, and what the marks cost."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from local.sqlite_db import SqliteDatabase
from producer.hot import hot_clips, mark_views, tracked_since
from shared.config import Settings
from shared.timefmt import to_rfc3339
from tests.conftest import StackFactory

T = 1_790_000_000.0
H = 3600
SETTINGS = Settings()  # lookback 24 h: clips younger than 48 h are tracked


@pytest.fixture
async def db() -> AsyncIterator[SqliteDatabase]:
    database = await SqliteDatabase.open()
    yield database
    await database.close()


async def add_clip(db: SqliteDatabase, clip_id: str, *, created: float, seen: float, views: int) -> None:
    await db.run(
        "INSERT INTO clips (id, broadcaster_id, broadcaster_name, creator_id, creator_name, game_id, "
        "language, title, view_count, created_at, url, embed_url, thumbnail_url, duration, first_seen_at, "
        "last_seen_at) "
        "VALUES (?, 'b', 'B', 'c', 'C', 'g', 'en', ?, ?, ?, 'u', 'e', 't', 30, ?, ?)",
        clip_id,
        f"title {clip_id}",
        views,
        to_rfc3339(created),
        to_rfc3339(created),
        to_rfc3339(seen),
    )


async def mark(
    db: SqliteDatabase, clip_id: str, at: float, views: int, prev: tuple[float, int] | None = None
) -> None:
    await db.run(
        "INSERT INTO clip_views (clip_id, marked_at, views, prev_marked_at, prev_views) "
        "VALUES (?, ?, ?, ?, ?)",
        clip_id,
        to_rfc3339(at),
        views,
        to_rfc3339(prev[0]) if prev else None,
        prev[1] if prev else None,
    )


async def hot(db: SqliteDatabase, now: float = T, limit: int = 10) -> dict[str, int]:
    rows = (await db.batch([hot_clips(now, SETTINGS, limit)]))[0].rows
    return {r["id"]: r["views_gained"] for r in rows}


async def test_gains_are_interpolated_from_the_marks_around_24_hours_ago(db: SqliteDatabase) -> None:
    # Young: every view it has was gained in the last day.
    await add_clip(db, "young", created=T - 2 * H, seen=T - H, views=500)
    # Marks at T-40h (100) and T-16h (340): 24 h ago it had 100 + 240 * 16/24 = 260.
    await add_clip(db, "between", created=T - 48 * H + 60, seen=T - H, views=490)
    await mark(db, "between", T - 16 * H, 340, prev=(T - 40 * H, 100))
    # One mark after t0 only: 0 views at creation (T-30h) to 200 at T-20h gives 120 at t0.
    await add_clip(db, "one_mark", created=T - 30 * H, seen=T - H, views=300)
    await mark(db, "one_mark", T - 20 * H, 200)
    # The newest mark is older than t0: 50 at T-25h to 530 at T-1h gives 70 at t0.
    await add_clip(db, "old_mark", created=T - 40 * H, seen=T - H, views=530)
    await mark(db, "old_mark", T - 25 * H, 50)
    # No marks yet: linear from creation, 280 * 6/28 = 60 at t0.
    await add_clip(db, "unmarked", created=T - 30 * H, seen=T - 2 * H, views=280)
    # Unchanged since before t0: nothing gained that the crawler saw.
    await add_clip(db, "stale", created=T - 40 * H, seen=T - 26 * H, views=1000)
    # Too old to be re-crawled at all: not considered.
    await add_clip(db, "ancient", created=tracked_since(T, SETTINGS) - H, seen=T - H, views=10**6)
    assert await hot(db) == {
        "young": 500,
        "old_mark": 460,
        "between": 230,
        "unmarked": 220,
        "one_mark": 180,
        "stale": 0,
    }
    assert list(await hot(db, limit=2)) == ["young", "old_mark"]


async def test_marks_are_rewritten_at_most_once_a_day_keeping_the_one_before(db: SqliteDatabase) -> None:
    await add_clip(db, "c", created=T - H, seen=T, views=10)
    await mark_views(T, SETTINGS).run(db)
    first = await db.first("SELECT * FROM clip_views WHERE clip_id = 'c'")
    assert first == {
        "clip_id": "c",
        "marked_at": to_rfc3339(T),
        "views": 10,
        "prev_marked_at": None,
        "prev_views": None,
    }
    await db.run("UPDATE clips SET view_count = 40, last_seen_at = ? WHERE id = 'c'", to_rfc3339(T + 5 * H))
    await mark_views(T + 6 * H, SETTINGS).run(db)
    assert await db.first("SELECT * FROM clip_views WHERE clip_id = 'c'") == first  # not a day old yet
    await db.run("UPDATE clips SET view_count = 90, last_seen_at = ? WHERE id = 'c'", to_rfc3339(T + 24 * H))
    await mark_views(T + 24 * H, SETTINGS).run(db)
    assert await db.first("SELECT * FROM clip_views WHERE clip_id = 'c'") == {
        "clip_id": "c",
        "marked_at": to_rfc3339(T + 24 * H),
        "views": 90,
        "prev_marked_at": to_rfc3339(T),
        "prev_views": 10,
    }
    await mark_views(T + 24 * H + 49 * H, SETTINGS).run(db)  # long past the tracked range: forgotten
    assert await db.first("SELECT count(*) AS n FROM clip_views") == {"n": 0}


async def test_hourly_marking_writes_about_one_row_per_clip_per_day(db: SqliteDatabase) -> None:
    clips = 200
    for i in range(clips):  # a steady stream: one clip every 12 minutes over the last 40 hours
        created = T - 40 * H + i * 12 * 60
        await add_clip(db, f"c{i:03d}", created=created, seen=created, views=i)
    written = 0
    for hour in range(48):
        now = T + hour * H
        await db.run(
            "UPDATE clips SET view_count = view_count + 1, last_seen_at = ? WHERE created_at >= ?",
            to_rfc3339(now),
            to_rfc3339(now - 24 * H),
        )  # what hourly crawls of the lookback do
        results = await mark_views(now, SETTINGS).run(db)
        written += results.changes("marked") + results.changes("forgotten")
    # Each clip is marked when first seen and again about a day later, then forgotten: about 3 writes.
    assert written <= clips * 3, written


async def test_the_producers_ticks_mark_views_and_the_estimate_holds(make_stack: StackFactory) -> None:
    stack = await make_stack(3)
    for _ in range(30):  # hourly cron ticks over 30 hours
        await stack.runner.crawl(scheduled_time=stack.clock.now())
        stack.clock.advance(H)
    now = stack.clock.now()
    marks = await stack.db.first("SELECT count(*) AS n, count(prev_views) AS prev FROM clip_views")
    # A mark outlives its clip's tracking only while the mark itself is recent (as of the last tick).
    tracked = await stack.db.first(
        "SELECT count(*) AS n FROM clips WHERE last_seen_at >= ?",
        to_rfc3339(tracked_since(now - H, stack.settings)),
    )
    assert 0 < marks["n"] <= tracked["n"] and marks["prev"] > 0
    rows = (await stack.db.batch([hot_clips(now, stack.settings, 1000)]))[0].rows
    gains = [r["views_gained"] for r in rows]
    assert gains == sorted(gains, reverse=True)
    assert all(0 <= r["views_gained"] <= r["view_count"] for r in rows)
    young = {
        r["id"]: r
        for r in await stack.db.all(
            "SELECT id, view_count FROM clips WHERE created_at >= ?", to_rfc3339(now - 24 * H)
        )
    }
    for r in rows:  # a clip younger than a day gained every view it has
        if r["id"] in young:
            assert r["views_gained"] == young[r["id"]]["view_count"]
