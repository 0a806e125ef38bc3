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


async def full_scans(db: SqliteDatabase, seen: dict[str, tuple[Any, ...]]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for sql, params in seen.items():
        plan = await db.all("EXPLAIN QUERY PLAN " + sql, *params)
        scans = [
            r["detail"]
            for r in plan
            if r["detail"].startswith("SCAN") and not r["detail"].startswith(HARMLESS)
        ]
        if scans:
            found[sql[:120]] = scans
    return found


async def test_the_crawl_never_scans_a_table(make_stack: StackFactory) -> None:
    stack = await make_stack(5, add=False)
    recording = RecordingDatabase(stack.db)
    stack.runner.db = recording  # type: ignore[assignment]
    await stack.add_all_streamers()
    await stack.runner.crawl()
    stack.clock.advance(3600)
    await stack.runner.crawl(scheduled_time=stack.clock.now())
    assert len(recording.seen) >= 15
    assert await full_scans(stack.db, recording.seen) == {}
