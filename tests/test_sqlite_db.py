from __future__ import annotations

import pytest

from local.sqlite_db import D1Error, SqliteDatabase
from shared.ports import Statement


async def test_batch_is_one_transaction() -> None:
    db = await SqliteDatabase.open()
    try:
        await db.run("CREATE TABLE t (x INTEGER PRIMARY KEY)")
        with pytest.raises(D1Error, match="UNIQUE"):
            await db.batch([Statement("INSERT INTO t VALUES (1)"), Statement("INSERT INTO t VALUES (1)")])
        assert await db.all("SELECT * FROM t") == []
        results = await db.batch([Statement("INSERT INTO t VALUES (?) RETURNING x", (5,)), Statement("SELECT 2 AS y")])
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
