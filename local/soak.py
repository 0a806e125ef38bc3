"""The soak scenario: many streamers, hourly ticks, faults everywhere; then count what went wrong.

It runs the real producer and consumer on a virtual clock against the emulator, with duplicate and
reordered deliveries, consumers crashing mid-message, Helix 5xx, 429 bursts and a revoked token, and
checks the database afterwards against the emulator's world: no clip lost, none twice, no job stuck,
nothing dead-lettered, and no invocation over the plan's subrequest limits.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import asdict, dataclass, replace
from typing import Any

import httpx

from local.clock import VirtualClock
from local.crash import ConsumerCrashes, CrashingRunner, CrashInjector
from local.emulated import EMULATOR_URL, emulator_settings
from local.emulator import EmulatorConfig, HelixWorld, create_emulator_app
from local.emulator.faults import HelixFaultInjector, HelixFaults
from local.queue_faults import QueueFaultInjector, QueueFaults
from local.sqlite_db import SqliteDatabase
from producer.streamers import add_streamers
from shared.config import Settings
from shared.errors import ConfigError
from shared.ports import Database, OutgoingMessage, Ports, QueueSender, Result, Row, Statement
from shared.states import UNFINISHED_JOBS, JobStatus
from shared.timefmt import parse_rfc3339

START = 1_790_000_000.0  # 2026-09-21T14:13:20Z
HOUR = 3600
EXAMPLES = 5


@dataclass(frozen=True)
class SoakConfig:
    """The scenario; the defaults are issue 4's: 1,000 streamers, 10% duplicates, 5% crashes, 5% 5xx."""

    streamers: int = 1000
    seed: int = 1
    ticks: int = 2  # hourly cron ticks, each drained to the end before the next
    concurrency: int = 10  # consumer invocations at once
    clips_per_day: tuple[int, int] = (10, 30)  # each streamer's mean rate is drawn from this range
    plan: str = "free"
    duplicate_rate: float = 0.10
    crash_rate: float = 0.05
    server_error_rate: float = 0.05
    rate_limit_rate: float = 0.002  # chance a Helix request opens a 429 burst
    token_expiries: int = 1  # spread over the first tick's Helix requests
    reorder_rate: float = 0.0
    lost_ack_rate: float = 0.0
    delay_rate: float = 0.0
    timeout_rate: float = 0.0  # Helix answers lost to a read timeout
    repeat_page_rate: float = 0.0  # these two need windows of more than one page (see clips_per_day)
    loop_cursor_rate: float = 0.0

    def __post_init__(self) -> None:
        for name in ("streamers", "ticks", "concurrency"):
            if getattr(self, name) < 1:
                raise ConfigError(f"SoakConfig.{name} is {getattr(self, name)!r}; it must be at least 1")
        low, high = self.clips_per_day
        if not 0 <= low <= high:
            raise ConfigError(f"SoakConfig.clips_per_day is {self.clips_per_day!r}; need 0 <= low <= high")
        if self.token_expiries < 0:
            raise ConfigError(
                f"SoakConfig.token_expiries is {self.token_expiries!r}; it must not be negative"
            )

    def helix_faults(self) -> HelixFaults:
        every = max(1, self.streamers // (self.token_expiries + 1))
        return HelixFaults(
            seed=self.seed,
            server_error_rate=self.server_error_rate,
            rate_limit_rate=self.rate_limit_rate,
            read_timeout_rate=self.timeout_rate,
            repeat_page_rate=self.repeat_page_rate,
            loop_cursor_rate=self.loop_cursor_rate,
            expire_tokens_at=tuple(every * (i + 1) for i in range(self.token_expiries)),
        )

    def queue_faults(self) -> QueueFaults:
        return QueueFaults(
            seed=self.seed,
            duplicate_rate=self.duplicate_rate,
            lost_ack_rate=self.lost_ack_rate,
            reorder_rate=self.reorder_rate,
            delay_rate=self.delay_rate,
        )

    def crashes(self) -> ConsumerCrashes:
        return ConsumerCrashes(seed=self.seed, rate=self.crash_rate)


@dataclass(frozen=True)
class SoakReport:
    """What the soak found. The first five counts must be 0, and the subrequests within the limits."""

    config: SoakConfig
    lost_clips: int
    duplicate_clips: int
    stuck_jobs: int
    dlq_entries: int
    failed_jobs: int
    max_subrequests: int  # the most one consumer invocation made, counted at the ports
    max_external: int
    max_internal: int
    limits: tuple[int, int]  # the plan's (external, internal) per invocation
    runs: int
    jobs: int
    clips: int
    expected_clips: int
    invocations: int
    outcomes: dict[str, int]
    injected: dict[str, int]
    examples: dict[str, list[str]]  # a few offending ids per non-zero count
    wall_s: float

    @property
    def within_limits(self) -> bool:
        return self.max_external <= self.limits[0] and self.max_internal <= self.limits[1]

    @property
    def ok(self) -> bool:
        problems = (
            self.lost_clips,
            self.duplicate_clips,
            self.stuck_jobs,
            self.dlq_entries,
            self.failed_jobs,
        )
        return not any(problems) and self.within_limits

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"ok": self.ok}

    def render(self) -> str:
        c = self.config
        rates = (
            f"{c.duplicate_rate:.0%} duplicate deliveries, {c.crash_rate:.0%} consumer crashes, "
            f"{c.server_error_rate:.0%} Helix 5xx, {c.rate_limit_rate:.1%} 429-burst starts, "
            f"{c.token_expiries} token {'expiry' if c.token_expiries == 1 else 'expiries'}"
        )
        extra = [
            f"{rate:.0%} {name}"
            for name, rate in (
                ("reordered", c.reorder_rate),
                ("lost acks", c.lost_ack_rate),
                ("delayed", c.delay_rate),
                ("timeouts", c.timeout_rate),
                ("repeated pages", c.repeat_page_rate),
                ("looping cursors", c.loop_cursor_rate),
            )
            if rate
        ]
        lines = [
            f"clipcrawler soak: seed {c.seed}, {_plural(c.streamers, 'streamer')}, "
            f"{_plural(c.ticks, 'tick')}, concurrency {c.concurrency}, {'OK' if self.ok else 'FAILED'} "
            f"in {self.wall_s:.2f} s",
            f"  faults          {rates}" + "".join(f", {e}" for e in extra),
            f"  lost clips      {self.lost_clips}   (of {self.expected_clips:,} the emulator had in the "
            f"crawled windows; {self.clips:,} stored)",
            f"  duplicate clips {self.duplicate_clips}",
            f"  stuck jobs      {self.stuck_jobs}   (of {self.jobs:,} in {_plural(self.runs, 'run')})",
            f"  DLQ entries     {self.dlq_entries}",
            f"  failed jobs     {self.failed_jobs}",
            f"  max subrequests per invocation: {self.max_subrequests} (external {self.max_external} of "
            f"{self.limits[0]}, internal {self.max_internal} of {self.limits[1]})",
            f"  invocations     {self.invocations:,}: " + _counts(self.outcomes),
            "  injected        " + _counts(self.injected),
        ]
        lines += [f"  e.g. {name}: {', '.join(ids)}" for name, ids in self.examples.items() if ids]
        if not self.ok:
            lines.append(
                f"  replay: the same command again; seed {c.seed} with these rates and concurrency "
                "gives the same fault schedule"
            )
        return "\n".join(lines)


