"""SQLite (aiosqlite) behind the Database port, behaving like D1's binding."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import aiosqlite

from shared.ports import BatchShortcuts, Result, Statement

# aiosqlite logs every statement with its parameters at DEBUG, the app token included: never let it.
logging.getLogger("aiosqlite").setLevel(logging.INFO)

SCHEMA = Path(__file__).resolve().parent.parent / "schema.sql"
D1_MAX_PARAMS = 100  # D1 refuses statements with more bound parameters; fail here first
D1_MAX_SQL_BYTES = 100_000


class D1Error(RuntimeError):
    """What D1 raises for a failed statement: the batch is rolled back whole."""


class SqliteDatabase(BatchShortcuts):
    """One aiosqlite connection; statements run one at a time, as on a D1 database."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()
        self.calls = 0  # round trips, for tests and benchmarks

    @classmethod
    async def open(cls, path: str | Path = ":memory:", *, apply_schema: bool = True) -> SqliteDatabase:
        conn = await aiosqlite.connect(str(path), isolation_level=None)
        conn.row_factory = aiosqlite.Row
        await conn.execute("PRAGMA foreign_keys = ON")
        await conn.execute("PRAGMA busy_timeout = 5000")
        if str(path) != ":memory:":
            await conn.execute("PRAGMA journal_mode = WAL")
        db = cls(conn)
        if apply_schema:
            await conn.executescript(SCHEMA.read_text())
        return db

    async def close(self) -> None:
        await self._conn.close()

    async def batch(self, statements: Sequence[Statement]) -> list[Result]:
        """All statements in one transaction: any failure rolls back every one of them."""
        for statement in statements:
            check_d1_limits(statement)
        async with self._lock:
            self.calls += 1
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                results = [await self._execute(s) for s in statements]
            except sqlite3.Error as exc:
                await self._conn.execute("ROLLBACK")
                raise D1Error(f"D1_ERROR: {exc}") from exc
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
            await self._conn.execute("COMMIT")
            return results

    async def _execute(self, statement: Statement) -> Result:
        before = self._conn.total_changes
        cursor = await self._conn.execute(statement.sql, statement.params)
        rows = [dict(r) for r in await cursor.fetchall()]
        changes = self._conn.total_changes - before
        last_row_id = cursor.lastrowid
        await cursor.close()
        return Result(rows=rows, changes=changes, last_row_id=last_row_id, rows_written=changes)


def check_d1_limits(statement: Statement) -> None:
    """Refuse what D1 refuses, so a local run fails where production would."""
    if len(statement.params) > D1_MAX_PARAMS:
        raise D1Error(f"D1_ERROR: too many SQL variables: {len(statement.params)} > {D1_MAX_PARAMS}")
    if len(statement.sql.encode()) > D1_MAX_SQL_BYTES:
        raise D1Error(f"D1_ERROR: statement too long: {len(statement.sql.encode())} bytes")
