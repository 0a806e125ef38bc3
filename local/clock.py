"""A virtual clock, so tests of hour-long delays run in milliseconds."""

from __future__ import annotations

import asyncio


class VirtualClock:
    """Time moves only when told to; `sleep` advances it instead of waiting."""

    def __init__(self, start: float = 1_790_000_000.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds > 0:
            self._now += seconds

    def set(self, when: float) -> None:
        self._now = max(self._now, when)

    async def sleep(self, seconds: float) -> None:
        self.advance(seconds)
        await asyncio.sleep(0)
