"""A backfill's progress per streamer: the window it has reached, the clips it found (CLI, dashboard, API)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from shared.batch import Batch
from shared.ports import Database, Row, Statement
from shared.states import JobStatus

_JOBS = (
    "SELECT j.id, j.run_id, j.streamer_id, s.login, j.status, j.crawl_from, j.crawl_to, j.window_start, "
    "j.clips_seen, j.clips_new, j.pages, j.invocations, j.stop_reason, r.backfill_from "
    "FROM jobs AS j JOIN runs AS r ON r.id = j.run_id LEFT JOIN streamers AS s ON s.id = j.streamer_id "
)


async def run_progress(db: Database, run_ids: Sequence[int], limit: int = -1) -> list[Row]:
    """The jobs of these runs (backfills or not), oldest first; at most `limit` (-1: all)."""
    batch = Batch().add(
        Statement(
            _JOBS + "WHERE j.run_id IN (SELECT value FROM json_each(?1)) ORDER BY j.id LIMIT ?2",
            (json.dumps([int(i) for i in run_ids]), limit),
        ),
        "jobs",
    )
    return (await batch.run(db)).rows("jobs")


async def streamer_backfills(db: Database, streamer_id: str, limit: int = 5) -> list[Row]:
    """A streamer's latest backfill jobs, newest first."""
    batch = Batch().add(
        Statement(
            _JOBS + "WHERE j.streamer_id = ?1 AND r.backfill_from IS NOT NULL ORDER BY j.id DESC LIMIT ?2",
            (streamer_id, limit),
        ),
        "jobs",
    )
    return (await batch.run(db)).rows("jobs")


def reached(job: Row) -> str:
    """Where the job is in its range: `done`, `not started`, or the start of the window in flight."""
    if job["status"] == JobStatus.DONE:
        return "done"
    if job["window_start"]:
        return "reached " + str(job["window_start"])[:16].replace("T", " ")
    return "not started"


def describe(job: Row) -> str:
    """One line: `login: reached 2023-04-01 12:00 of 2021-01-01..2026-09-21, 8123 clips found (12 new)...`."""
    span = f"{(job['crawl_from'] or '?')[:10]}..{(job['crawl_to'] or '?')[:10]}"
    where = f"done {span}" if job["status"] == "done" else f"{reached(job)} of {span}"
    return (
        f"{job['login'] or job['streamer_id']}: {where}, {job['clips_seen']} clips found "
        f"({job['clips_new']} new), {job['pages']} pages, {job['status']}"
    )
