"""Measure what crawls cost: the real producer and consumer on Miniflare's D1 against the Helix emulator.

Two ways. The busy case (every streamer clips around the clock, so every one is crawled every hour): a few
hourly
crawls straight on Miniflare's D1. A world with quiet streamers is crawled on the adaptive schedule, where a
day's
cost depends on who is due at each tick: a day of hourly ticks on SQLite, each statement charged the rows D1
metered for its kind in a short calibration of the same world on Miniflare (Miniflare answers in ~13 ms a
round
trip, too slow for a day of a few thousand jobs), as bench/week.py does for a week.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from local.clock import VirtualClock
from local.cost_model import Usage, queue_operations
from local.cost_world import World
from local.d1_calibration import CLIP_UPSERT, Calibration, CountingDatabase
from local.d1_meter import Meter, MiniflareD1
from local.emulated import emulator_client, emulator_settings
from local.emulator import EmulatorConfig, HelixWorld, create_emulator_app
from local.runner import LocalRunner
from local.sqlite_db import SqliteDatabase
from producer.streamers import add_streamers
from shared.config import Settings
from shared.ports import Database

HOUR = 3600
START = 1_790_035_200.0  # a midnight (UTC)
VIEWS_SETTLE_S = 3 * HOUR  # quiet worlds: a clip gets most of its views in its first hours
CALIBRATION_CRAWLS = (
    3  # the first (a backfill: only inserts) and two steady ones, so new and rewritten clips differ
)
NAIVE_TIERS = ("1,1,1", "24,168")  # calibration crawls every streamer every hour


@dataclass(frozen=True)
class Measured:
    """The first crawl (it backfills the lookback) and the steady hourly crawls after it."""

    first: Usage
    steady: list[Usage]

    @property
    def steady_mean(self) -> Usage:
        total = Usage()
        for crawl in self.steady:
            total = total + crawl
        return total.times(1 / len(self.steady)) if self.steady else total


class HelixCounter:
    """An emulator `wrap` that counts Helix API calls (token minting is not a Helix call)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, name: str, handler: Any) -> Any:
        async def counted(request: Any) -> Any:
            if name not in ("token", "validate"):
                self.calls += 1
            return await handler(request)

        return counted

    def take(self) -> int:
        calls, self.calls = self.calls, 0
        return calls


async def measure(
    settings: Settings,
    *,
    streamers: int = 200,
    crawls: int = 3,
    seed: int = 1,
    views_settle_s: float | None = None,
) -> Measured:
    """One cron-scheduled crawl per hour, `crawls + 1` times; every D1 figure is Miniflare's meta."""
    if crawls < 1:
        raise ValueError(f"need at least one steady crawl to measure, got crawls={crawls!r}")
    clock = VirtualClock(START)
    world = HelixWorld(seed, streamers, clock=clock, views_settle_s=views_settle_s)
    counter = HelixCounter()
    config = EmulatorConfig(rate_limit_points=100_000)
    http = emulator_client(create_emulator_app(world, config, wrap=counter))
    settings = emulator_settings(settings, config).with_(http_backoff_seconds=0)
    db = await MiniflareD1.open()
    try:
        runner = LocalRunner(db, http, settings, clock, concurrency=50, seed=seed)
        await add_streamers(db, http, settings, clock, [s.login for s in world.all_streamers()])
        counter.take()
        usages = []
        for hour in range(crawls + 1):
            clock.set(START + hour * HOUR)
            read0, written0 = db.meter.snapshot()
            q0 = _queue(runner)
            await runner.crawl(scheduled_time=clock.now())
            read1, written1 = db.meter.snapshot()
            sent, retried, invocations = (a - b for a, b in zip(_queue(runner), q0, strict=True))
            usages.append(
                Usage(
                    worker_requests=1 + invocations,
                    queue_operations=queue_operations(sent, retried),
                    d1_rows_read=read1 - read0,
                    d1_rows_written=written1 - written0,
                    helix_calls=counter.take(),
                )
            )
        return Measured(usages[0], usages[1:])
    finally:
        await db.close()
        await http.aclose()


@dataclass(frozen=True)
class MeasuredDay:
    """A world's first crawl and the day of hourly ticks after it, on the configured adaptive schedule."""

    first: Usage
    day: Usage  # the 24 ticks after the first crawl
    first_day: Usage  # the first crawl and the 23 ticks after it: the day a new deployment starts with
    ticks: int
    jobs: int  # streamer crawls in the day
    calibration_streamers: int


