"""The real clock."""

from __future__ import annotations

import asyncio
import time


class SystemClock:
    """Wall-clock time; `sleep` really waits."""

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            await asyncio.sleep(seconds)
