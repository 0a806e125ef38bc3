"""SQLite (aiosqlite) behind the Database port, behaving like D1's binding: every batch one transaction.

A batch runs in a task of its own, shielded from its caller's cancellation: a caller cancelled between
`BEGIN` and `COMMIT` (Ctrl-C, a progress bar stopping, a crawl cut short) stops waiting, but its batch still
ends in COMMIT or ROLLBACK, so the connection is never left inside a transaction for the next batch. The
statements run on aiosqlite's thread, so a slow query does not stall the event loop (`serve` answers other
requests meanwhile).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

import aiosqlite

from local.schema_upgrade import SCHEMA as SCHEMA  # where the benchmark and tests look for it
from local.schema_upgrade import bring_up_to_date
from shared.errors import DatabaseError
from shared.ports import BatchShortcuts, Result, Statement

# aiosqlite logs every statement with its parameters at DEBUG, the app token included: never let it.
logging.getLogger("aiosqlite").setLevel(logging.INFO)

D1_MAX_PARAMS = 100  # D1 refuses statements with more bound parameters; fail here first
D1_MAX_SQL_BYTES = 100_000
BUSY_TIMEOUT_MS = 5000


class D1Error(DatabaseError):
    """What D1 raises for a failed statement: the batch is rolled back whole."""


class SqliteError(D1Error):
    """The local database refused a statement, or could not be opened; the message names why."""


class SqliteDatabase(BatchShortcuts):
    """One aiosqlite connection; batches run one at a time, each whole or not at all, as on D1."""

    def __init__(self, conn: aiosqlite.Connection, path: str) -> None:
        self._conn = conn
        self._lock = asyncio.Lock()
        self._running: set[asyncio.Future[list[Result] | BaseException]] = set()
        self.path = path
        self.calls = 0  # round trips, for tests and benchmarks

    @classmethod
    async def open(
        cls, path: str | Path = ":memory:", *, apply_schema: bool = True, create: bool = True
    ) -> SqliteDatabase:
        """Open (or, with `create`, create) the database at `path`; a clear SqliteError if it is unusable."""
        name = str(path)
        return cls(await _connect(name, create, apply_schema), name)

    async def close(self) -> None:
        if self._running:  # batches whose callers gave up: let them reach COMMIT or ROLLBACK first
            await asyncio.gather(*self._running, return_exceptions=True)
        await self._conn.close()

    async def batch(self, statements: Sequence[Statement]) -> list[Result]:
        """All statements in one transaction: any failure, a cancellation too, rolls back every one."""
        for statement in statements:
            check_d1_limits(statement)
        task = asyncio.ensure_future(self._run_batch(list(statements)))
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        outcome = await asyncio.shield(task)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def _run_batch(self, statements: list[Statement]) -> list[Result] | BaseException:
        """The batch, or what stopped it (rolled back), for the caller to raise: a KeyboardInterrupt
        escaping a task would stop the event loop instead of reaching the caller's handlers."""
        async with self._lock:
            self.calls += 1
            await self._conn.execute("BEGIN IMMEDIATE")
            try:
                results = [await self._execute(statement) for statement in statements]
                await self._conn.execute("COMMIT")
                return results
            except sqlite3.Error as exc:
                await self._rollback()
                return _refused(exc)
            except BaseException as exc:
                await self._rollback()
                return exc

    async def _rollback(self) -> None:
        # SQLite rolls some failures back by itself (a full disk, an interrupt): only roll back what is open.
        if self._conn.in_transaction:
            await self._conn.execute("ROLLBACK")

    async def _execute(self, statement: Statement) -> Result:
        before = self._conn.total_changes
        async with self._conn.execute(statement.sql, statement.params) as cursor:
            rows = [dict(r) for r in await cursor.fetchall()]
            last_row_id = cursor.lastrowid
        changes = self._conn.total_changes - before
        return Result(rows=rows, changes=changes, last_row_id=last_row_id, rows_written=changes)


def _probe(uri: str, path: str) -> None:
    """Open the file once without aiosqlite: a file that cannot be opened, or is no database, is refused
    here, before aiosqlite starts a thread that would outlive the event loop it reports to."""
    try:
        probe = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
    except sqlite3.Error as exc:
        raise SqliteError(f"cannot open the SQLite database {path}: {_why(exc, path)}") from exc
    try:
        probe.execute("PRAGMA schema_version")
    except sqlite3.Error as exc:
        if "not a database" in str(exc):
            raise SqliteError(f"{path} is not an SQLite database (file is not a database)") from exc
        raise SqliteError(f"cannot use the SQLite database {path}: {_why(exc, path)}") from exc
    finally:
        probe.close()


def _refused(exc: sqlite3.Error) -> SqliteError:
    error = SqliteError(f"SQLite error: {exc}")
    error.__cause__ = exc
    return error


async def _connect(path: str, create: bool, apply_schema: bool) -> aiosqlite.Connection:
    """Open the file and check it really is a usable SQLite database; on failure no thread is left behind."""
    memory = path == ":memory:"
    if not memory and not create and not Path(path).exists():
        raise missing_database(path)
    if not memory and Path(path).is_dir():
        raise SqliteError(f"{path} is a directory, not an SQLite database file")
    uri = f"file:{quote(str(Path(path).resolve()))}?mode={'rwc' if create else 'rw'}" if not memory else path
    if not memory:
        _probe(uri, path)
    connecting = aiosqlite.connect(uri, uri=not memory, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        conn = await connecting
    except sqlite3.Error as exc:
        # aiosqlite stops its thread itself when the connection cannot be made, but that thread still posts
        # the stop's result to this loop: let it, or it raises "Event loop is closed" once asyncio.run ends.
        thread = getattr(connecting, "_thread", None)
        if thread is not None:
            thread.join(timeout=5)
        raise SqliteError(f"cannot open the SQLite database {path}: {_why(exc, path)}") from exc
    try:
        conn.row_factory = aiosqlite.Row
        await conn.execute("PRAGMA foreign_keys = ON")
        await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if not memory:
            await conn.execute("PRAGMA journal_mode = WAL")
        if apply_schema:
            await bring_up_to_date(conn)
    except sqlite3.Error as exc:
        await conn.close()  # its thread is not a daemon: left open, the process could never exit
        if "not a database" in str(exc):
            raise SqliteError(f"{path} is not an SQLite database (file is not a database)") from exc
        raise SqliteError(f"cannot use the SQLite database {path}: {_why(exc, path)}") from exc
    except BaseException:
        await conn.close()
        raise
    return conn


def missing_database(path: str) -> SqliteError:
    return SqliteError(
        f"no database at {path}: check --db (or CLIPCRAWLER_DB); "
        "`clipcrawler demo`, `crawl` or `streamers add` create one"
    )


def _why(exc: sqlite3.Error, path: str) -> str:
    text = str(exc)
    if "readonly" in text or "unable to open" in text:
        parent = Path(path).resolve().parent
        return f"{text} (is {parent} writable? SQLite writes the file and its -wal and -shm files there)"
    return text


def check_d1_limits(statement: Statement) -> None:
    """Refuse what D1 refuses, so a local run fails where production would."""
    if len(statement.params) > D1_MAX_PARAMS:
        raise SqliteError(
            f"too many SQL variables: {len(statement.params)} > {D1_MAX_PARAMS} "
            "(D1's limit, enforced locally)"
        )
    if len(statement.sql.encode()) > D1_MAX_SQL_BYTES:
        raise SqliteError(
            f"statement too long: {len(statement.sql.encode())} bytes > {D1_MAX_SQL_BYTES} "
            "(D1's limit, enforced locally)"
        )
