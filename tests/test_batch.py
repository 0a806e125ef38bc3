"""The batch protocol: results read by name, names that cannot clash, one round trip per run."""

from __future__ import annotations

import pytest

from local.sqlite_db import SqliteDatabase
from shared.batch import Batch
from shared.ports import Statement


async def test_results_are_read_by_name_whatever_was_added_before_them() -> None:
    db = await SqliteDatabase.open()
    try:
        batch = Batch().add(Statement("SELECT 1 AS one"), "one")
        batch.add_all([Statement("SELECT 2"), Statement("SELECT 3")])
        batch.add(Statement("SELECT ?1 AS four, ?1 + 1 AS five", (4,)), "four")
        calls = db.calls
        results = await batch.run(db)
        assert db.calls == calls + 1
        assert results.first("one") == {"one": 1}
        assert results.rows("four") == [{"four": 4, "five": 5}]
        assert results.changes("one") == 0
        with pytest.raises(KeyError, match="no statement named 'two'"):
            results["two"]
    finally:
        await db.close()


async def test_extending_a_batch_keeps_the_names_of_both() -> None:
    db = await SqliteDatabase.open()
    try:
        first = Batch().add(Statement("SELECT 'a' AS v"), "a")
        second = Batch().add_all([Statement("SELECT 'x'")]).add(Statement("SELECT 'b' AS v"), "b")
        results = await first.extend(second).run(db)
        assert (results.first("a"), results.first("b")) == ({"v": "a"}, {"v": "b"})
        assert len(first) == 3
    finally:
        await db.close()


def test_a_name_is_given_once() -> None:
    batch = Batch().add(Statement("SELECT 1"), "x")
    with pytest.raises(ValueError, match="already has a statement named 'x'"):
        batch.add(Statement("SELECT 2"), "x")
    with pytest.raises(ValueError, match="both batches name a statement 'x'"):
        Batch().add(Statement("SELECT 3"), "x").extend(batch)
