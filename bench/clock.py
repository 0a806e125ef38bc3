"""A clock that runs a fixed number of times faster than real time, from a fixed origin."""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import time
from typing import Any


class ScaledClock:
    """Virtual time = origin + factor x real time elapsed since `start()`; `sleep` waits factor times less.

    Every latency and the rate-limit window are read through this clock, so they scale together. Until
    `start()` the clock stands at its origin, so setup takes no virtual time. It has no `set()`, on
    purpose: the simulated queue would otherwise jump it forward instead of waiting.

    The start instant lives in shared memory (`start_cell`), so a clock built in another process from the
    same origin, factor and cell (the emulated Twitch's, bench/helix_process.py) shows the same time:
    `perf_counter` is the system-wide monotonic clock.
    """

    def __init__(self, origin: float, factor: float = 1.0, start_cell: Any = None) -> None:
        if factor <= 0:
            raise ValueError(f"clock factor must be positive, got {factor!r}")
        self.origin = origin
        self.factor = factor
        self.start_cell = start_cell if start_cell is not None else multiprocessing.RawValue("d", math.nan)

    def start(self) -> None:
        self.start_cell.value = time.perf_counter()

    def now(self) -> float:
        started = self.start_cell.value
        if math.isnan(started):
            return self.origin
        return self.origin + (time.perf_counter() - started) * self.factor

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            await asyncio.sleep(seconds / self.factor)
