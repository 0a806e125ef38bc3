from __future__ import annotations

import math
from collections.abc import AsyncIterator

import httpx
import pytest

from consumer.core import handle_message
from local.clock import VirtualClock
from local.sqlite_db import SqliteDatabase
from producer.core import start_run
from shared.config import Settings
from shared.fanout import spread
from shared.messages import CrawlJob, FanOut, decode
from shared.ports import Ports
from tests.scripted_helix import RecordingQueue

NOW = 1_790_000_000.0


async def with_streamers(n: int) -> SqliteDatabase:
    db = await SqliteDatabase.open()
    await db.run(
        "WITH RECURSIVE n(i) AS (SELECT 0 WHERE ? > 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?) "
        "INSERT INTO streamers (id, login, added_at) "
        "SELECT printf('%07d', i), 's' || i, '2026-01-01T00:00:00Z' FROM n",
        n,
        n,
    )
    return db


@pytest.fixture
async def db() -> AsyncIterator[SqliteDatabase]:
    db = await with_streamers(2_500)
    yield db
    await db.close()


async def drain_fan_outs(
    db: SqliteDatabase, queue: RecordingQueue, settings: Settings, clock: VirtualClock
) -> list[int]:
    """Deliver every FanOut message (not the crawl ones); returns each invocation's internal subrequests."""
    used: list[int] = []
    crawl, seen = [], 0
    async with httpx.AsyncClient() as http:
        while seen < len(queue.sent):
            message = queue.sent[seen]
            seen += 1
            if message.body["type"] != "fanout":
                crawl.append(message)
                continue
            ports = Ports(db=db, queue=queue, clock=clock, http=http)
            verdict = await handle_message(message.body, 1, ports, settings)
            assert verdict.ack, verdict
            used.append(verdict.internal)
    queue.sent = crawl
    return used


async def test_100000_streamers_fan_out_within_the_free_plan() -> None:
    db = await with_streamers(100_000)
    try:
        queue, clock, settings = RecordingQueue(), VirtualClock(NOW), Settings()
        started = await start_run(Ports(db=db, queue=queue, clock=clock), settings, scheduled_time=NOW)
        assert started.subrequests <= 50 and started.jobs == 1_000
        used = await drain_fan_outs(db, queue, settings, clock)
        assert len(used) == 99 and max(used) <= 50
        crawl = [decode(m.body) for m in queue.sent]
        assert len(crawl) == 100_000 and len({m.job_id for m in crawl}) == 100_000
        assert all(isinstance(m, CrawlJob) for m in crawl)
        run = await db.first("SELECT status, jobs_total FROM runs")
        assert run == {"status": "running", "jobs_total": 100_000}
    finally:
        await db.close()


async def test_a_duplicated_slice_enqueues_nothing_twice(db: SqliteDatabase) -> None:
    queue, clock, settings = RecordingQueue(), VirtualClock(NOW), Settings()
    await start_run(Ports(db=db, queue=queue, clock=clock), settings, scheduled_time=NOW)
    fan_out = next(m for m in queue.sent if isinstance(decode(m.body), FanOut))
    queue.sent.append(fan_out)  # delivered twice
    await drain_fan_outs(db, queue, settings, clock)
    ids = [decode(m.body).job_id for m in queue.sent]
    assert len(ids) == len(set(ids)) == 2_500
    assert (await db.first("SELECT jobs_total FROM runs"))["jobs_total"] == 2_500


async def test_a_fan_out_that_stopped_is_resumed_by_the_next_tick(db: SqliteDatabase) -> None:
    queue, clock, settings = RecordingQueue(), VirtualClock(NOW), Settings()
    first = await start_run(Ports(db=db, queue=queue, clock=clock), settings, scheduled_time=NOW)
    queue.sent = [
        m for m in queue.sent if not isinstance(decode(m.body), FanOut)
    ]  # the slice message is lost
    clock.advance(settings.sweep_after_minutes * 60 + 60)
    await start_run(Ports(db=db, queue=queue, clock=clock), settings, scheduled_time=clock.now())
    resumed = [decode(m.body) for m in queue.sent if isinstance(decode(m.body), FanOut)]
    assert FanOut(first.run_id, "0000999") in resumed
    await drain_fan_outs(db, queue, settings, clock)
    run = await db.first("SELECT status, jobs_total FROM runs WHERE id = ?", first.run_id)
    assert run == {"status": "running", "jobs_total": 2_500}


async def test_a_manual_kick_for_listed_streamers_is_one_slice(db: SqliteDatabase) -> None:
    queue = RecordingQueue()
    started = await start_run(
        Ports(db=db, queue=queue, clock=VirtualClock(NOW)),
        Settings(),
        streamer_ids=["0000005", "0002000", "nope"],
    )
    assert started.jobs == 2 and {decode(m.body).streamer_id for m in queue.sent} == {"0000005", "0002000"}


@pytest.mark.parametrize(
    ("count", "first", "more", "limit", "expected"),
    [
        (200, 0, False, 800, [0] * 200),  # fits in a minute's points: all at once
        (3, 0, True, 120, [0, 1, 2]),  # a big run: spread at 0.95 x 120 = 114 a minute from its start
        (3, 114, False, 120, [60, 61, 62]),  # a later slice carries on where the last left off
        (
            200,
            0,
            False,
            120,
            [math.ceil(i * 60 / 114) for i in range(200)],
        ),  # one slice, over a minute's points
    ],
)
def test_spread(count: int, first: int, more: bool, limit: int, expected: list[int]) -> None:
    assert spread(count, first=first, more=more, now=NOW, started=NOW, limit=limit, share=0.95) == expected


def test_spread_counts_from_the_runs_start_and_caps_at_twelve_hours() -> None:
    assert spread(1, first=1_000, more=True, now=NOW + 300, started=NOW, limit=100, share=1.0) == [300]
    assert spread(1, first=10**7, more=True, now=NOW, started=NOW, limit=100, share=1.0) == [43_200]


async def test_a_run_bigger_than_a_minutes_points_meets_twitch_at_a_steady_pace(make_stack) -> None:
    from local.emulator import EmulatorConfig

    stack = await make_stack(
        400, config=EmulatorConfig(rate_limit_points=100), concurrency=20, ratelimit_assumed_points=100
    )
    stack.emulator.reset_counters()
    began = stack.clock.now()
    await stack.runner.crawl()
    requests = sum(stack.emulator.statuses.values())
    minutes = (stack.clock.now() - began) / 60
    assert stack.emulator.statuses[429] <= requests * 0.01
    assert 0.9 * 100 <= requests / minutes <= 100  # at least 90% of the budget, never over it
    run = await stack.db.first("SELECT jobs_done, jobs_failed FROM runs")
    assert run == {"jobs_done": 400, "jobs_failed": 0}
