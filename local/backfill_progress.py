"""Progress lines of a backfill: per streamer, the window it has reached and the clips it found."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TextIO

from shared.ports import Database, Row


async def backfill_jobs(db: Database, run_ids: Sequence[int]) -> list[Row]:
    """The jobs of these runs with their streamer, range, window reached and clips found so far."""
    ids = ",".join(str(int(i)) for i in run_ids) or "0"
    return await db.all(
        "SELECT j.id, j.run_id, s.login, j.status, j.crawl_from, j.crawl_to, j.window_start, j.clips_seen, "
        "j.clips_new, j.pages, j.invocations, j.stop_reason FROM jobs AS j JOIN streamers AS s ON s.id = j.streamer_id "
        f"WHERE j.run_id IN ({ids}) ORDER BY j.id")


def describe(job: Row) -> str:
    """One line: `login: reached 2023-04-01 of 2021-01-01..2026-09-21, 8123 clips found (12 new), running`."""
    span = f"{(job['crawl_from'] or '?')[:10]}..{(job['crawl_to'] or '?')[:10]}"
    if job["status"] == "done":
        where = f"done {span}"
    elif job["window_start"]:
        where = f"reached {job['window_start'][:16].replace('T', ' ')} of {span}"
    else:
        where = f"not started {span}"
    return (f"{job['login']}: {where}, {job['clips_seen']} clips found ({job['clips_new']} new), "
            f"{job['pages']} pages, {job['status']}")


class BackfillProgress:
    """Prints a line per streamer whenever its job moved, every `interval` seconds, until stopped."""

    def __init__(self, db: Database, run_ids: Sequence[int], stream: TextIO, *, enabled: bool = True,
                 interval: float = 1.0) -> None:
        self.db, self.run_ids, self.stream, self.enabled, self.interval = db, list(run_ids), stream, enabled, interval
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
        for job in await backfill_jobs(self.db, self.run_ids):
            line = describe(job)
            if self._shown.get(job["id"]) != line:
                self._shown[job["id"]] = line
                print(line, file=self.stream, flush=True)

    async def _loop(self) -> None:
        while True:
            await self.show()
            await asyncio.sleep(self.interval)
