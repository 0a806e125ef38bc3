"""`clipcrawler demo` (emulated Twitch) and `clipcrawler crawl` (real Twitch): one manual run each."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Mapping
from typing import Any

import httpx

from local.commands.common import int_between, open_db, settings_from
from local.emulated import emulator_client, emulator_settings
from local.emulator import EmulatorConfig, HelixWorld, create_emulator_app
from local.interrupts import EXIT_INTERRUPTED, Interrupts
from local.progress import Progress
from local.queue import MAX_CONCURRENCY
from local.reachability import UnreachableStop
from local.resume import resume_unfinished
from local.runner import LocalRunner
from local.sqlite_db import SqliteDatabase
from local.summary import RunSummary, summarise
from producer.streamers import add_streamers
from shared.clock import SystemClock
from shared.config import Settings
from shared.errors import InvalidInput

MAX_DEMO_STREAMERS = 100_000


def register(commands: Any) -> None:
    demo = commands.add_parser("demo", help="crawl emulated streamers end to end, no account needed")
    demo.add_argument(
        "--streamers",
        type=int_between(1, MAX_DEMO_STREAMERS),
        default=200,
        help="emulated streamers (default 200)",
    )
    demo.add_argument("--seed", type=int, default=1, help="the emulator's world (default 1)")
    demo.add_argument("--latency-ms", type=float, default=0.0, help="simulated Helix latency per call")
    _flags(demo)
    demo.set_defaults(handler=lambda args, env: _report(args, asyncio.run(run_demo(args, env))))
    crawl = commands.add_parser("crawl", help="crawl the streamers in the database from Twitch")
    _flags(crawl)
    crawl.set_defaults(handler=lambda args, env: _report(args, asyncio.run(run_crawl(args, env))))


def _flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--concurrency",
        type=int_between(1, MAX_CONCURRENCY),
        default=50,
        help=f"consumer invocations at once, 1-{MAX_CONCURRENCY} (default 50)",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")


def _report(args: argparse.Namespace, summary: RunSummary) -> int:
    print(json.dumps(summary.as_dict()) if args.json else summary.render())
    if summary.stopped and summary.stopped.startswith("interrupted"):
        return EXIT_INTERRUPTED
    return 0 if summary.failed == 0 and not summary.stopped else 1


async def run_demo(args: argparse.Namespace, env: Mapping[str, str]) -> RunSummary:
    if args.latency_ms < 0:
        raise InvalidInput(f"--latency-ms has value {args.latency_ms!r}; expected 0 or more")
    clock = SystemClock()
    config = EmulatorConfig(latency_s=args.latency_ms / 1000, latency_jitter_s=args.latency_ms / 4000)
    world = HelixWorld(args.seed, args.streamers, clock=clock)
    settings = emulator_settings(settings_from(args, env), config)
    db = await open_db(args, env, create=True)
    try:
        async with emulator_client(create_emulator_app(world, config)) as http:
            await add_streamers(db, http, settings, clock, [s.login for s in world.all_streamers()])
            return await crawl_once(db, http, settings, clock, args, mode="demo")
    finally:
        await db.close()


async def run_crawl(args: argparse.Namespace, env: Mapping[str, str]) -> RunSummary:
    settings = settings_from(args, env)
    settings.require_credentials()
    db = await open_db(args, env, create=True)
    watch = UnreachableStop()
    try:
        async with httpx.AsyncClient(transport=watch.transport) as http:
            return await crawl_once(db, http, settings, SystemClock(), args, mode="crawl", watch=watch)
    finally:
        await db.close()


async def crawl_once(
    db: SqliteDatabase,
    http: httpx.AsyncClient,
    settings: Settings,
    clock: SystemClock,
    args: argparse.Namespace,
    *,
    mode: str,
    watch: UnreachableStop | None = None,
) -> RunSummary:
    """One manual run, drained to the end, with a progress bar unless --json; Ctrl-C stops it cleanly.

    Unfinished jobs of earlier runs (an interrupted run, say) are sent again first and finish with it.
    """
    runner = LocalRunner(db, http, settings, clock, concurrency=args.concurrency)
    if watch is not None:
        watch.runner = runner
    began = time.perf_counter()
    with Interrupts(runner) as interrupts:
        resumed = await resume_unfinished(
            db, runner.queue, clock, postpone_seconds=settings.sweep_after_minutes * 60
        )
        if resumed.describe():
            print(f"clipcrawler: {resumed.describe()}", file=sys.stderr)
        started = await runner.tick()
        drain = asyncio.create_task(runner.drain())
        interrupts.target = drain
        async with Progress(
            db,
            started.run_id,
            total=started.jobs + len(resumed.job_ids),
            stream=sys.stderr,
            enabled=not args.json,
            resumed_job_ids=resumed.job_ids,
        ):
            try:
                await drain
            except asyncio.CancelledError:
                if not interrupts.hard:
                    raise
        released = await runner.leases.release(clock.now())
    stopped = None
    if watch is not None and watch.reason is not None:
        stopped = watch.reason
        await watch.close_run(db, started.run_id, clock)
    elif interrupts.hard:
        stopped = f"interrupted at once (Ctrl-C twice); {released} jobs in flight handed back"
    elif interrupts.stopped:
        stopped = "interrupted (Ctrl-C)"
    return await summarise(
        db,
        started,
        mode=mode,
        wall_s=time.perf_counter() - began,
        invocations=runner.invocations,
        resumed_job_ids=resumed.job_ids,
        stopped=stopped,
    )
