"""`clipcrawler cost`: what a day of crawling your streamers costs on Cloudflare, against the plans'
quotas."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from local.commands.common import db_path
from local.cost_model import Projection, Usage, day_against_free, render
from local.cost_run import VIEWS_SETTLE_S, measure, measure_day
from local.cost_world import World, busy, seed_like, yours
from local.d1_meter import ROOT, node_available
from shared.config import Settings
from shared.errors import ConfigError

WORLDS = ("auto", "yours", "seed-like", "busy")


def register(commands: Any) -> None:
    cost = commands.add_parser(
        "cost",
        help="measure a day of crawling on Miniflare's D1 and project it against the Free and Paid plans",
        description="Runs the real producer and consumer against the Helix emulator, with D1 rows "
        "read/written "
        "as Miniflare's D1 meters them. By default it measures your streamers (how many, and how "
        "active each was, from the database) on the adaptive schedule; without a database holding "
        "streamers, a seed-like mix (a quarter streaming daily, the rest on some days or dormant). "
        "--world busy measures every streamer clipping around the clock.",
    )
    cost.add_argument(
        "--world",
        choices=WORLDS,
        default="auto",
        help="auto (default): yours if the database has active streamers, else seed-like",
    )
    cost.add_argument(
        "--streamers",
        type=int,
        default=None,
        help="streamers of the seed-like or busy world (default 200; yours: from the database)",
    )
    cost.add_argument(
        "--calibrate-streamers",
        type=int,
        default=200,
        help="streamers crawled on Miniflare to calibrate D1's rows per statement (default 200)",
    )
    cost.add_argument(
        "--crawls", type=int, default=3, help="busy: steady hourly crawls to average, after the first"
    )
    cost.add_argument(
        "--crawls-per-day",
        type=float,
        default=24.0,
        help="busy: cron ticks a day (default 24: the hourly cron)",
    )
    cost.add_argument(
        "--views-settle-hours",
        type=float,
        default=None,
        help=f"clip views stop growing after about this long (default {VIEWS_SETTLE_S // 3600} h; "
        "busy: they grow forever, so every clip in the lookback changes every hour)",
    )
    cost.add_argument("--seed", type=int, default=1)
    cost.add_argument("--json", action="store_true", help="print JSON")
    cost.set_defaults(handler=lambda args, env: asyncio.run(run(args, env)))


def choose_world(args: argparse.Namespace, env: Mapping[str, str]) -> World:
    """The world to measure, as asked, or by default the database's streamers when there are any."""
    count = 200 if args.streamers is None else args.streamers
    if args.world in ("auto", "yours"):
        path = Path(db_path(args, env))
        found = yours(path)
        if found is not None:
            if args.streamers is not None:
                raise ConfigError(
                    f"--streamers {args.streamers} applies to --world seed-like or busy; "
                    f"your streamers are the {found.streamers} active ones in {path}"
                )
            return found
        if args.world == "yours":
            raise ConfigError(
                f"{path} has no active streamers to measure: add some with `clipcrawler streamers "
                "add`, or pass --world seed-like"
            )
    if args.world == "busy":
        return busy(count)
    return seed_like(
        count, "" if args.world == "seed-like" else f"{db_path(args, env)} has no active streamers"
    )


