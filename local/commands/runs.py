"""`clipcrawler runs`, `runs show ID` and `runs retry-failed RUN`: the API's run facts in the terminal."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Mapping
from typing import Any

import httpx

from local.commands.common import int_between, open_db, settings_from
from local.commands.serve import twitch, twitch_flags
from local.interrupts import EXIT_INTERRUPTED, Interrupts
from local.queue import MAX_CONCURRENCY
from local.resume import resume_unfinished
from local.runner import LocalRunner
from local.summary import render_rows
from producer import queries
from producer.api.runs import job_result, run_detail, run_summary
from producer.backfill_progress import describe, run_progress
from producer.dashboard.html import duration, plural
from producer.retry_failed import Retried, RetryRefused, retry_failed
from shared.clock import SystemClock
from shared.config import Settings
from shared.ports import Clock, Database, Row
from shared.states import JobStatus, RunStatus

FAILED_SHOWN = 20


def register(commands: Any) -> None:
    runs = commands.add_parser("runs", help="list runs; `runs show ID`; `runs retry-failed RUN`")
    runs.add_argument(
        "--limit", type=int_between(1, 1000), default=20, help="runs to list, 1-1000 (default 20)"
    )
    runs.add_argument("--json", action="store_true", help="print JSON shaped like the API's")
    runs.set_defaults(handler=lambda args, env: asyncio.run(run_list(args, env)))
    actions = runs.add_subparsers(dest="runs_command", metavar="ACTION")
    show = actions.add_parser("show", help="one run: counters, duration, stop reasons, failed jobs")
    show.add_argument("run_id", type=int, metavar="ID")
    show.add_argument("--json", action="store_true", help="print JSON shaped like GET /runs/{id}")
    show.set_defaults(handler=lambda args, env: asyncio.run(run_show(args, env)))
    retry = actions.add_parser("retry-failed", help="reopen a run's failed jobs and crawl them again now")
    retry.add_argument("run_id", type=int, metavar="RUN")
    retry.add_argument(
        "--concurrency",
        type=int_between(1, MAX_CONCURRENCY),
        default=50,
        help="consumer invocations at once (default 50)",
    )
    retry.add_argument("--json", action="store_true", help="print the retry and the run as JSON")
    twitch_flags(retry)
    retry.set_defaults(handler=lambda args, env: asyncio.run(run_retry(args, env)))
    resume = actions.add_parser("resume", help="crawl a run's unfinished jobs now (one that was interrupted)")
    resume.add_argument("run_id", type=int, metavar="RUN")
    resume.add_argument(
        "--concurrency",
        type=int_between(1, MAX_CONCURRENCY),
        default=50,
        help="consumer invocations at once (default 50)",
    )
    resume.add_argument("--json", action="store_true", help="print the run as JSON")
    twitch_flags(resume)
    resume.set_defaults(handler=lambda args, env: asyncio.run(run_resume(args, env)))


async def run_list(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    db = await open_db(args, env)
    try:
        rows = await queries.runs_page(db, limit=args.limit)
    finally:
        await db.close()
    now = SystemClock().now()
    if args.json:
        print(json.dumps({"runs": [run_summary(r, now) for r in rows]}, indent=2))
    elif not rows:
        print("no runs yet: clipcrawler demo, or clipcrawler crawl")
    else:
        print(render_rows([_run_line(r, now) for r in rows]))
    return 0


async def run_show(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    db = await open_db(args, env)
    try:
        text = await show_run(db, args.run_id, SystemClock().now(), as_json=args.json)
    finally:
        await db.close()
    if text is None:
        print(f"clipcrawler: no run {args.run_id}", file=sys.stderr)
        return 1
    print(text)
    return 0


async def show_run(db: Database, run_id: int, now: float, *, as_json: bool = False) -> str | None:
    """The facts of GET /runs/{id} (and its failed jobs), as text or JSON; None if there is no such run."""
    row = await queries.run(db, run_id)
    if row is None:
        return None
    detail = run_detail(row, await queries.job_breakdown(db, run_id), now)
    failed = await queries.jobs_page(db, run_id, status=JobStatus.FAILED, limit=FAILED_SHOWN)
    if as_json:
        return json.dumps({**detail, "failed_jobs": [job_result(j) for j in failed]}, indent=2)
    jobs, clips, calls = detail["jobs"], detail["clips"], detail["calls"]
    lines = [
        f"run {run_id}: {detail['status']} ({detail['kind']}), opened {detail['created_at']}"
        + (f", finished {detail['finished_at']}" if detail["finished_at"] else ""),
        f"  duration          {duration(detail['duration_s'])}",
        (
            f"  streamers         {jobs['total']} ({jobs['done']} crawled, {jobs['failed']} failed, "
            f"{jobs['pending']} pending); failure rate {detail['failure_rate']:.1%}"
        ),
        (
            f"  clips             {clips['new']} new, {clips['updated']} updated, {clips['seen']} seen, "
            f"{clips['skipped']} skipped as malformed"
        ),
        f"  calls             {calls['helix']} Helix, {calls['d1']} D1, {calls['queue']} queue sends",
        "  stop reasons      " + (", ".join(f"{k} {v}" for k, v in detail["stop_reasons"].items()) or "none"),
    ]
    lines += await backfill_lines(db, row)
    if failed:
        lines += [
            "",
            f"failed jobs (first {FAILED_SHOWN}):",
            render_rows(
                [
                    {
                        "job": j["id"],
                        "streamer": j["login"] or j["streamer_id"],
                        "attempts": j["attempts"],
                        "stop_reason": j["stop_reason"],
                        "error": j["error"],
                    }
                    for j in failed
                ]
            ),
        ]
    return "\n".join(lines)


async def backfill_lines(db: Database, run: Row) -> list[str]:
    """A backfill run's range and, per streamer, the window reached and the clips found."""
    jobs = await run_progress(db, [run["id"]])
    if not jobs or not jobs[0]["backfill_from"]:
        return []
    shown = [f"  {describe(j)}" for j in jobs[:FAILED_SHOWN]]
    more = [f"  ... and {len(jobs) - FAILED_SHOWN} more"] if len(jobs) > FAILED_SHOWN else []
    return ["", f"backfill from {jobs[0]['crawl_from']} to {jobs[0]['crawl_to']}:", *shown, *more]


