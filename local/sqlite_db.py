"""SQLite behind the Database port, behaving like D1's binding: every batch one transaction.

A batch runs synchronously, `BEGIN` to `COMMIT`, with no await inside it: no task switch, and so no
cancellation, can land between two of its statements, and anything raised within it (a Ctrl-C too) rolls
it back before it propagates. Local statements take microseconds to milliseconds, so holding the event loop
for one costs less than the thread hop per statement it replaces, and keeps seeded simulations replayable.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from shared.ports import BatchShortcuts, Result, Statement

SCHEMA = Path(__file__).resolve().parent.parent / "schema.sql"
D1_MAX_PARAMS = 100  # D1 refuses statements with more bound parameters; fail here first
D1_MAX_SQL_BYTES = 100_000
BUSY_TIMEOUT_MS = 5000


class D1Error(RuntimeError):
    """What D1 raises for a failed statement: the batch is rolled back whole."""


class SqliteError(D1Error):
    """The local database refused a statement, or could not be opened; the message names why."""


class SqliteDatabase(BatchShortcuts):
    """One SQLite connection; each batch runs whole, from BEGIN to COMMIT, with no await in between."""

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        self._conn = conn
        self.path = path
        self.calls = 0  # round trips, for tests and benchmarks

    @classmethod
    async def open(cls, path: str | Path = ":memory:", *, apply_schema: bool = True,
                   create: bool = True) -> SqliteDatabase:
        """Open (or, with `create`, create) the database at `path`; a clear SqliteError if it is unusable."""
        name = str(path)
        return cls(_connect(name, create, apply_schema), name)

    async def close(self) -> None:
        self._conn.close()

    async def batch(self, statements: Sequence[Statement]) -> list[Result]:
        """All statements in one transaction: any failure, KeyboardInterrupt too, rolls back every one."""
        for statement in statements:
            check_d1_limits(statement)
        # The one suspension point comes before BEGIN: a task cancelled here has not started its batch, and
        # once begun a batch runs to COMMIT or ROLLBACK before any other task (or a cancellation) runs.
        await asyncio.sleep(0)
        self.calls += 1
        return self._run_batch(list(statements))

    def _run_batch(self, statements: list[Statement]) -> list[Result]:
        conn = self._conn
        if conn.in_transaction:  # never expected; heal rather than refuse every later batch
            conn.execute("ROLLBACK")
        try:
            conn.execute("BEGIN IMMEDIATE")
            results = [self._execute(statement) for statement in statements]
            conn.execute("COMMIT")
            return results
        except sqlite3.Error as exc:
            self._rollback()
            raise SqliteError(f"SQLite error: {exc}") from exc
        except BaseException:
            self._rollback()
            raise

    def _rollback(self) -> None:
        # SQLite rolls some failures back by itself (a full disk, an interrupt): only roll back what is open.
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    def _execute(self, statement: Statement) -> Result:
        before = self._conn.total_changes
        cursor = self._conn.execute(statement.sql, statement.params)
        try:
            rows = [dict(r) for r in cursor.fetchall()]
        finally:
            cursor.close()
        changes = self._conn.total_changes - before
        return Result(rows=rows, changes=changes, last_row_id=cursor.lastrowid, rows_written=changes)


def _connect(path: str, create: bool, apply_schema: bool) -> sqlite3.Connection:
    """Open the file (on the database thread) and check it really is a usable SQLite database."""
    memory = path == ":memory:"
    if not memory and not create and not Path(path).exists():
        raise missing_database(path)
    if not memory and Path(path).is_dir():
        raise SqliteError(f"{path} is a directory, not an SQLite database file")
    uri = f"file:{quote(str(Path(path).resolve()))}?mode={'rwc' if create else 'rw'}" if not memory else path
    try:
        conn = sqlite3.connect(uri, uri=not memory, isolation_level=None, check_same_thread=False,
                               timeout=BUSY_TIMEOUT_MS / 1000)
    except sqlite3.Error as exc:
        raise SqliteError(f"cannot open the SQLite database {path}: {_why(exc, path)}") from exc
    try:
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if not memory:
            conn.execute("PRAGMA journal_mode = WAL")
        if apply_schema:
            conn.executescript(SCHEMA.read_text())
    except sqlite3.Error as exc:
        conn.close()
        if "not a database" in str(exc):
            raise SqliteError(f"{path} is not an SQLite database (file is not a database)") from exc
        raise SqliteError(f"cannot use the SQLite database {path}: {_why(exc, path)}") from exc
    return conn


def missing_database(path: str) -> SqliteError:
    return SqliteError(f"no database at {path}: check --db (or CLIPCRAWLER_DB); "
                       "`clipcrawler demo`, `crawl` or `streamers add` create one")


def _why(exc: sqlite3.Error, path: str) -> str:
    text = str(exc)
    if "readonly" in text or "unable to open" in text:
        parent = Path(path).resolve().parent
        return f"{text} (is {parent} writable? SQLite writes the file and its -wal and -shm files there)"
    return text


def check_d1_limits(statement: Statement) -> None:
    """Refuse what D1 refuses, so a local run fails where production would."""
    if len(statement.params) > D1_MAX_PARAMS:
        raise SqliteError(f"too many SQL variables: {len(statement.params)} > {D1_MAX_PARAMS} "
                          "(D1's limit, enforced locally)")
    if len(statement.sql.encode()) > D1_MAX_SQL_BYTES:
        raise SqliteError(f"statement too long: {len(statement.sql.encode())} bytes > {D1_MAX_SQL_BYTES} "
                          "(D1's limit, enforced locally)")

