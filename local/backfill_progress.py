"""Progress lines while a backfill runs: per streamer, the window it has reached and the clips it found."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TextIO

from producer.backfill_progress import describe, run_progress
from shared.ports import Database


class BackfillProgress:
    """Prints a line per streamer whenever its job moved, every `interval` seconds, until stopped."""

    def __init__(
        self,
        db: Database,
        run_ids: Sequence[int],
        stream: TextIO,
        *,
        enabled: bool = True,
        interval: float = 1.0,
    ) -> None:
        self.db, self.run_ids, self.stream = db, list(run_ids), stream
        self.enabled, self.interval = enabled, interval
        self._shown: dict[int, str] = {}
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> BackfillProgress:
        if self.enabled:
            self._task = asyncio.create_task(self._loop())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            await self.show()

    async def show(self) -> None:
        for job in await run_progress(self.db, self.run_ids):
            line = describe(job)
            if self._shown.get(job["id"]) != line:
                self._shown[job["id"]] = line
                print(line, file=self.stream, flush=True)

    async def _loop(self) -> None:
        while True:
            await self.show()
            await asyncio.sleep(self.interval)
