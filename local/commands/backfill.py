"""`clipcrawler backfill LOGIN... --since DATE`: a streamer's history, years back, resumable after Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Mapping
from typing import Any

import httpx

from local.backfill_progress import BackfillProgress
from local.commands.common import int_between, open_db, settings_from
from local.emulated import emulator_client, emulator_settings
from local.interrupts import EXIT_INTERRUPTED, Interrupts
from local.queue import MAX_CONCURRENCY
from local.resume import resume_unfinished
from local.runner import LocalRunner
from local.sqlite_db import SqliteDatabase
from producer.backfill_progress import describe, run_progress
from producer.core import start_run
from producer.streamers import add_streamers
from shared.backfill import backfill_range, parse_since
from shared.batch import Batch
from shared.clock import SystemClock
from shared.config import Settings
from shared.errors import InvalidInput
from shared.ports import Ports, Statement
from shared.timefmt import to_rfc3339
from shared.windows import Window


def register(commands: Any) -> None:
    backfill = commands.add_parser("backfill", help="crawl streamers' history back to --since (resumable)")
    backfill.add_argument("logins", nargs="+", metavar="LOGIN", help="streamers to backfill (added if new)")
    backfill.add_argument("--since", required=True, help="how far back: a date (2021-03-01) or RFC 3339 time")
    backfill.add_argument("--until", help="up to this date or time (default: now)")
    backfill.add_argument(
        "--emulated",
        action="store_true",
        help="backfill from the emulator's years-long history, no account needed",
    )
    backfill.add_argument("--seed", type=int, default=1, help="the emulated world (with --emulated)")
    backfill.add_argument(
        "--concurrency",
        type=int_between(1, MAX_CONCURRENCY),
        default=10,
        help=f"consumer invocations at once, 1-{MAX_CONCURRENCY} (default 10)",
    )
    backfill.add_argument("--json", action="store_true", help="print the jobs as one JSON object at the end")
    backfill.set_defaults(handler=lambda args, env: asyncio.run(run_backfill(args, env)))


def requested_range(args: argparse.Namespace, now: float) -> Window:
    """--since..--until (default now), checked; a one-line error names the bad value."""
    since = parse_since(args.since, now)
    until = parse_since(args.until, now + 1, "--until") if args.until else now
    if until <= since:
        raise InvalidInput(f"--until has value {args.until!r}, which is not after --since {args.since!r}")
    return backfill_range(since, until)


async def run_backfill(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    clock = SystemClock()
    window = requested_range(args, clock.now())
    if args.emulated:
        from local.emulated_history import history_emulator  # the emulator is loaded only when asked for

        app, config = history_emulator(args.seed, args.logins, clock)
        settings = emulator_settings(settings_from(args, env), config)
        http = emulator_client(app)
    else:
        settings = settings_from(args, env)
        settings.require_credentials()
        http = httpx.AsyncClient()
    db = await open_db(args, env, create=True)
    try:
        async with http:
            return await backfill(db, http, settings, clock, args, window)
    finally:
        await db.close()


async def unfinished_backfills(db: SqliteDatabase, window: Window) -> set[str]:
    """Streamers with an unfinished backfill from the same start: a rerun resumes those, and starts no other.

    The end is not compared: without --until it is "now", later on every run; the minutes between the two
    ends are the regular crawl's.
    """
    batch = Batch().add(
        Statement(
            "SELECT DISTINCT j.streamer_id FROM jobs AS j JOIN runs AS r ON r.id = j.run_id "
            "WHERE j.status NOT IN ('done', 'failed') AND r.backfill_from = ?1",
            (to_rfc3339(window.start),),
        ),
        "unfinished",
    )
    return {row["streamer_id"] for row in (await batch.run(db)).rows("unfinished")}


async def backfill(
    db: SqliteDatabase,
    http: httpx.AsyncClient,
    settings: Settings,
    clock: SystemClock,
    args: argparse.Namespace,
    window: Window,
) -> int:
    """Resume this backfill where an interrupted one stopped, or start it; drain it with progress lines."""
    added = await add_streamers(db, http, settings, clock, args.logins)
    if added.unknown:
        raise InvalidInput(f"Twitch knows no streamer {', '.join(map(repr, added.unknown))}")
    ids = [s["id"] for s in added.added]
    runner = LocalRunner(db, http, settings, clock, concurrency=args.concurrency)
    with Interrupts(runner) as interrupts:
        resumed = await resume_unfinished(
            db, runner.queue, clock, postpone_seconds=settings.sweep_after_minutes * 60
        )
        if resumed.describe():
            print(f"clipcrawler: {resumed.describe()}", file=sys.stderr)
        run_ids = sorted(resumed.jobs)
        covered = await unfinished_backfills(db, window)
        fresh = [i for i in ids if i not in covered]
        if fresh:
            ports = Ports(db=db, queue=runner.queue, clock=clock, http=http)
            started = await start_run(ports, settings, streamer_ids=fresh, backfill=window)
            run_ids.append(started.run_id)
            print(
                f"clipcrawler: backfill run {started.run_id}: {len(fresh)} streamers from "
                f"{to_rfc3339(window.start)} to {to_rfc3339(window.end)}",
                file=sys.stderr,
            )
        drain = asyncio.create_task(runner.drain())
        interrupts.target = drain
        async with BackfillProgress(db, run_ids, sys.stderr, enabled=not args.json):
            try:
                await drain
            except asyncio.CancelledError:
                if not interrupts.hard:
                    raise
        await runner.leases.release(clock.now())
    jobs = await run_progress(db, run_ids)
    if args.json:
        print(json.dumps({"runs": run_ids, "jobs": jobs}))
    else:
        for job in jobs:
            print(describe(job))
    if interrupts.stopped or interrupts.hard:
        print(
            "clipcrawler: interrupted; run `clipcrawler backfill` again with the same arguments to resume",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    return 0 if all(j["status"] == "done" for j in jobs) else 1