async def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    if not node_available():
        print(
            f"clipcrawler cost needs node and the pinned miniflare to read D1's own meter: run `npm ci` in "
            f"{ROOT}",
            file=sys.stderr,
        )
        return 2
    if args.views_settle_hours is not None and args.views_settle_hours <= 0:
        print(f"--views-settle-hours must be > 0, got {args.views_settle_hours}", file=sys.stderr)
        return 2
    for name in ("streamers", "crawls", "calibrate_streamers"):
        value = getattr(args, name)
        if value is not None and value < 1:
            print(f"--{name.replace('_', '-')} must be >= 1, got {value}", file=sys.stderr)
            return 2
    if args.crawls_per_day <= 0:
        print(f"--crawls-per-day must be > 0, got {args.crawls_per_day}", file=sys.stderr)
        return 2
    try:
        settings = Settings.from_env(env)
        world = choose_world(args, env)
    except ConfigError as exc:
        print(f"clipcrawler: {exc}", file=sys.stderr)
        return 2
    if world.busy:
        return await _busy(args, settings, world)
    settle = VIEWS_SETTLE_S if args.views_settle_hours is None else args.views_settle_hours * 3600
    print(
        f"measuring {world.name}: {min(world.streamers, args.calibrate_streamers)} streamers on Miniflare's "
        "D1, "
        f"then a day of {world.streamers} on SQLite (about a minute for 200)...",
        file=sys.stderr,
    )
    day = await measure_day(
        settings, world, seed=args.seed, calibrate_streamers=args.calibrate_streamers, views_settle_s=settle
    )
    projection = Projection(day.day.times(1 / day.ticks), day.ticks)
    if args.json:
        print(
            json.dumps(
                {
                    "world": _world_json(world),
                    "tiers": settings.tier_hours,
                    "view_count_step": settings.view_count_step,
                    "first_crawl": asdict(day.first),
                    "day": asdict(day.day),
                    "first_day": asdict(day.first_day),
                    "jobs_in_day": day.jobs,
                    "first_day_free": day_against_free(day.first_day),
                    "calibration_streamers": day.calibration_streamers,
                    "projection": projection.to_json(),
                },
                indent=2,
            )
        )
        return 0
    print(f"measured world: {world.source}")
    print(
        f"adaptive schedule, tiers every {settings.tier_hours} h, {_views(settings)}; a day of {day.ticks} "
        "hourly "
        f"ticks crawled {day.jobs:,} streamers on SQLite, D1 rows charged as Miniflare's D1 metered them for "
        f"{day.calibration_streamers} of the streamers."
    )
    print(f"first crawl (backfills {settings.backfill_hours} h, once): {_usage(day.first)}")
    print(
        "the first day, with that crawl, against the Free plan: "
        + ", ".join(
            f"{q['metric']} {q['used']:,.0f} ({q['headroom']:.0%} "
            f"headroom{', EXCEEDED' if q['exceeded'] else ''})"
            for q in day_against_free(day.first_day)
        )
    )
    print("the day after, projected (crawl = the mean tick):")
    print(render(projection))
    print(
        "other worlds: --world seed-like (a quarter streaming daily), --world busy (every streamer clipping "
        "around the clock)"
    )
    return 0


async def _busy(args: argparse.Namespace, settings: Settings, world: World) -> int:
    settle = None if args.views_settle_hours is None else args.views_settle_hours * 3600
    measured = await measure(
        settings, streamers=world.streamers, crawls=args.crawls, seed=args.seed, views_settle_s=settle
    )
    projection = Projection(measured.steady_mean, args.crawls_per_day)
    if args.json:
        print(
            json.dumps(
                {
                    "world": _world_json(world),
                    "streamers": world.streamers,
                    "tiers": settings.tier_hours,
                    "view_count_step": settings.view_count_step,
                    "first_crawl": asdict(measured.first),
                    "steady_crawls": [asdict(u) for u in measured.steady],
                    "projection": projection.to_json(),
                },
                indent=2,
            )
        )
        return 0
    print(f"measured world: {world.source}")
    print(
        f"tiers every {settings.tier_hours} h, {_views(settings)}, {args.crawls_per_day:g} crawls a day; "
        "D1 rows from Miniflare's meta."
    )
    print(f"first crawl (backfills the lookback): {_usage(measured.first)}")
    print(f"steady crawl = mean of the next {args.crawls}; projected:")
    print(render(projection))
    return 0


def _world_json(world: World) -> dict[str, Any]:
    return {
        "name": world.name,
        "streamers": world.streamers,
        "profiles": world.counts(),
        "source": world.source,
    }


def _views(settings: Settings) -> str:
    if settings.view_count_step == 0 or settings.view_count_max_age_hours == 0:
        return "every view count exact"
    return (
        f"view counts rewritten once they moved {settings.view_count_step:.0%} or are "
        f"{settings.view_count_max_age_hours} h old (opt-in)"
    )


def _usage(usage: Usage) -> str:
    return (
        f"{usage.worker_requests:,.0f} Worker requests, {usage.queue_operations:,.0f} Queues ops, "
        f"{usage.d1_rows_read:,.0f} rows read, {usage.d1_rows_written:,.0f} rows written, "
        f"{usage.helix_calls:,.0f} Helix calls"
    )
