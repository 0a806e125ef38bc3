"""The ports the core talks through: a D1-shaped database, a queue sender, a clock and an HTTP client."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

Row = dict[str, Any]


@dataclass(frozen=True)
class Statement:
    """One SQL statement with its positional (`?`) parameters."""

    sql: str
    params: tuple[Any, ...] = ()


@dataclass
class Result:
    """What D1 answers for one statement: rows plus the `meta` counters."""

    rows: list[Row] = field(default_factory=list)
    changes: int = 0
    last_row_id: int | None = None
    rows_read: int = 0
    rows_written: int = 0


class Database(Protocol):
    """The D1 binding's shape. `batch` is one round trip and one transaction."""

    async def all(self, sql: str, *params: Any) -> list[Row]: ...

    async def first(self, sql: str, *params: Any) -> Row | None: ...

    async def run(self, sql: str, *params: Any) -> Result: ...

    async def batch(self, statements: Sequence[Statement]) -> list[Result]: ...


class BatchShortcuts:
    """`all`, `first` and `run` for a Database that implements only `batch`."""

    async def batch(self, statements: Sequence[Statement]) -> list[Result]:
        raise NotImplementedError

    async def all(self, sql: str, *params: Any) -> list[Row]:
        return (await self.run(sql, *params)).rows

    async def first(self, sql: str, *params: Any) -> Row | None:
        rows = (await self.run(sql, *params)).rows
        return rows[0] if rows else None

    async def run(self, sql: str, *params: Any) -> Result:
        return (await self.batch([Statement(sql, tuple(params))]))[0]


@dataclass(frozen=True)
class OutgoingMessage:
    """A message to enqueue; `body` must be JSON-serialisable."""

    body: dict[str, Any]
    delay_seconds: int = 0


class QueueSender(Protocol):
    """The Queues producer binding's shape: at most 100 messages per call."""

    async def send_batch(self, messages: Sequence[OutgoingMessage]) -> None: ...


class Clock(Protocol):
    """Wall-clock time in epoch seconds (UTC), and a way to wait."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


@dataclass(frozen=True, kw_only=True)
class Ports:
    """The one set of ports both Workers and the local side hand the core (always by keyword)."""

    db: Database
    queue: QueueSender
    clock: Clock
    http: httpx.AsyncClient | None = None  # None: no Twitch calls (the producer then mints no token)
