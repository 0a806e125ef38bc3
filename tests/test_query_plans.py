"""Every statement the crawler runs filters through an index: no full scan of a real table.

D1 bills rows read, and a scan of `clips` per page would cost the whole table every time; the
statements are recorded from a real crawl (two runs, so updates happen too) and explained by SQLite.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from local.sqlite_db import SqliteDatabase
from shared.ports import Result, Row, Statement
from tests.conftest import StackFactory

# Scanning a table-valued function over a bound JSON page, or a one-row constant, reads no table.
HARMLESS = ("SCAN json_each VIRTUAL TABLE", "SCAN j VIRTUAL TABLE", "SCAN CONSTANT ROW")


class RecordingDatabase:
    """Passes every call through and remembers each distinct statement with its first parameters."""

    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db
        self.seen: dict[str, tuple[Any, ...]] = {}

    async def all(self, sql: str, *params: Any) -> list[Row]:
        self.seen.setdefault(sql, params)
        return await self.db.all(sql, *params)

    async def first(self, sql: str, *params: Any) -> Row | None:
        self.seen.setdefault(sql, params)
        return await self.db.first(sql, *params)

    async def run(self, sql: str, *params: Any) -> Result:
        self.seen.setdefault(sql, params)
        return await self.db.run(sql, *params)

    async def batch(self, statements: Sequence[Statement]) -> list[Result]:
        for statement in statements:
            self.seen.setdefault(statement.sql, statement.params)
        return await self.db.batch(statements)


async def plan_of(db: SqliteDatabase, sql: str, params: tuple[Any, ...]) -> list[str]:
    return [r["detail"] for r in await db.all("EXPLAIN QUERY PLAN " + sql, *params)]


async def full_scans(db: SqliteDatabase, seen: dict[str, tuple[Any, ...]]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for sql, params in seen.items():
        plan = await plan_of(db, sql, params)
        scans = [d for d in plan if d.startswith("SCAN") and not d.startswith(HARMLESS)]
        if scans:
            found[sql[:120]] = scans
    return found


def record(stack: Any) -> RecordingDatabase:
    """Record what the producer and the consumers send."""
    recording = RecordingDatabase(stack.db)
    stack.runner.db = recording
    stack.runner.leases.db = recording
    return recording


async def test_the_crawl_never_scans_a_table(make_stack: StackFactory) -> None:
    stack = await make_stack(5, add=False)
    recording = record(stack)
    await stack.add_all_streamers()
    await stack.runner.crawl()
    stack.clock.advance(3600)
    await stack.runner.crawl(scheduled_time=stack.clock.now())
    assert len(recording.seen) >= 30
    assert any(sql.startswith("INSERT INTO clips") for sql in recording.seen)  # the page writes are in
    assert await full_scans(stack.db, recording.seen) == {}


async def test_a_page_unmarks_its_clips_reading_only_the_marked_ones(make_stack: StackFactory) -> None:
    """A page unmarks the clips Twitch shows again (shared/store.py): through the partial index of marked
    clips, not a primary-key lookup of every clip of the page, with or without the planner's statistics."""
    stack = await make_stack(3, add=False)
    recording = record(stack)
    await stack.add_all_streamers()
    await stack.runner.crawl()
    await stack.db.run("UPDATE clips SET deleted_at = last_seen_at WHERE rowid % 10 = 0")
    [(sql, params)] = [(q, p) for q, p in recording.seen.items() if "deleted_at = NULL" in q]
    assert sql.startswith("UPDATE clips")
    for _ in ("bare", "analyzed"):
        plan = await plan_of(stack.db, sql, params)
        assert any(d.startswith("SEARCH clips USING INDEX clips_deleted_broadcaster") for d in plan), plan
        await stack.db.run("ANALYZE")
