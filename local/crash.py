"""Consumers that die mid-message: the invocation stops right after one of its D1 calls went through.

A Worker can be evicted or run out of CPU at any point; the interesting point is just after a write
committed and before the invocation could ack, which is what CrashingDatabase produces.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from local.runner import LocalRunner
from shared.ports import Database, Ports, Result, Row, Statement


class SimulatedCrash(asyncio.CancelledError):
    """The invocation died: nothing after this point runs, and it neither acks nor retries its message.

    A CancelledError so that no `except Exception` in the consumer can catch it; the simulated queue
    settles a cancelled invocation as crashed and redelivers its message.
    """


@dataclass(frozen=True)
class ConsumerCrashes:
    """How often an invocation crashes, and how far it gets first."""

    seed: int = 0
    rate: float = 0.0  # per consumer invocation
    max_call: int = 3  # the crash follows the N-th database call, N uniform in 1..max_call

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"ConsumerCrashes.rate is {self.rate!r}; it must be between 0 and 1")
        if self.max_call < 1:
            raise ValueError(f"ConsumerCrashes.max_call is {self.max_call!r}; it must be at least 1")


class CrashInjector:
    """Hands each invocation its Database, armed to crash at the configured rate; `injected` counts."""

    def __init__(self, crashes: ConsumerCrashes) -> None:
        self.crashes = crashes
        self.injected: Counter[str] = Counter()
        self._rng = random.Random(f"{crashes.seed}:crash")

    def wrap(self, db: Database) -> CrashingDatabase:
        """The Database for one invocation."""
        roll_crash, roll_call = self._rng.random(), self._rng.random()
        self.injected["invocations"] += 1
        if roll_crash >= self.crashes.rate:
            return CrashingDatabase(db)
        self.injected["armed"] += 1
        crash_after = 1 + int(roll_call * self.crashes.max_call)
        return CrashingDatabase(db, crash_after=crash_after, injected=self.injected)


class CrashingDatabase:
    """A Database that raises SimulatedCrash right after its `crash_after`-th call has gone through."""

    def __init__(
        self, db: Database, crash_after: int | None = None, injected: Counter[str] | None = None
    ) -> None:
        self._db = db
        self.crash_after = crash_after
        self.calls = 0
        self._injected = injected if injected is not None else Counter()

    async def all(self, sql: str, *params: Any) -> list[Row]:
        rows = await self._db.all(sql, *params)
        self._count()
        return rows

    async def first(self, sql: str, *params: Any) -> Row | None:
        row = await self._db.first(sql, *params)
        self._count()
        return row

    async def run(self, sql: str, *params: Any) -> Result:
        result = await self._db.run(sql, *params)
        self._count()
        return result

    async def batch(self, statements: Sequence[Statement]) -> list[Result]:
        results = await self._db.batch(statements)
        self._count()
        return results

    def _count(self) -> None:
        self.calls += 1
        if self.calls == self.crash_after:
            self._injected["crashed"] += 1
            self._injected[f"crashed_after_call_{self.calls}"] += 1
            raise SimulatedCrash(f"injected crash after database call {self.calls}")


class CrashingRunner(LocalRunner):
    """A LocalRunner whose consumer invocations (one message each) may crash part-way through."""

    def __init__(self, *args: Any, crashes: CrashInjector, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.crashes = crashes

    @property
    def consumer_ports(self) -> Ports:
        ports = super().consumer_ports
        return replace(ports, db=self.crashes.wrap(ports.db))
