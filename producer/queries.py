"""Read-side SQL for the API and the dashboard: parameterised, indexed, and always LIMITed."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from shared.ports import Database, Row
from shared.states import JobStatus
from shared.timefmt import parse_rfc3339, to_rfc3339

JOB_STATUSES = tuple(JobStatus)
RUN_COLUMNS = (
    "id, slot, kind, status, created_at, enqueued_at, finished_at, jobs_total, jobs_done, "
    "jobs_failed, pages, clips_seen, clips_new, clips_updated, clips_skipped, helix_calls, "
    "d1_calls, queue_sends"
)
STREAMER_COLUMNS = (
    "id, login, display_name, active, crawled_through, last_success_at, last_failure_at, "
    "failure_streak, last_error, added_at, tier, next_crawl_at"
)
JOB_COLUMNS = (
    "j.id, j.run_id, j.streamer_id, s.login, s.display_name, j.status, j.attempts, "
    "j.invocations, j.pages, j.clips_seen, j.clips_new, j.clips_updated, j.clips_skipped, "
    "j.helix_calls, j.d1_calls, j.queue_sends, j.subrequests, j.max_subrequests, j.stop_reason, "
    "j.error, j.crawl_from, j.crawl_to, j.window_start, j.created_at, j.started_at, j.finished_at"
)
CLIP_COLUMNS = "id, broadcaster_id, broadcaster_name, title, url, thumbnail_url, view_count, created_at"


async def runs_page(db: Database, *, limit: int, before: int | None = None) -> list[Row]:
    """Runs newest first (by id, the primary key), `limit` of them, older than run `before` if given."""
    if before is None:
        # No sentinel "above every id" (2**62 was one): D1 cannot bind it. `id > 0` keeps the plan a search.
        return await db.all(f"SELECT {RUN_COLUMNS} FROM runs WHERE id > 0 ORDER BY id DESC LIMIT ?", limit)
    return await db.all(
        f"SELECT {RUN_COLUMNS} FROM runs WHERE id < ? ORDER BY id DESC LIMIT ?", before, limit
    )


async def run(db: Database, run_id: int) -> Row | None:
    return await db.first(f"SELECT {RUN_COLUMNS} FROM runs WHERE id = ?", run_id)


async def job_breakdown(db: Database, run_id: int) -> list[Row]:
    """Jobs of a run counted by status and stop reason (one pass over the run's index range)."""
    return await db.all(
        "SELECT status, stop_reason, count(*) AS jobs FROM jobs WHERE run_id = ? "
        "GROUP BY status, stop_reason ORDER BY status, jobs DESC",
        run_id,
    )


async def jobs_page(
    db: Database, run_id: int, *, status: str | None, limit: int, after: int = 0
) -> list[Row]:
    """A run's jobs in id order after job `after`, optionally only those in `status`.

    With a status, the (run_id, status) index yields them in id order; without, the run's jobs are
    read through it and sorted, so a page costs the run's size in rows read.
    """
    only = "AND j.status = ? " if status else ""
    params: tuple[Any, ...] = (run_id, status, after, limit) if status else (run_id, after, limit)
    return await db.all(
        f"SELECT {JOB_COLUMNS} FROM jobs AS j LEFT JOIN streamers AS s ON s.id = j.streamer_id "
        f"WHERE j.run_id = ? {only}AND j.id > ? ORDER BY j.id LIMIT ?",
        *params,
    )


async def streamers_page(
    db: Database, *, limit: int, after: tuple[str, str] | None = None, active: bool | None = None
) -> list[Row]:
    """Streamers in (login, id) order after the `after` key; the login index serves the order."""
    where = ["(login, id) > (?, ?)"]
    params: list[Any] = list(after or ("", ""))
    if active is not None:
        # `+active`: filter while walking the login index, rather than sort every active streamer.
        where.append("+active = ?")
        params.append(int(active))
    return await db.all(
        f"SELECT {STREAMER_COLUMNS} FROM streamers WHERE {' AND '.join(where)} ORDER BY login, id LIMIT ?",
        *params,
        limit,
    )


async def streamer(db: Database, streamer_id: str) -> Row | None:
    return await db.first(f"SELECT {STREAMER_COLUMNS} FROM streamers WHERE id = ?", streamer_id)


async def streamers_by_id(db: Database, ids: Sequence[str]) -> dict[str, Row]:
    """The listed streamers that exist, by id: one statement however many ids (json_each, not 1,000 `?`)."""
    rows = await db.all(
        f"SELECT {STREAMER_COLUMNS} FROM streamers WHERE id IN (SELECT value FROM json_each(?))",
        json.dumps(list(ids)),
    )
    return {str(r["id"]): r for r in rows}


async def failing_streamers(db: Database, limit: int) -> list[Row]:
    """Active streamers whose last crawls failed, longest streak first (the streamers_failing index)."""
    return await db.all(
        f"SELECT {STREAMER_COLUMNS} FROM streamers WHERE failure_streak > 0 AND +active = 1 "
        "ORDER BY failure_streak DESC, login LIMIT ?",
        limit,
    )


async def streamer_counts(db: Database) -> Row:
    """Active, deactivated and failing streamers; the active count reads one index entry per streamer."""
    row = await db.first(
        "SELECT (SELECT count(*) FROM streamers WHERE active = 1) AS active, "
        "(SELECT count(*) FROM streamers WHERE active = 0) AS inactive, "
        "(SELECT count(*) FROM streamers WHERE failure_streak > 0 AND +active = 1) AS failing"
    )
    return row or {"active": 0, "inactive": 0, "failing": 0}


async def deactivate_streamer(db: Database, streamer_id: str) -> bool:
    """Stop crawling a streamer; its clips and history stay. False if there is no such streamer."""
    result = await db.run("UPDATE streamers SET active = 0 WHERE id = ?", streamer_id)
    return result.changes > 0


async def newest_clips(db: Database, limit: int, now: float) -> list[Row]:
    """The latest clips by creation time, read backwards along the clips_created index."""
    return await db.all(
        f"SELECT {CLIP_COLUMNS} FROM clips WHERE created_at <= ? ORDER BY created_at DESC LIMIT ?",
        to_rfc3339(now + 86_400),
        limit,
    )


def duration_s(row: Row, now: float) -> float | None:
    """How long a run took, or has been going for."""
    if not row.get("created_at"):
        return None
    end = parse_rfc3339(row["finished_at"]) if row.get("finished_at") else now
    return round(max(0.0, end - parse_rfc3339(row["created_at"])), 3)


def failure_rate(row: Row) -> float:
    """Failed jobs over all the run's jobs."""
    total = int(row["jobs_total"] or 0)
    return round(int(row["jobs_failed"] or 0) / total, 4) if total else 0.0


async def streamer_by_login_or_id(db: Database, value: str) -> Row | None:
    """The streamer with this broadcaster id, else the one with this login (a login may be all digits)."""
    found = await streamer(db, value)
    if found is None:
        found = await db.first(
            f"SELECT {STREAMER_COLUMNS} FROM streamers WHERE login = ? ORDER BY id LIMIT 1",
            value.strip().lower(),
        )
    return found


async def game_by_name(db: Database, name: str) -> Row | None:
    """A game by its exact name, case aside (the games_name index)."""
    return await db.first(
        "SELECT id, name, box_art_url FROM games WHERE name = ? COLLATE NOCASE ORDER BY id LIMIT 1",
        name.strip(),
    )


async def game(db: Database, game_id: str) -> Row | None:
    return await db.first("SELECT id, name, box_art_url FROM games WHERE id = ?", game_id)


async def streamer_jobs(db: Database, streamer_id: str, limit: int) -> list[Row]:
    """A streamer's last jobs, newest first (the jobs_streamer index), with their run's kind."""
    return await db.all(
        f"SELECT {JOB_COLUMNS}, r.kind AS run_kind FROM jobs AS j LEFT JOIN streamers AS s ON s.id = "
        "j.streamer_id "
        "LEFT JOIN runs AS r ON r.id = j.run_id WHERE j.streamer_id = ? ORDER BY j.id DESC LIMIT ?",
        streamer_id,
        limit,
    )


async def streamer_clip_count(db: Database, streamer_id: str) -> int:
    """How many clips of a streamer are stored (reads its entries of the clips_broadcaster_created index)."""
    row = await db.first("SELECT count(*) AS n FROM clips WHERE broadcaster_id = ?", streamer_id)
    return int(row["n"]) if row else 0
