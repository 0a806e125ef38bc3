"""`clipcrawler soak`: the fault-injection soak scenario (a benchmark-style check, not a test)."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from local.soak import SoakConfig, SoakReport, run_soak

_DEFAULTS = SoakConfig()


def register(commands: Any) -> None:
    soak = commands.add_parser(
        "soak",
        help="crawl emulated streamers through injected faults; fail if anything was lost",
        description="Runs the real producer and consumer on a virtual clock against the Helix emulator "
        "with faults injected, then prints lost clips, duplicate clips, stuck jobs, DLQ entries, "
        "failed jobs and the most subrequests any consumer invocation made. Exits 1 unless the "
        "first five are 0 and the subrequests fit the plan. Always uses a fresh database "
        "(see --keep-db).",
    )
    soak.add_argument(
        "--streamers",
        type=_positive,
        default=_DEFAULTS.streamers,
        help=f"emulated streamers (default {_DEFAULTS.streamers:,})",
    )
    soak.add_argument(
        "--seed",
        type=int,
        default=_DEFAULTS.seed,
        help="seeds the world and every fault; the same seed replays the same faults",
    )
    soak.add_argument(
        "--ticks",
        type=_positive,
        default=_DEFAULTS.ticks,
        help=f"hourly cron ticks (default {_DEFAULTS.ticks})",
    )
    soak.add_argument(
        "--concurrency",
        type=_positive,
        default=_DEFAULTS.concurrency,
        help=f"consumer invocations at once (default {_DEFAULTS.concurrency})",
    )
    soak.add_argument(
        "--clips-per-day",
        type=int,
        nargs=2,
        metavar=("LOW", "HIGH"),
        default=_DEFAULTS.clips_per_day,
        help="range of the streamers' mean clips per day "
        f"(default {_DEFAULTS.clips_per_day[0]} {_DEFAULTS.clips_per_day[1]})",
    )
    soak.add_argument("--plan", choices=("free", "paid"), default=_DEFAULTS.plan, help="subrequest limits")
    for flag, name, what in (
        ("--duplicates", "duplicate_rate", "share of deliveries delivered twice"),
        ("--crashes", "crash_rate", "share of consumer invocations that crash after a D1 call"),
        ("--server-errors", "server_error_rate", "share of Helix requests answered 500/503"),
        ("--rate-limits", "rate_limit_rate", "chance a Helix request opens a 429 burst"),
        ("--reorder", "reorder_rate", "share of deliveries taken out of order"),
        ("--lost-acks", "lost_ack_rate", "share of acks lost (the message comes back)"),
        ("--delays", "delay_rate", "share of deliveries held back up to 5 minutes"),
        ("--timeouts", "timeout_rate", "share of Helix answers lost to a read timeout"),
        ("--repeat-pages", "repeat_page_rate", "share of Get Clips pages answered with the previous one"),
        ("--loop-cursors", "loop_cursor_rate", "share of Get Clips cursors pointing back to an earlier page"),
    ):
        soak.add_argument(
            flag,
            dest=name,
            type=_rate,
            default=getattr(_DEFAULTS, name),
            metavar="RATE",
            help=f"{what} (default {getattr(_DEFAULTS, name):g})",
        )
    soak.add_argument(
        "--token-expiries",
        type=int,
        default=_DEFAULTS.token_expiries,
        help=f"times every app token is revoked mid-run (default {_DEFAULTS.token_expiries})",
    )
    soak.add_argument(
        "--keep-db", metavar="PATH", help="write the soak's database here (a new file) to inspect it"
    )
    soak.add_argument("--json", action="store_true", help="print the report as one JSON object")
    soak.set_defaults(handler=handle)


def handle(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    config = SoakConfig(
        streamers=args.streamers,
        seed=args.seed,
        ticks=args.ticks,
        concurrency=args.concurrency,
        plan=args.plan,
        clips_per_day=tuple(args.clips_per_day),
        duplicate_rate=args.duplicate_rate,
        crash_rate=args.crash_rate,
        server_error_rate=args.server_error_rate,
        rate_limit_rate=args.rate_limit_rate,
        token_expiries=args.token_expiries,
        reorder_rate=args.reorder_rate,
        lost_ack_rate=args.lost_ack_rate,
        delay_rate=args.delay_rate,
        timeout_rate=args.timeout_rate,
        repeat_page_rate=args.repeat_page_rate,
        loop_cursor_rate=args.loop_cursor_rate,
    )
    if args.keep_db and Path(args.keep_db).exists():
        raise SystemExit(f"clipcrawler soak: --keep-db {args.keep_db!r} already exists; give a new path")
    report: SoakReport = asyncio.run(run_soak(config, args.keep_db or ":memory:"))
    print(json.dumps(report.as_dict()) if args.json else report.render())
    return 0 if report.ok else 1


def _rate(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {raw!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"a rate is between 0 and 1, got {raw!r}")
    return value


def _positive(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {raw!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {raw!r}")
    return value
