"""Port wrappers that charge the invocation's budget before each call goes out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shared.budget import Budget
from shared.limits import MAX_SEND_MESSAGES
from shared.ports import Database, OutgoingMessage, QueueSender, Result, Row, Statement


class MeteredDatabase:
    """A Database whose every call (a whole `batch` included) costs one D1 subrequest."""

    def __init__(self, db: Database, budget: Budget) -> None:
        self._db = db
        self.budget = budget

    async def all(self, sql: str, *params: Any) -> list[Row]:
        self.budget.charge("d1")
        return await self._db.all(sql, *params)

    async def first(self, sql: str, *params: Any) -> Row | None:
        self.budget.charge("d1")
        return await self._db.first(sql, *params)

    async def run(self, sql: str, *params: Any) -> Result:
        self.budget.charge("d1")
        return await self._db.run(sql, *params)

    async def batch(self, statements: Sequence[Statement]) -> list[Result]:
        self.budget.charge("d1")
        return await self._db.batch(statements)


class MeteredQueue:
    """A QueueSender that splits into sends of at most 100 and charges each."""

    def __init__(self, queue: QueueSender, budget: Budget) -> None:
        self._queue = queue
        self.budget = budget

    async def send_batch(self, messages: Sequence[OutgoingMessage]) -> None:
        for start in range(0, len(messages), MAX_SEND_MESSAGES):
            self.budget.charge("queue")
            await self._queue.send_batch(messages[start : start + MAX_SEND_MESSAGES])