class _Crawl:
    """One emulated world, its database and the real producer and consumer, on a virtual clock."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        world: World,
        seed: int,
        views_settle_s: float | None,
        tiers: tuple[str, str] | None = None,
        streamers: int | None = None,
    ) -> None:
        self.clock = VirtualClock(START)
        self.world = HelixWorld(
            seed,
            streamers or world.streamers,
            clock=self.clock,
            activity=world.activity(seed, START),
            views_settle_s=views_settle_s,
        )
        self.counter = HelixCounter()
        config = EmulatorConfig(rate_limit_points=100_000)
        self.http = emulator_client(create_emulator_app(self.world, config, wrap=self.counter))
        self.settings = emulator_settings(settings, config).with_(http_backoff_seconds=0)
        if tiers is not None:
            self.settings = self.settings.with_(tier_hours=tiers[0], tier_active_within_hours=tiers[1])
        self.db = db
        self.runner = LocalRunner(db, self.http, self.settings, self.clock, concurrency=50, seed=seed)

    async def add_streamers(self) -> None:
        await add_streamers(
            self.db, self.http, self.settings, self.clock, [s.login for s in self.world.all_streamers()]
        )
        self.counter.take()

    async def tick(self, hour: int) -> tuple[Usage, int]:
        """The cron tick at `hour` and every message it leads to: usage without D1 rows, and jobs started."""
        self.clock.set(START + hour * HOUR)
        q0 = _queue(self.runner)
        started = await self.runner.crawl(scheduled_time=self.clock.now())
        sent, retried, invocations = (a - b for a, b in zip(_queue(self.runner), q0, strict=True))
        return Usage(
            worker_requests=1 + invocations,
            queue_operations=queue_operations(sent, retried),
            helix_calls=self.counter.take(),
        ), started.jobs


async def calibrate(
    settings: Settings,
    world: World,
    *,
    streamers: int,
    seed: int = 1,
    views_settle_s: float | None = VIEWS_SETTLE_S,
) -> Calibration:
    """D1's rows per statement kind, from a few hourly crawls of (the first `streamers` of) `world` on
    Miniflare.
    """
    db = await MiniflareD1.open()
    crawl = _Crawl(db, settings, world, seed, views_settle_s, tiers=NAIVE_TIERS, streamers=streamers)
    try:
        await crawl.add_streamers()
        db.meter = Meter()  # adding streamers is setup, not a crawl
        clip_crawls, new_before = [], 0
        for hour in range(CALIBRATION_CRAWLS):
            clips_before = list(db.meter.by_kind.get(CLIP_UPSERT, [0, 0, 0, 0]))
            await crawl.tick(hour)
            _, _, clip_rows, changes = (
                a - b
                for a, b in zip(db.meter.by_kind.get(CLIP_UPSERT, [0, 0, 0, 0]), clips_before, strict=True)
            )
            new = await _new_clips(db.observe) - new_before
            new_before += new
            clip_crawls.append((clip_rows, new, changes - new))
        return Calibration.from_meter(db.meter, clip_crawls)
    finally:
        await db.close()
        await crawl.http.aclose()


async def measure_day(
    settings: Settings,
    world: World,
    *,
    seed: int = 1,
    calibrate_streamers: int = 50,
    views_settle_s: float | None = VIEWS_SETTLE_S,
) -> MeasuredDay:
    """The first crawl and the next 24 hourly ticks of `world`, D1 rows charged as Miniflare metered them."""
    sample = max(1, min(calibrate_streamers, world.streamers))
    calibration = await calibrate(settings, world, streamers=sample, seed=seed, views_settle_s=views_settle_s)
    sqlite = await SqliteDatabase.open()
    db = CountingDatabase(sqlite)
    crawl = _Crawl(db, settings, world, seed, views_settle_s)
    try:
        await crawl.add_streamers()
        db.take()
        first, day, first_day, jobs, new_before = Usage(), Usage(), Usage(), 0, 0
        for hour in range(25):
            usage, started = await crawl.tick(hour)
            new_so_far = await _new_clips(sqlite.all)  # read past the tally: not the crawl's traffic
            rows = calibration.charge(db.take(), new_so_far - new_before)
            new_before = new_so_far
            usage = usage + Usage(
                d1_rows_read=sum(r for r, _ in rows.values()),
                d1_rows_written=sum(w for _, w in rows.values()),
            )
            if hour == 0:
                first = usage
            else:
                day, jobs = day + usage, jobs + started
            if hour < 24:
                first_day = first_day + usage
        return MeasuredDay(first, day, first_day, 24, jobs, sample)
    finally:
        await sqlite.close()
        await crawl.http.aclose()


async def _new_clips(read: Callable[..., Awaitable[list[dict[str, Any]]]]) -> int:
    """Clips inserted by every run so far (the runs' own exact counter)."""
    rows = await read("SELECT coalesce(sum(clips_new), 0) AS new FROM runs")
    return int(rows[0]["new"])


def _queue(runner: LocalRunner) -> tuple[int, int, int]:
    q, d = runner.queue.stats, runner.dlq.stats
    return q.sent + d.sent, q.retried + d.retried, q.invocations + d.invocations
