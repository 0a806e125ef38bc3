"""SQLite behind the Database port, behaving like D1's binding: every batch one transaction.

The connection lives on one worker thread and each batch runs there whole, from `BEGIN` to `COMMIT`, as
one job. So no cancellation or Ctrl-C in the event loop can land between two of its statements: a
cancelled batch is rolled back on that thread (at the next statement boundary, or at once through
`sqlite3_interrupt`), and the connection is left ready for the next one.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
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


class _BatchCancelled(BaseException):
    """Raised on the database thread to roll back a batch whose caller was cancelled."""


class _Ticket:
    """One batch's cancellation flag, shared between the event loop and the database thread."""

    def __init__(self) -> None:
        self.cancelled = False


class SqliteDatabase(BatchShortcuts):
    """One SQLite connection on one thread; batches run one at a time, as on a D1 database."""

    def __init__(self, conn: sqlite3.Connection, executor: ThreadPoolExecutor, path: str) -> None:
        self._conn = conn
        self._executor = executor
        self._guard = threading.Lock()  # who is running now, so an interrupt only ever hits its own batch
        self._running: _Ticket | None = None
        self.path = path
        self.calls = 0  # round trips, for tests and benchmarks

    @classmethod
    async def open(cls, path: str | Path = ":memory:", *, apply_schema: bool = True,
                   create: bool = True) -> SqliteDatabase:
        """Open (with `create`, or create) the database at `path`; a clear SqliteError if it cannot be used."""
        name = str(path)
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        loop = asyncio.get_running_loop()
        try:
            conn = await loop.run_in_executor(executor, _connect, name, create, apply_schema)
        except BaseException:
            executor.shutdown(wait=False, cancel_futures=True)
            raise
        return cls(conn, executor, name)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, self._conn.close)
        finally:
            self._executor.shutdown(wait=True)

    async def batch(self, statements: Sequence[Statement]) -> list[Result]:
        """All statements in one transaction: any failure, or a cancellation, rolls back every one of them."""
        for statement in statements:
            check_d1_limits(statement)
        self.calls += 1
        ticket = _Ticket()
        future = asyncio.get_running_loop().run_in_executor(self._executor, self._run_batch, list(statements),
                                                            ticket)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            self._cancel(ticket)
            # Hand control back only once the thread is done with this batch (rolled back, or committed
            # if it was past the point of no return), so the caller's next step sees a settled database.
            try:
                await asyncio.wait([future])
            finally:
                if future.done() and not future.cancelled():
                    future.exception()  # retrieved: a rollback is the expected end here
            raise

    def _cancel(self, ticket: _Ticket) -> None:
        with self._guard:
            ticket.cancelled = True
            if self._running is ticket:
                self._conn.interrupt()

    def _run_batch(self, statements: list[Statement], ticket: _Ticket) -> list[Result]:
        """On the database thread: BEGIN, every statement, COMMIT; ROLLBACK on anything else."""
        conn = self._conn
        if conn.in_transaction:  # never expected; heal rather than refuse every later batch
            conn.execute("ROLLBACK")
        with self._guard:
            if ticket.cancelled:
                raise _BatchCancelled()
            self._running = ticket
        try:
            conn.execute("BEGIN IMMEDIATE")
            results = []
            for statement in statements:
                results.append(self._execute(statement))
                if ticket.cancelled:
                    raise _BatchCancelled()
            with self._guard:
                if ticket.cancelled:
                    raise _BatchCancelled()
                self._running = None  # past this point the batch commits; no interrupt may reach COMMIT
            conn.execute("COMMIT")
            return results
        except sqlite3.Error as exc:
            self._rollback()
            if ticket.cancelled:
                raise _BatchCancelled() from exc
            raise SqliteError(f"SQLite error: {exc}") from exc
        except BaseException:
            self._rollback()
            raise
        finally:
            with self._guard:
                self._running = None

    def _rollback(self) -> None:
        with self._guard:
            self._running = None  # an interrupt must not hit the ROLLBACK itself
        # SQLite rolls some failures back by itself (an interrupt, a full disk): only roll back what is open.
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
        raise SqliteError(f"no database at {path}: check --db (or CLIPCRAWLER_DB); "
                          "`clipcrawler demo`, `crawl` or `streamers add` create one")
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


def _why(exc: sqlite3.Error, path: str) -> str:
    text = str(exc)
    if "readonly" in text or "unable to open" in text:
        parent = Path(path).resolve().parent
        return f"{text} (is {parent} writable? SQLite needs to write the file and its -wal and -shm files there)"
    return text


def check_d1_limits(statement: Statement) -> None:
    """Refuse what D1 refuses, so a local run fails where production would."""
    if len(statement.params) > D1_MAX_PARAMS:
        raise SqliteError(f"too many SQL variables: {len(statement.params)} > {D1_MAX_PARAMS} "
                          "(D1's limit, enforced locally)")
    if len(statement.sql.encode()) > D1_MAX_SQL_BYTES:
        raise SqliteError(f"statement too long: {len(statement.sql.encode())} bytes > {D1_MAX_SQL_BYTES} "
                          "(D1's limit, enforced locally)")