async def run_soak(config: SoakConfig, db_path: str = ":memory:") -> SoakReport:
    """Run the scenario to the end and check the database against the emulator's world."""
    began = time.perf_counter()
    clock = VirtualClock(START)
    world = HelixWorld(config.seed, config.streamers, config.clips_per_day, clock=clock)
    emulator_config = EmulatorConfig(seed=config.seed)
    helix = HelixFaultInjector(config.helix_faults())
    app = create_emulator_app(world, emulator_config, wrap=helix.wrap)
    transport = helix.transport(httpx.ASGITransport(app=app), clock=clock)
    tallies: list[_Tally] = []
    settings = emulator_settings(Settings(plan=config.plan), emulator_config)
    db = await SqliteDatabase.open(db_path)
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url=EMULATOR_URL, event_hooks={"request": [_count_fetch]}
        ) as http:
            crashes = CrashInjector(config.crashes())
            runner = _SoakRunner(
                db,
                http,
                settings,
                clock,
                concurrency=config.concurrency,
                seed=config.seed,
                crashes=crashes,
                tallies=tallies,
            )
            queue = QueueFaultInjector(runner.queue, config.queue_faults())
            helix.active = False  # the streamer list is set up, not soaked
            await add_streamers(db, http, settings, clock, [s.login for s in world.all_streamers()])
            helix.active = True
            run_ids = []
            for tick in range(config.ticks):
                scheduled = START + tick * HOUR
                clock.set(scheduled)
                started = await runner.tick(scheduled_time=scheduled)
                run_ids.append(started.run_id)
                await runner.drain()
            checks = await check_database(db, world, run_ids)
    finally:
        await db.close()
    injected = (
        {f"helix.{k}": v for k, v in helix.injected.items()}
        | {f"queue.{k}": v for k, v in queue.injected.items()}
        | {f"consumer.{k}": v for k, v in crashes.injected.items() if k != "invocations"}
    )
    dropped = runner.queue.stats.dropped + runner.dlq.stats.dropped
    return SoakReport(
        config=config,
        lost_clips=len(checks.lost),
        duplicate_clips=checks.duplicates,
        stuck_jobs=len(checks.stuck),
        dlq_entries=checks.dead_letters + dropped,
        failed_jobs=len(checks.failed),
        max_subrequests=max((t.total for t in tallies), default=0),
        max_external=max((t.external for t in tallies), default=0),
        max_internal=max((t.internal for t in tallies), default=0),
        limits=settings.limits,
        runs=len(run_ids),
        jobs=checks.jobs,
        clips=checks.clips,
        expected_clips=checks.expected,
        invocations=len(tallies),
        outcomes=dict(sorted(runner.invocations.outcomes.items())),
        injected=dict(sorted(injected.items())),
        examples={
            "lost clips": sorted(checks.lost)[:EXAMPLES],
            "stuck jobs": checks.stuck[:EXAMPLES],
            "failed jobs": checks.failed[:EXAMPLES],
        },
        wall_s=round(time.perf_counter() - began, 3),
    )


