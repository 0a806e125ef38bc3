"""Retry a run's failed jobs: reopen them as queued, keep the run's counters true, send one message each."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.batch import Batch
from shared.budget import Budget
from shared.config import Settings
from shared.errors import ClipCrawlerError
from shared.logs import EventLog, Redactor
from shared.messages import CrawlJob
from shared.metered import MeteredDatabase, MeteredQueue
from shared.ports import Clock, Database, OutgoingMessage, QueueSender, Statement
from shared.states import RunStatus
from shared.timefmt import to_rfc3339

SKIPPED_SHOWN = 100


class RetryRefused(ClipCrawlerError):
    """The run's failed jobs cannot be retried now; `status` is the HTTP answer (404 or 409)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Retried:
    """What a retry did: jobs reopened, and failed jobs left alone with the reason."""

    run_id: int
    requeued: list[dict[str, Any]] = field(default_factory=list)  # job_id, streamer_id
    skipped: list[dict[str, Any]] = field(default_factory=list)  # job_id, streamer_id, reason
    run_status: str = RunStatus.RUNNING


def retry_statements(run_id: int, now: str, client_id: str) -> Batch:
    """Reopen the run's failed jobs whose streamer is active and not held by another unfinished job.

    The cursor is dropped (a stale or bad cursor may be why it failed) but the window is kept, so
    the crawl resumes at the window it was in; pages already committed are upserted idempotently.
    `attempts` restarts for the new round; `invocations` and the clip counters keep the history.
    Names: `reopened` (the jobs), `counted` (the run's counters), `run`, `left` (failed jobs not reopened).
    """
    return (
        Batch()
        .add(
            Statement(
                "UPDATE jobs SET status = 'queued', attempts = 0, lease_token = NULL, lease_expires_at = "
                "NULL, "
                "due_at = ?2, cursor = NULL, window_pages = 0, stop_reason = 'retried', error = NULL, "
                "finished_at = NULL "
                "WHERE run_id = ?1 AND status = 'failed' "
                "AND EXISTS (SELECT 1 FROM runs WHERE id = ?1 AND status IN ('running', 'finished')) "
                "AND EXISTS (SELECT 1 FROM streamers AS s WHERE s.id = jobs.streamer_id AND s.active = 1) "
                # The partial unique index allows one unfinished job per streamer, whatever its run.
                "AND NOT EXISTS (SELECT 1 FROM jobs AS a WHERE a.streamer_id = jobs.streamer_id "
                "AND a.status IN ('queued', 'running')) "
                "RETURNING id, streamer_id",
                (run_id, now),
            ),
            "reopened",
        )
        .add(
            Statement(
                # Counted again rather than decremented, so the counter ends up true whatever it was.
                "UPDATE runs SET "
                "jobs_failed = (SELECT count(*) FROM jobs WHERE run_id = ?1 AND status = 'failed'), "
                "status = CASE WHEN status = 'finished' AND EXISTS (SELECT 1 FROM jobs WHERE run_id = ?1 "
                "AND status IN ('queued', 'running')) THEN 'running' ELSE status END, "
                "finished_at = CASE WHEN status = 'finished' AND EXISTS (SELECT 1 FROM jobs WHERE run_id = "
                "?1 "
                "AND status IN ('queued', 'running')) THEN NULL ELSE finished_at END, d1_calls = d1_calls + "
                "1, "
                # The sends about to be made for the jobs reopened just now (100 messages per send).
                "queue_sends = queue_sends + (SELECT (count(*) + 99) / 100 FROM jobs WHERE run_id = ?1 "
                "AND status = 'queued' AND stop_reason = 'retried' AND due_at = ?2) "
                "WHERE id = ?1 AND status IN ('running', 'finished')",
                (run_id, now),
            ),
            "counted",
        )
        .add(Statement("SELECT id, status FROM runs WHERE id = ?1", (run_id,)), "run")
        .add(
            # A retry is someone's word that the credentials may be right now: the reopened jobs ask Twitch.
            Statement(
                "UPDATE app_tokens SET refused_run_id = NULL, refused_error = NULL "
                "WHERE client_id = ?2 AND refused_run_id = ?1",
                (run_id, client_id),
            ),
            "unrefused",
        )
        .add(
            Statement(
                "SELECT j.id, j.streamer_id, coalesce(s.active, 0) AS active, EXISTS (SELECT 1 FROM jobs AS "
                "a "
                "WHERE a.streamer_id = j.streamer_id AND a.status IN ('queued', 'running')) AS held "
                "FROM jobs AS j LEFT JOIN streamers AS s ON s.id = j.streamer_id "
                "WHERE j.run_id = ?1 AND j.status = 'failed' ORDER BY j.id LIMIT ?2",
                (run_id, SKIPPED_SHOWN),
            ),
            "left",
        )
    )


async def retry_failed(
    db: Database, queue: QueueSender, clock: Clock, settings: Settings, run_id: int
) -> Retried:
    """Reopen and re-send the run's failed jobs; RetryRefused when there is nothing that can be retried.

    D1 first, then the queue: if the send fails, the jobs are queued with a due time in the past,
    and the producer's sweep of stale jobs sends them on a later tick.
    """
    budget = Budget(*settings.limits)
    metered_db = MeteredDatabase(db, budget)
    metered_queue = MeteredQueue(queue, budget)
    results = await retry_statements(run_id, to_rfc3339(clock.now()), settings.twitch_client_id).run(
        metered_db
    )
    run, reopened = results.first("run"), results.rows("reopened")
    if run is None:
        raise RetryRefused(f"no run {run_id}", 404)
    status = str(run["status"])
    if status == RunStatus.ENQUEUING:
        raise RetryRefused(f"run {run_id} is still enqueuing its jobs; retry once it is running", 409)
    skipped = [
        {
            "job_id": int(r["id"]),
            "streamer_id": str(r["streamer_id"]),
            "reason": "streamer deactivated"
            if not r["active"]
            else "another run holds an unfinished job for this streamer"
            if r["held"]
            else "not retried",
        }
        for r in results.rows("left")
    ]
    if not reopened:
        why = f"; {len(skipped)} cannot be retried now ({skipped[0]['reason']})" if skipped else ""
        raise RetryRefused(f"run {run_id} has no failed jobs to retry{why}", 409)
    requeued: list[dict[str, Any]] = [
        {"job_id": int(r["id"]), "streamer_id": str(r["streamer_id"])} for r in reopened
    ]
    await metered_queue.send_batch(
        [OutgoingMessage(CrawlJob(run_id, r["job_id"], r["streamer_id"]).encode()) for r in requeued]
    )
    EventLog(Redactor.for_settings(settings)).emit(
        "jobs_retried", run_id=run_id, requeued=len(requeued), skipped=len(skipped), subrequests=budget.total
    )
    return Retried(run_id, requeued, skipped, status)
