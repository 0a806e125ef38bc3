"""Measure what crawls cost: the real producer and consumer on Miniflare's D1 against the Helix emulator."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from local.clock import VirtualClock
from local.cost_model import Usage, queue_operations
from local.d1_meter import MiniflareD1
from local.emulated import emulator_client, emulator_settings
from local.emulator import EmulatorConfig, HelixWorld, create_emulator_app
from local.runner import LocalRunner
from producer.streamers import add_streamers
from shared.config import Settings

HOUR = 3600
START = 1_790_035_200.0  # a midnight (UTC)


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


async def measure(settings: Settings, *, streamers: int = 200, crawls: int = 3, seed: int = 1,
                  views_settle_s: float | None = None) -> Measured:
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
            sent, retried, invocations = (a - b for a, b in zip(_queue(runner), q0))
            usages.append(Usage(worker_requests=1 + invocations, queue_operations=queue_operations(sent, retried),
                                d1_rows_read=read1 - read0, d1_rows_written=written1 - written0,
                                helix_calls=counter.take()))
        return Measured(usages[0], usages[1:])
    finally:
        await db.close()
        await http.aclose()


def _queue(runner: LocalRunner) -> tuple[int, int, int]:
    q, d = runner.queue.stats, runner.dlq.stats
    return q.sent + d.sent, q.retried + d.retried, q.invocations + d.invocations