@dataclass
class SoakChecks:
    """The database compared with the emulator's world, for the runs of a soak."""

    jobs: int
    clips: int
    expected: int
    duplicates: int
    dead_letters: int
    lost: set[str]
    stuck: list[str]
    failed: list[str]


async def check_database(db: Database, world: HelixWorld, run_ids: Sequence[int]) -> SoakChecks:
    """Compare the database with what the emulator had in every window a job crawled."""
    marks = ", ".join("?" * len(run_ids))
    jobs = await db.all(
        f"SELECT id, streamer_id, status, crawl_from, crawl_to, started_at, error FROM jobs "
        f"WHERE run_id IN ({marks}) ORDER BY id",
        *run_ids,
    )
    stored = {row["id"] for row in await db.all("SELECT id FROM clips")}
    duplicates = await db.first("SELECT count(*) - count(DISTINCT id) AS n FROM clips")
    dead = await db.first("SELECT count(*) AS n FROM dead_letters")
    expected: set[str] = set()
    for job in jobs:
        if job["crawl_from"] and job["crawl_to"] and job["started_at"]:
            expected |= _clips_at(
                world,
                parse_rfc3339(job["started_at"]),
                job["streamer_id"],
                parse_rfc3339(job["crawl_from"]),
                parse_rfc3339(job["crawl_to"]),
            )
    return SoakChecks(
        jobs=len(jobs),
        clips=len(stored),
        expected=len(expected),
        duplicates=int(_n(duplicates)),
        dead_letters=int(_n(dead)),
        lost=expected - stored,
        stuck=[
            f"{j['id']} ({j['streamer_id']}, {j['status']})" for j in jobs if j["status"] in UNFINISHED_JOBS
        ],
        failed=[
            f"{j['id']} ({j['streamer_id']}: {j['error']})" for j in jobs if j["status"] == JobStatus.FAILED
        ],
    )


def _clips_at(world: HelixWorld, when: float, streamer_id: str, start: float, end: float) -> set[str]:
    """Ids of the clips the world showed at `when` in [start, end): all of them must have been stored.

    Clips that became visible after the job began may or may not have been crawled, so they don't count.
    """
    live = world.clock
    world.clock = _StoppedClock(when)  # the run is over: nothing else reads the world now
    try:
        return {clip["id"] for clip in world.clips(streamer_id, start, end)}
    finally:
        world.clock = live


def _n(row: Row | None) -> int:
    return int(row["n"]) if row and row["n"] is not None else 0


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in counts.items()) or "none"


@dataclass(frozen=True)
class _StoppedClock:
    at: float

    def now(self) -> float:
        return self.at

    async def sleep(self, seconds: float) -> None:
        raise RuntimeError("a stopped clock cannot sleep")


@dataclass
class _Tally:
    """Subrequests one consumer invocation made, counted outside the core's own budget."""

    external: int = 0
    d1: int = 0
    queue: int = 0

    @property
    def internal(self) -> int:
        return self.d1 + self.queue

    @property
    def total(self) -> int:
        return self.external + self.internal


# Each consumer invocation runs in its own task, so a context variable tells whose fetch this is.
_CURRENT: ContextVar[_Tally | None] = ContextVar("soak_tally", default=None)


async def _count_fetch(request: httpx.Request) -> None:
    tally = _CURRENT.get()
    if tally is not None:
        tally.external += 1


class _CountingDatabase:
    def __init__(self, db: Database, tally: _Tally) -> None:
        self._db = db
        self._tally = tally

    async def all(self, sql: str, *params: Any) -> list[Row]:
        self._tally.d1 += 1
        return await self._db.all(sql, *params)

    async def first(self, sql: str, *params: Any) -> Row | None:
        self._tally.d1 += 1
        return await self._db.first(sql, *params)

    async def run(self, sql: str, *params: Any) -> Result:
        self._tally.d1 += 1
        return await self._db.run(sql, *params)

    async def batch(self, statements: Sequence[Statement]) -> list[Result]:
        self._tally.d1 += 1
        return await self._db.batch(statements)


@dataclass
class _CountingQueue:
    queue: QueueSender
    tally: _Tally

    async def send_batch(self, messages: Sequence[OutgoingMessage]) -> None:
        self.tally.queue += 1
        await self.queue.send_batch(messages)


class _SoakRunner(CrashingRunner):
    """A CrashingRunner that counts each consumer invocation's subrequests at the ports."""

    def __init__(self, *args: Any, tallies: list[_Tally], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tallies = tallies

    @property
    def consumer_ports(self) -> Ports:
        # Read once per message, inside the invocation's task; batches hold one message.
        tally = _Tally()
        self.tallies.append(tally)
        _CURRENT.set(tally)
        ports = super().consumer_ports
        return replace(ports, db=_CountingDatabase(ports.db, tally), queue=_CountingQueue(ports.queue, tally))
