"""`clipcrawler cost`: one crawl measured on Miniflare's D1, projected over a day and a month against the plans."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from local.cost_model import Projection, render
from local.cost_run import measure
from local.d1_meter import node_available
from shared.config import Settings
from shared.errors import ConfigError


def register(commands: Any) -> None:
    cost = commands.add_parser(
        "cost", help="measure a crawl's Workers, Queues, D1 and Helix usage and project it against the plans",
        description="Runs the real producer and consumer against the Helix emulator on Miniflare's D1 (rows "
                    "read/written are D1's own meta), every streamer clipping around the clock (the busy case).")
    cost.add_argument("--streamers", type=int, default=200, help="streamers in the emulated world (default 200)")
    cost.add_argument("--crawls", type=int, default=3, help="steady hourly crawls to average, after the first")
    cost.add_argument("--crawls-per-day", type=float, default=24.0,
                      help="cron ticks a day (default 24: the hourly cron)")
    cost.add_argument("--views-settle-hours", type=float, default=None,
                      help="clip views stop growing after about this long (default: they grow forever, so every "
                           "clip in the lookback changes every hour)")
    cost.add_argument("--seed", type=int, default=1)
    cost.add_argument("--json", action="store_true", help="print JSON")
    cost.set_defaults(handler=lambda args, env: asyncio.run(run(args, env)))


async def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    if not node_available():
        print("clipcrawler cost needs node and the pinned miniflare (npm ci) to read D1's own meter",
              file=sys.stderr)
        return 2
    if args.views_settle_hours is not None and args.views_settle_hours <= 0:
        print(f"--views-settle-hours must be > 0, got {args.views_settle_hours}", file=sys.stderr)
        return 2
    if args.streamers < 1 or args.crawls < 1 or args.crawls_per_day <= 0:
        print(f"--streamers and --crawls must be >= 1 and --crawls-per-day > 0, got {args.streamers}, "
              f"{args.crawls}, {args.crawls_per_day}", file=sys.stderr)
        return 2
    try:
        settings = Settings.from_env(env)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    settle = None if args.views_settle_hours is None else args.views_settle_hours * 3600
    measured = await measure(settings, streamers=args.streamers, crawls=args.crawls, seed=args.seed,
                             views_settle_s=settle)
    projection = Projection(measured.steady_mean, args.crawls_per_day)
    if args.json:
        print(json.dumps({"streamers": args.streamers, "tiers": settings.tier_hours,
                          "first_crawl": asdict(measured.first), "steady_crawls": [asdict(u) for u in measured.steady],
                          "projection": projection.to_json()}, indent=2))
        return 0
    first = measured.first
    print(f"{args.streamers} streamers, tiers every {settings.tier_hours} h, {args.crawls_per_day:g} crawls a day; "
          f"D1 rows from Miniflare's meta.")
    print(f"first crawl (backfills the lookback): {first.worker_requests:,.0f} Worker requests, "
          f"{first.queue_operations:,.0f} Queues ops, {first.d1_rows_read:,.0f} rows read, "
          f"{first.d1_rows_written:,.0f} rows written, {first.helix_calls:,.0f} Helix calls")
    print(f"steady crawl = mean of the next {args.crawls}; projected:")
    print(render(projection))
    return 0
