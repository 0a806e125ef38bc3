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

from local.commands.common import db_path, settings_from
from local.emulated import emulator_client, emulator_settings
from local.emulator import EmulatorConfig, HelixWorld, create_emulator_app
from local.progress import Progress
from local.runner import LocalRunner
from local.sqlite_db import SqliteDatabase
from local.summary import RunSummary, summarise
from producer.streamers import add_streamers
from shared.clock import SystemClock
from shared.config import Settings


def register(commands: Any) -> None:
    demo = commands.add_parser("demo", help="crawl emulated streamers end to end, no account needed")
    demo.add_argument("--streamers", type=int, default=200, help="emulated streamers (default 200)")
    demo.add_argument("--seed", type=int, default=1, help="the emulator's world (default 1)")
    demo.add_argument("--latency-ms", type=float, default=0.0, help="simulated Helix latency per call")
    _flags(demo)
    demo.set_defaults(handler=lambda args, env: _report(args, asyncio.run(run_demo(args, env))))
    crawl = commands.add_parser("crawl", help="crawl the streamers in the database from Twitch")
    _flags(crawl)
    crawl.set_defaults(handler=lambda args, env: _report(args, asyncio.run(run_crawl(args, env))))


def _flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--concurrency", type=int, default=50, help="consumer invocations at once (default 50)")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")


def _report(args: argparse.Namespace, summary: RunSummary) -> int:
    print(json.dumps(summary.as_dict()) if args.json else summary.render())
    return 0 if summary.failed == 0 else 1


async def run_demo(args: argparse.Namespace, env: Mapping[str, str]) -> RunSummary:
    clock = SystemClock()
    config = EmulatorConfig(latency_s=args.latency_ms / 1000, latency_jitter_s=args.latency_ms / 4000)
    world = HelixWorld(args.seed, args.streamers, clock=clock)
    settings = emulator_settings(settings_from(args, env), config)
    db = await SqliteDatabase.open(db_path(args, env))
    try:
        async with emulator_client(create_emulator_app(world, config)) as http:
            await add_streamers(db, http, settings, clock, [s.login for s in world.all_streamers()])
            return await crawl_once(db, http, settings, clock, args, mode="demo")
    finally:
        await db.close()


async def run_crawl(args: argparse.Namespace, env: Mapping[str, str]) -> RunSummary:
    settings = settings_from(args, env)
    settings.require_credentials()
    db = await SqliteDatabase.open(db_path(args, env))
    try:
        async with httpx.AsyncClient() as http:
            return await crawl_once(db, http, settings, SystemClock(), args, mode="crawl")
    finally:
        await db.close()


async def crawl_once(db: SqliteDatabase, http: httpx.AsyncClient, settings: Settings, clock: SystemClock,
                     args: argparse.Namespace, *, mode: str) -> RunSummary:
    """One manual run, drained to the end, with a progress bar unless --json."""
    runner = LocalRunner(db, http, settings, clock, concurrency=args.concurrency)
    began = time.perf_counter()
    started = await runner.tick()
    async with Progress(db, started.run_id, total=started.jobs, stream=sys.stderr, enabled=not args.json):
        await runner.drain()
    return await summarise(db, started, mode=mode, wall_s=time.perf_counter() - began,
                           invocations=runner.invocations)
