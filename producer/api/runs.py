"""Runs: the manual kick, the list, one run's facts, its jobs, and retrying its failed jobs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from producer import queries
from producer.api.errors import ApiError, invalid
from producer.api.validation import (
    MAX_ID,
    check_object,
    choice_param,
    int_param,
    json_object,
    path_int,
    query,
    string_list,
    timestamp,
)
from producer.core import start_run
from producer.retry_failed import RetryRefused, retry_failed
from shared.backfill import EARLIEST
from shared.ports import Row
from shared.states import RunStatus
from shared.timefmt import to_rfc3339
from shared.windows import Window

if TYPE_CHECKING:
    from producer.context import AppContext

MAX_KICK_STREAMERS = 1000
EARLIEST_BACKFILL = to_rfc3339(EARLIEST)  # a history backfill reaches back years, not before Twitch
PAGE_DEFAULT = 20
PAGE_MAX = 100
JOBS_PAGE_MAX = 500


async def kick(request: Request, context: AppContext) -> Response:
    """POST /runs: open a manual run, optionally for some streamers or over a backfill window."""
    body = await json_object(request, ("streamers", "backfill"))
    streamer_ids = await _kick_streamers(context, body.get("streamers")) if "streamers" in body else None
    backfill = _backfill(body["backfill"], context.ports.clock.now()) if "backfill" in body else None
    started = await start_run(context.ports, context.settings, streamer_ids=streamer_ids, backfill=backfill)
    run = await queries.run(context.ports.db, started.run_id)
    return JSONResponse(
        {
            "run_id": started.run_id,
            "status": run["status"] if run else RunStatus.ENQUEUING,
            "jobs": started.jobs,
            "resent": started.resent,
            "finished": started.finished,
        },
        status_code=202,
        headers={"Location": f"/runs/{started.run_id}"},
    )


async def _kick_streamers(context: AppContext, value: Any) -> list[str]:
    ids = string_list(value, "streamers", max_items=MAX_KICK_STREAMERS, check=lambda item, _: item.strip())
    found = await queries.streamers_by_id(context.ports.db, ids)
    for index, streamer_id in enumerate(ids):
        row = found.get(streamer_id)
        if row is None:
            raise invalid(
                f"streamers[{index}]", f"no streamer has id {streamer_id!r} (add it with POST /streamers)"
            )
        if not row["active"]:
            raise invalid(f"streamers[{index}]", f"streamer {streamer_id!r} ({row['login']}) is deactivated")
    return ids


def _backfill(value: Any, now: float) -> Window:
    body = check_object(value, ("from", "to"), "backfill")
    for name in ("from", "to"):
        if name not in body:
            raise invalid(f"backfill.{name}", "is required")
    start, end = timestamp(body["from"], "backfill.from"), timestamp(body["to"], "backfill.to")
    if start >= end:
        raise invalid("backfill.to", f"{body['to']!r} is not after backfill.from {body['from']!r}")
    if end > now:
        raise invalid("backfill.to", f"{body['to']!r} is in the future")
    if start < EARLIEST:
        raise invalid("backfill.from", f"{body['from']!r} is before Twitch existed ({EARLIEST_BACKFILL})")
    return Window(start, end)


async def list_runs(request: Request, context: AppContext) -> Response:
    """GET /runs?limit=&before=: newest first; `next_before` pages on."""
    params = query(request, ("limit", "before"))
    limit = int_param(params, "limit", default=PAGE_DEFAULT, low=1, high=PAGE_MAX)
    before = int_param(params, "before", default=None, low=1, high=MAX_ID)
    assert limit is not None
    rows = await queries.runs_page(context.ports.db, limit=limit, before=before)
    now = context.ports.clock.now()
    return JSONResponse(
        {
            "runs": [run_summary(r, now) for r in rows],
            "next_before": rows[-1]["id"] if len(rows) == limit else None,
        }
    )


async def show_run(request: Request, context: AppContext) -> Response:
    """GET /runs/{run_id}: status, counters, duration, failure rate and why jobs stopped."""
    query(request, ())
    run_id = path_int(request, "run_id")
    row = await queries.run(context.ports.db, run_id)
    if row is None:
        raise ApiError(404, f"no run {run_id}")
    breakdown = await queries.job_breakdown(context.ports.db, run_id)
    return JSONResponse(run_detail(row, breakdown, context.ports.clock.now()))


async def list_jobs(request: Request, context: AppContext) -> Response:
    """GET /runs/{run_id}/jobs?status=&limit=&after=: per-streamer results, in job id order."""
    params = query(request, ("status", "limit", "after"))
    run_id = path_int(request, "run_id")
    status = choice_param(params, "status", queries.JOB_STATUSES)
    limit = int_param(params, "limit", default=100, low=1, high=JOBS_PAGE_MAX)
    after = int_param(params, "after", default=0, low=0, high=MAX_ID)
    assert limit is not None and after is not None
    if await queries.run(context.ports.db, run_id) is None:
        raise ApiError(404, f"no run {run_id}")
    rows = await queries.jobs_page(context.ports.db, run_id, status=status, limit=limit, after=after)
    return JSONResponse(
        {
            "run_id": run_id,
            "jobs": [job_result(r) for r in rows],
            "next_after": rows[-1]["id"] if len(rows) == limit else None,
        }
    )


async def retry(request: Request, context: AppContext) -> Response:
    """POST /runs/{run_id}/retry-failed: reopen the failed jobs and send them again."""
    query(request, ())
    run_id = path_int(request, "run_id")
    await json_object(request, ())
    try:
        ports = context.ports
        retried = await retry_failed(ports.db, ports.queue, ports.clock, context.settings, run_id)
    except RetryRefused as exc:
        raise ApiError(exc.status, str(exc)) from None
    return JSONResponse(
        {
            "run_id": run_id,
            "status": retried.run_status,
            "requeued": len(retried.requeued),
            "jobs": retried.requeued,
            "skipped": retried.skipped,
        },
        status_code=202,
    )


def run_summary(row: Row, now: float) -> dict[str, Any]:
    """A run as the API shows it, with what can be derived from its counters."""
    done, failed, total = int(row["jobs_done"]), int(row["jobs_failed"]), int(row["jobs_total"])
    return {
        **{k: row[k] for k in ("id", "kind", "status", "slot", "created_at", "enqueued_at", "finished_at")},
        "duration_s": queries.duration_s(row, now),
        "jobs": {"total": total, "done": done, "failed": failed, "pending": max(0, total - done - failed)},
        "failure_rate": queries.failure_rate(row),
        "clips": {k: int(row[f"clips_{k}"]) for k in ("seen", "new", "updated", "skipped")},
        "pages": int(row["pages"]),
        "calls": {
            "helix": int(row["helix_calls"]),
            "d1": int(row["d1_calls"]),
            "queue": int(row["queue_sends"]),
        },
    }


def run_detail(row: Row, breakdown: list[Row], now: float) -> dict[str, Any]:
    detail = run_summary(row, now)
    by_status: dict[str, int] = {}
    reasons: dict[str, int] = {}
    for part in breakdown:
        by_status[part["status"]] = by_status.get(part["status"], 0) + int(part["jobs"])
        reason = part["stop_reason"] or "none"
        reasons[reason] = reasons.get(reason, 0) + int(part["jobs"])
    detail["jobs_by_status"] = {s: by_status.get(s, 0) for s in queries.JOB_STATUSES}
    detail["stop_reasons"] = dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))
    return detail


def job_result(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "streamer_id": row["streamer_id"],
        "login": row["login"],
        "display_name": row["display_name"],
        "status": row["status"],
        "attempts": row["attempts"],
        "invocations": row["invocations"],
        "pages": row["pages"],
        "clips": {k: row[f"clips_{k}"] for k in ("seen", "new", "updated", "skipped")},
        "calls": {"helix": row["helix_calls"], "d1": row["d1_calls"], "queue": row["queue_sends"]},
        "subrequests": row["subrequests"],
        "max_subrequests": row["max_subrequests"],
        "stop_reason": row["stop_reason"],
        "error": row["error"],
        "crawl_from": row["crawl_from"],
        "crawl_to": row["crawl_to"],
        "reached": row["window_start"],
        "created_at": row["created_at"],
        "started_at": row["started_at"],
        "finished_at": row["finished_at"],
    }
