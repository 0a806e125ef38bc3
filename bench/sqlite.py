"""The benchmark's database: one in-memory SQLite that runs one batch at a time, like a D1 primary.

Two ways to host it. `SqliteProcess` (the default) runs it in a process of its own, as D1 runs on
Cloudflare's machines: its SQL never waits for the crawler's CPU, nor the crawler for its SQL. Sharing
one interpreter, the database thread and the event loop hand the GIL back and forth after every
statement, and the queueing that causes would be billed as D1 time. `SerialSqlite` keeps it on a
thread of this process, for the quick runs of the test suite.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import pickle
import socket
import sqlite3
import struct
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any

from local.sqlite_db import SCHEMA, D1Error, check_d1_limits
from shared.ports import BatchShortcuts, Result, Statement

STARTUP_TIMEOUT_S = 60.0
_LENGTH = struct.Struct("!I")


class SqliteEngine:
    """The database itself, synchronous: every batch one transaction, rolled back whole on any failure."""

    def __init__(self) -> None:
        self._conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA foreign_keys = ON")
        self._conn.executescript(SCHEMA.read_text())

    def run_batch(self, statements: Sequence[Statement]) -> list[Result]:
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
        conn.execute("COMMIT")
        return results

    def close(self) -> None:
        self._conn.close()

    def _execute(self, statement: Statement) -> Result:
        before = self._conn.total_changes
        cursor = self._conn.execute(statement.sql, statement.params)
        rows = [dict(r) for r in cursor.fetchall()]
        changes = self._conn.total_changes - before
        return Result(rows=rows, changes=changes, last_row_id=cursor.lastrowid, rows_written=changes)


class SerialSqlite(BatchShortcuts):
    """The Database port on a SqliteEngine on one thread of this process, one batch per hop."""

    def __init__(self, engine: SqliteEngine, executor: ThreadPoolExecutor) -> None:
        self._engine = engine
        self._executor = executor
        self.calls = 0

    @classmethod
    async def open(cls) -> SerialSqlite:
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bench-d1")
        engine = await asyncio.get_running_loop().run_in_executor(executor, SqliteEngine)
        return cls(engine, executor)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._engine.close)
        self._executor.shutdown(wait=True)

    async def batch(self, statements: Sequence[Statement]) -> list[Result]:
        for statement in statements:
            check_d1_limits(statement)
        self.calls += 1
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._engine.run_batch, list(statements))


class SqliteProcess(BatchShortcuts):
    """The Database port on a SqliteEngine in a child process, over one loopback connection.

    Batches are answered in the order they were sent, so a FIFO of futures pairs answers with callers.
    """

    def __init__(self, child: Any, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._child = child
        self._reader = reader
        self._writer = writer
        self._waiting: list[asyncio.Future[Any]] = []
        self._answers = asyncio.get_running_loop().create_task(self._read_answers())
        self.calls = 0

    @classmethod
    async def open(cls) -> SqliteProcess:
        context = multiprocessing.get_context("spawn")
        parent_end, child_end = context.Pipe()
        child = context.Process(target=_serve, name="bench-d1", daemon=True, args=(child_end,))
        child.start()
        child_end.close()
        loop = asyncio.get_running_loop()
        if not await loop.run_in_executor(None, parent_end.poll, STARTUP_TIMEOUT_S):
            child.kill()
            raise RuntimeError(f"the database process did not start within {STARTUP_TIMEOUT_S:.0f} s")
        ready = parent_end.recv()
        parent_end.close()
        if "error" in ready:
            raise RuntimeError(f"the database process failed to start: {ready['error']}")
        reader, writer = await asyncio.open_connection("127.0.0.1", ready["port"])
        writer.transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(child, reader, writer)

    async def batch(self, statements: Sequence[Statement]) -> list[Result]:
        for statement in statements:
            check_d1_limits(statement)
        self.calls += 1
        answer = asyncio.get_running_loop().create_future()
        self._waiting.append(answer)
        payload = pickle.dumps([(s.sql, s.params) for s in statements], protocol=pickle.HIGHEST_PROTOCOL)
        self._writer.write(_LENGTH.pack(len(payload)) + payload)
        kind, value = await answer
        if kind == "error":
            raise D1Error(value)
        return value

    async def close(self) -> None:
        self._writer.close()  # the child exits when the connection closes
        with contextlib.suppress(ConnectionError, OSError):
            await self._writer.wait_closed()
        self._answers.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._answers
        await asyncio.get_running_loop().run_in_executor(None, self._child.join, 10)
        if self._child.is_alive():
            self._child.kill()

    async def _read_answers(self) -> None:
        try:
            while True:
                header = await self._reader.readexactly(_LENGTH.size)
                answer = pickle.loads(await self._reader.readexactly(_LENGTH.unpack(header)[0]))
                self._waiting.pop(0).set_result(answer)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            for waiting in self._waiting:
                if not waiting.done():
                    waiting.set_exception(D1Error(f"D1_ERROR: the database process went away ({exc})"))


def _serve(parent: Connection) -> None:
    try:
        engine = SqliteEngine()
        listener = socket.create_server(("127.0.0.1", 0))
        parent.send({"port": listener.getsockname()[1]})
    except BaseException as exc:  # tell the parent why instead of leaving it to time out
        parent.send({"error": f"{type(exc).__name__}: {exc}"})
        raise
    finally:
        parent.close()
    connection, _ = listener.accept()
    listener.close()
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    stream = connection.makefile("rwb")
    with contextlib.closing(engine), contextlib.closing(stream), contextlib.closing(connection):
        while header := stream.read(_LENGTH.size):
            statements = [
                Statement(sql, tuple(params))
                for sql, params in pickle.loads(stream.read(_LENGTH.unpack(header)[0]))
            ]
            try:
                answer: tuple[str, Any] = ("ok", engine.run_batch(statements))
            except D1Error as exc:
                answer = ("error", str(exc))
            except Exception as exc:  # a bad statement must not take the database down with it
                answer = ("error", f"D1_ERROR: {type(exc).__name__}: {exc}")
            payload = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
            stream.write(_LENGTH.pack(len(payload)) + payload)
            stream.flush()
