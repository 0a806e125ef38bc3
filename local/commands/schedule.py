"""`clipcrawler schedule`: the producer's cron, ticked on this machine, as a Raspberry Pi's cron job would."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Mapping
from typing import Any

from local.commands.common import int_between, open_db, settings_from
from local.commands.serve import twitch, twitch_flags
from local.cron import PRODUCER_TOML, Cron, producer_crons
from local.interrupts import EXIT_INTERRUPTED, Interrupts
from local.queue import MAX_CONCURRENCY
from local.reachability import UnreachableStop
from local.resume import resume_unfinished
from local.runner import LocalRunner
from local.summary import summarise
from shared.clock import SystemClock
from shared.timefmt import align_down, to_rfc3339


def register(commands: Any) -> None:
    schedule = commands.add_parser(
        "schedule",
        help="tick the producer on wrangler.producer.toml's cron, sweep included, until Ctrl-C",
        description="Opens a scheduled run at every firing time of the producer's cron (UTC), as Cloudflare "
        "does, and crawls the streamers that are due; each run first re-sends the unfinished "
        "jobs earlier runs left behind. With --once, runs the current minute's slot and exits, "
        "for a system cron line.",
    )
    schedule.add_argument("--cron", help=f"a cron expression instead of the one in {PRODUCER_TOML.name}")
    schedule.add_argument(
        "--once",
        action="store_true",
        help="run the slot of the current minute now and exit (for a system crontab)",
    )
    schedule.add_argument(
        "--concurrency",
        type=int_between(1, MAX_CONCURRENCY),
        default=50,
        help="consumer invocations at once (default 50)",
    )
    schedule.add_argument("--json", action="store_true", help="print each run's summary as one JSON object")
    twitch_flags(schedule)
    schedule.set_defaults(handler=lambda args, env: asyncio.run(run_schedule(args, env)))


async def run_schedule(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    crons = [Cron.parse(args.cron)] if args.cron else [Cron.parse(c) for c in producer_crons()]
    settings = settings_from(args, env)
    if not args.emulated:
        settings.require_credentials()
    clock = SystemClock()
    db = await open_db(args, env, create=True)
    watch = UnreachableStop()
    failed = False
    try:
        async with twitch(args, settings, transport=watch.transport) as (http, crawl_settings):
            runner = LocalRunner(db, http, crawl_settings, clock, concurrency=args.concurrency)
            with Interrupts(runner) as interrupts:
                if not args.once:
                    _say(
                        f"ticking the producer on {', '.join(c.expression for c in crons)} (UTC); "
                        f"next run at {to_rfc3339(_next(crons, clock.now()))}; Ctrl-C to stop"
                    )
                while not interrupts.stopped:
                    slot = align_down(clock.now(), 60) if args.once else _next(crons, clock.now())
                    while not args.once and clock.now() < slot and not interrupts.stopped:
                        await asyncio.sleep(min(1.0, slot - clock.now()))
                    if interrupts.stopped:
                        break
                    runner = LocalRunner(db, http, crawl_settings, clock, concurrency=args.concurrency)
                    interrupts.runner = watch.runner = runner
                    began = time.perf_counter()
                    postpone = crawl_settings.sweep_after_minutes * 60
                    resumed = await resume_unfinished(db, runner.queue, clock, postpone_seconds=postpone)
                    if resumed.describe():
                        _say(resumed.describe())
                    started = await runner.tick(scheduled_time=slot)
                    if not started.opened and not resumed.job_ids:
                        _say(f"the slot {to_rfc3339(slot)} already has run {started.run_id}: nothing to do")
                        if args.once:
                            break
                        continue
                    drain = asyncio.create_task(runner.drain())
                    interrupts.target = drain
                    try:
                        await drain
                    except asyncio.CancelledError:
                        if not interrupts.hard:
                            raise
                    finally:
                        interrupts.target = asyncio.current_task()
                    await runner.leases.release(clock.now())
                    stopped = "interrupted (Ctrl-C)" if interrupts.stopped else watch.reason
                    if watch.reason is not None:  # this slot's run closes; the next slot tries Twitch again
                        await watch.close_run(db, started.run_id, clock)
                    if watch.reason is not None or watch.refused:  # said once a slot, the next logs as usual
                        watch.reset()
                    summary = await summarise(
                        db,
                        started,
                        mode="schedule",
                        wall_s=time.perf_counter() - began,
                        invocations=runner.invocations,
                        resumed_job_ids=resumed.job_ids,
                        stopped=stopped,
                    )
                    failed = failed or summary.failed > 0 or bool(stopped and not interrupts.stopped)
                    print(json.dumps(summary.as_dict()) if args.json else summary.render(), flush=True)
                    if args.once:
                        break
    finally:
        await db.close()
    if interrupts.stopped:
        return EXIT_INTERRUPTED
    return 1 if failed else 0


def _next(crons: list[Cron], now: float) -> float:
    return min(c.next_after(now) for c in crons)


def _say(text: str) -> None:
    print(f"clipcrawler schedule: {text}", file=sys.stderr, flush=True)
