from __future__ import annotations

import asyncio
import contextlib
import random
import threading

import pytest

from local.sqlite_db import D1Error, SqliteDatabase, SqliteError
from shared.ports import Result, Statement


async def test_batch_is_one_transaction() -> None:
    db = await SqliteDatabase.open()
    try:
        await db.run("CREATE TABLE t (x INTEGER PRIMARY KEY)")
        with pytest.raises(D1Error, match="UNIQUE"):
            await db.batch([Statement("INSERT INTO t VALUES (1)"), Statement("INSERT INTO t VALUES (1)")])
        assert await db.all("SELECT * FROM t") == []
        results = await db.batch(
            [Statement("INSERT INTO t VALUES (?) RETURNING x", (5,)), Statement("SELECT 2 AS y")]
        )
        assert results[0].rows == [{"x": 5}] and results[0].changes == 1 and results[1].rows == [{"y": 2}]
        assert await db.first("SELECT x FROM t WHERE x = ?", 99) is None
    finally:
        await db.close()


async def test_d1_parameter_limit_is_enforced_locally() -> None:
    db = await SqliteDatabase.open()
    try:
        with pytest.raises(D1Error, match="too many SQL variables: 101"):
            await db.run("SELECT " + ", ".join("?" * 101), *range(101))
    finally:
        await db.close()


async def test_schema_applies_twice(tmp_path) -> None:
    path = tmp_path / "x.sqlite"
    for _ in range(2):
        db = await SqliteDatabase.open(path)
        await db.close()


@pytest.mark.parametrize("interruption", [asyncio.CancelledError, KeyboardInterrupt, RuntimeError])
async def test_a_batch_interrupted_between_its_statements_rolls_back_and_the_next_one_runs(
    interruption: type[BaseException],
) -> None:
    """Finding 1 of issue 13: a task cancelled between BEGIN and COMMIT left the transaction open."""
    db = await SqliteDatabase.open()
    execute = db._execute

    async def interrupted_at_the_marker(statement: Statement) -> Result:
        if statement.sql == "SELECT 'interrupt here'":
            raise interruption()
        return await execute(statement)

    try:
        await db.run("CREATE TABLE t (x INTEGER PRIMARY KEY)")
        db._execute = interrupted_at_the_marker  # type: ignore[method-assign]
        with pytest.raises(interruption):
            await db.batch(
                [
                    Statement("INSERT INTO t VALUES (1)"),
                    Statement("SELECT 'interrupt here'"),
                    Statement("INSERT INTO t VALUES (2)"),
                ]
            )
        assert not db._conn.in_transaction
        assert await db.all("SELECT x FROM t") == []
        results = await db.batch(
            [Statement("INSERT INTO t VALUES (3)"), Statement("SELECT count(*) AS n FROM t")]
        )
        assert results[1].rows == [{"n": 1}]
    finally:
        await db.close()


async def test_a_reader_cancelled_mid_crawl_never_breaks_the_writers() -> None:
    """The progress bar's pattern: a reader task cancelled at any point while writers commit batches."""
    db = await SqliteDatabase.open()
    try:
        await db.run("CREATE TABLE t (x INTEGER PRIMARY KEY)")

        async def write(start: int) -> None:
            for x in range(start, start + 50):
                await db.batch(
                    [Statement("INSERT INTO t VALUES (?)", (x,)), Statement("SELECT count(*) FROM t")]
                )

        async def read() -> None:
            while True:
                await db.first("SELECT count(*) AS n FROM t")

        writers = [asyncio.create_task(write(i * 1000)) for i in range(4)]
        for _ in range(20):
            reader = asyncio.create_task(read())
            for _ in range(random.randrange(1, 6)):
                await asyncio.sleep(0)
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        await asyncio.gather(*writers)
        assert await db.first("SELECT count(*) AS n FROM t") == {"n": 200}
    finally:
        await db.close()


async def test_cancelling_batches_at_random_points_never_half_applies_one() -> None:
    db = await SqliteDatabase.open()
    rng = random.Random(13)
    try:
        await db.run("CREATE TABLE t (batch INTEGER, n INTEGER, PRIMARY KEY (batch, n))")
        for batch_no in range(60):
            statements = [Statement("INSERT INTO t VALUES (?, ?)", (batch_no, n)) for n in range(20)]
            task = asyncio.create_task(db.batch(statements))
            for _ in range(rng.randrange(4)):
                await asyncio.sleep(0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            # Whatever the point of cancellation, the next batch finds no transaction left open.
            await db.run("INSERT INTO t VALUES (?, -1)", batch_no)
        counts = await db.all("SELECT batch, count(*) AS n FROM t WHERE n >= 0 GROUP BY batch")
        assert all(row["n"] == 20 for row in counts)
        assert (await db.first("SELECT count(*) AS n FROM t WHERE n = -1")) == {"n": 60}
    finally:
        await db.close()


async def test_a_failing_statement_mid_batch_leaves_the_connection_usable() -> None:
    db = await SqliteDatabase.open()
    try:
        await db.run("CREATE TABLE t (x INTEGER PRIMARY KEY)")
        with pytest.raises(SqliteError, match="SQLite error: no such table: nope"):
            await db.batch([Statement("INSERT INTO t VALUES (1)"), Statement("SELECT * FROM nope")])
        assert not db._conn.in_transaction and await db.all("SELECT * FROM t") == []
        await db.run("INSERT INTO t VALUES (2)")
    finally:
        await db.close()


async def test_opening_what_is_not_a_database_says_so_and_leaves_no_thread(tmp_path) -> None:
    path = tmp_path / "notdb.txt"
    path.write_text("hello, this is not SQLite\n" * 100)
    threads = threading.active_count()
    with pytest.raises(SqliteError, match=f"{path} is not an SQLite database"):
        await SqliteDatabase.open(path)
    assert threading.active_count() <= threads  # nothing left behind to keep the process from exiting


async def test_a_missing_file_is_not_created_unless_asked(tmp_path) -> None:
    path = tmp_path / "typo.sqlite"
    with pytest.raises(SqliteError, match=f"no database at {path}"):
        await SqliteDatabase.open(path, create=False)
    assert not path.exists()
