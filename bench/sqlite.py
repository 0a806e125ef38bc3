"""The benchmark's database: SQLite on one thread of its own, one batch at a time, like a D1 primary."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from local.sqlite_db import SCHEMA, D1Error, check_d1_limits
from shared.ports import BatchShortcuts, Result, Statement


class SerialSqlite(BatchShortcuts):
    """The Database port on an in-memory SQLite that runs each batch whole on its own thread.

    local.sqlite_db hops between the event loop and aiosqlite's thread three times per statement,
    and holds its lock across the hops; at benchmark scale those hops, not SQL, would dominate the
    serialised time. Here a batch costs one hop, and `busy_s` is the time the database spent executing.
    """

    def __init__(self, conn: sqlite3.Connection, executor: ThreadPoolExecutor) -> None:
        self._conn = conn
        self._executor = executor
        self.calls = 0
        self.busy_s = 0.0

    @classmethod
    async def open(cls) -> SerialSqlite:
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bench-d1")

        def connect() -> sqlite3.Connection:
            conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA foreign_keys = ON")
            conn.executescript(SCHEMA.read_text())
            return conn

        conn = await asyncio.get_running_loop().run_in_executor(executor, connect)
        return cls(conn, executor)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._conn.close)
        self._executor.shutdown(wait=True)

    async def batch(self, statements: Sequence[Statement]) -> list[Result]:
        """All statements in one transaction, run on the database's thread; any failure rolls back all."""
        for statement in statements:
            check_d1_limits(statement)
        self.calls += 1
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._run_batch, list(statements))

    def _run_batch(self, statements: list[Statement]) -> list[Result]:
        began = time.perf_counter()
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            results = [self._execute(s) for s in statements]
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK")
            raise D1Error(f"D1_ERROR: {exc}") from exc
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")
            return results
        finally:
            self.busy_s += time.perf_counter() - began

    def _execute(self, statement: Statement) -> Result:
        before = self._conn.total_changes
        cursor = self._conn.execute(statement.sql, statement.params)
        rows = [dict(r) for r in cursor.fetchall()]
        changes = self._conn.total_changes - before
        return Result(rows=rows, changes=changes, last_row_id=cursor.lastrowid, rows_written=changes)
