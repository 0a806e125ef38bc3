"""A progress bar for a run, read from the jobs table while the queue drains."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import TextIO

from shared.ports import Database

WIDTH = 30


class Progress:
    """Redraws `[#####.....] done/total` on a terminal; on a pipe, prints a line per quarter."""

    def __init__(
        self,
        db: Database,
        run_id: int,
        *,
        total: int,
        stream: TextIO,
        enabled: bool = True,
        interval: float = 0.2,
        resumed_job_ids: Sequence[int] = (),
    ) -> None:
        self.db = db
        self.run_id = run_id
        self.resumed = json.dumps(list(resumed_job_ids))  # jobs of earlier runs finished along with this one
        self.total = total
        self.stream = stream
        self.enabled = enabled and total > 0
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._quarter = -1

    async def __aenter__(self) -> Progress:
        if self.enabled:
            self._task = asyncio.create_task(self._loop())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            # Asked to stop, never cancelled: a read in progress finishes rather than being cut off.
            self._stop.set()
            await self._task
            await self.draw()
            if self.stream.isatty():
                self.stream.write("\n")
            self.stream.flush()

    async def _loop(self) -> None:
        while not self._stop.is_set():
            await self.draw()
            try:
                await asyncio.wait_for(self._stop.wait(), self.interval)
            except TimeoutError:
                pass

    async def draw(self) -> None:
        row = await self.db.first(
            "SELECT count(*) AS n FROM jobs WHERE (run_id = ? OR id IN (SELECT value FROM json_each(?))) "
            "AND status IN ('done', 'failed')",
            self.run_id,
            self.resumed,
        )
        done = int(row["n"]) if row else 0
        if self.stream.isatty():
            done = min(done, self.total)
            filled = WIDTH * done // self.total
            self.stream.write(f"\r[{'#' * filled}{'.' * (WIDTH - filled)}] {done}/{self.total} streamers")
        else:
            quarter = 4 * done // self.total
            if quarter > self._quarter:
                self._quarter = quarter
                self.stream.write(f"crawled {done}/{self.total} streamers\n")
        self.stream.flush()