async def run_retry(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """Exit 0 when the run ends with no failed jobs, 1 when some failed again or none could be retried."""
    settings = settings_from(args, env)
    if not args.emulated:
        settings.require_credentials()
    db = await open_db(args, env)
    try:
        async with twitch(args, settings) as (http, crawl_settings):
            try:
                retried = await retry_failed_locally(
                    db, http, crawl_settings, SystemClock(), args.run_id, concurrency=args.concurrency
                )
            except RetryRefused as exc:
                print(f"clipcrawler: {exc}", file=sys.stderr)
                return 1
        now = SystemClock().now()
        text = await show_run(db, args.run_id, now, as_json=args.json)
        row = await queries.run(db, args.run_id)
    finally:
        await db.close()
    if args.json:
        print(
            json.dumps(
                {"requeued": retried.requeued, "skipped": retried.skipped, "run": json.loads(text or "null")},
                indent=2,
            )
        )
    else:
        print(
            f"requeued {plural(len(retried.requeued), 'failed job')} of run {args.run_id}"
            + (f"; {len(retried.skipped)} left failed" if retried.skipped else "")
        )
        for skipped in retried.skipped:
            print(f"  job {skipped['job_id']} ({skipped['streamer_id']}): {skipped['reason']}")
        print(text)
    return 0 if row is not None and int(row["jobs_failed"]) == 0 else 1


async def retry_failed_locally(
    db: Database,
    http: httpx.AsyncClient,
    settings: Settings,
    clock: Clock,
    run_id: int,
    *,
    concurrency: int = 50,
) -> Retried:
    """Reopen a run's failed jobs and drain them through the local consumer until the run is done again."""
    runner = LocalRunner(db, http, settings, clock, concurrency=concurrency)
    retried = await retry_failed(db, runner.queue, clock, settings, run_id)
    await runner.drain()
    return retried


async def run_resume(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """Exit 0 when the run ends with every job done, 1 when some failed or were left, 130 on Ctrl-C."""
    settings = settings_from(args, env)
    if not args.emulated:
        settings.require_credentials()
    db = await open_db(args, env)
    clock = SystemClock()
    try:
        if await queries.run(db, args.run_id) is None:
            print(f"clipcrawler: no run {args.run_id}", file=sys.stderr)
            return 1
        async with twitch(args, settings) as (http, crawl_settings):
            runner = LocalRunner(db, http, crawl_settings, clock, concurrency=args.concurrency)
            with Interrupts(runner) as interrupts:
                resumed = await resume_unfinished(
                    db,
                    runner.queue,
                    clock,
                    run_id=args.run_id,
                    postpone_seconds=crawl_settings.sweep_after_minutes * 60,
                )
                if not resumed.job_ids and not resumed.fan_outs:
                    why = f"; {resumed.describe()}" if resumed.leased else ""
                    print(
                        f"clipcrawler: run {args.run_id} has no unfinished jobs to resume{why}",
                        file=sys.stderr,
                    )
                    return 1
                print(f"clipcrawler: {resumed.describe()}", file=sys.stderr)
                drain = asyncio.create_task(runner.drain())
                interrupts.target = drain
                try:
                    await drain
                except asyncio.CancelledError:
                    if not interrupts.hard:
                        raise
                await runner.leases.release(clock.now())
        text = await show_run(db, args.run_id, clock.now(), as_json=args.json)
        row = await queries.run(db, args.run_id)
    finally:
        await db.close()
    print(text)
    if interrupts.stopped:
        return EXIT_INTERRUPTED
    return (
        0 if row is not None and row["status"] == RunStatus.FINISHED and int(row["jobs_failed"]) == 0 else 1
    )


def _run_line(row: dict[str, Any], now: float) -> dict[str, Any]:
    return {
        "run": row["id"],
        "status": row["status"],
        "kind": row["kind"],
        "opened": row["created_at"],
        "duration": duration(queries.duration_s(row, now)),
        "streamers": row["jobs_total"],
        "crawled": row["jobs_done"],
        "failed": row["jobs_failed"],
        "new": row["clips_new"],
        "updated": row["clips_updated"],
    }
