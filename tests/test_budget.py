from __future__ import annotations

import pytest

from local.sqlite_db import SqliteDatabase
from shared.budget import EXTERNAL, INTERNAL, Budget
from shared.errors import BudgetExhausted
from shared.metered import MeteredDatabase, MeteredQueue
from shared.ports import OutgoingMessage, Statement


def test_charges_by_bucket_and_refuses_the_call_that_would_not_fit() -> None:
    budget = Budget(external_limit=2, internal_limit=1)
    budget.charge("helix")
    budget.charge("d1")
    assert budget.used == {EXTERNAL: 1, INTERNAL: 1}
    assert budget.can_afford(external=1) and not budget.can_afford(internal=1)
    with pytest.raises(BudgetExhausted, match="internal limit 1"):
        budget.charge("queue")
    budget.charge("helix")
    with pytest.raises(BudgetExhausted, match="external limit 2"):
        budget.charge("helix")
    assert budget.total == 3 and budget.calls == {"helix": 2, "d1": 1, "queue": 0}


async def test_metered_database_charges_one_per_call_and_one_per_batch() -> None:
    db = await SqliteDatabase.open()
    try:
        budget = Budget(10, 3)
        metered = MeteredDatabase(db, budget)
        await metered.batch([Statement("SELECT 1"), Statement("SELECT 2"), Statement("SELECT 3")])
        await metered.first("SELECT 1")
        await metered.all("SELECT 1")
        with pytest.raises(BudgetExhausted):
            await metered.run("SELECT 1")
        assert db.calls == 3
    finally:
        await db.close()


class RecordingQueue:
    def __init__(self) -> None:
        self.sends: list[int] = []

    async def send_batch(self, messages: list[OutgoingMessage]) -> None:
        self.sends.append(len(messages))


async def test_metered_queue_sends_at_most_100_per_call_and_charges_each() -> None:
    queue = RecordingQueue()
    budget = Budget(0, 10)
    await MeteredQueue(queue, budget).send_batch([OutgoingMessage({"n": i}) for i in range(250)])
    assert queue.sends == [100, 100, 50]
    assert budget.calls["queue"] == 3
