"""A clock that runs a fixed number of times faster than real time, from a fixed origin."""

from __future__ import annotations

import asyncio
import time


class ScaledClock:
    """Virtual time = origin + factor x real time elapsed since `start()`; `sleep` waits factor times less.

    Every latency and the rate-limit window are read through this clock, so they scale together. Until
    `start()` the clock stands at its origin, so setup takes no virtual time. It has no `set()`, on
    purpose: the simulated queue would otherwise jump it forward instead of waiting.
    """

    def __init__(self, origin: float, factor: float = 1.0) -> None:
        if factor <= 0:
            raise ValueError(f"clock factor must be positive, got {factor!r}")
        self.origin = origin
        self.factor = factor
        self._started: float | None = None

    def start(self) -> None:
        self._started = time.perf_counter()

    def now(self) -> float:
        if self._started is None:
            return self.origin
        return self.origin + (time.perf_counter() - self._started) * self.factor

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            await asyncio.sleep(seconds / self.factor)
