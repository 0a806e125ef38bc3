from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from local.clock import VirtualClock
from local.sqlite_db import SqliteDatabase
from producer.core import slot_key, start_run
from shared.config import Settings
from shared.messages import decode
from shared.ports import Ports
from shared.windows import Window
from tests.conftest import StackFactory
from tests.scripted_helix import RecordingQueue

NOW = 1_790_000_000.0


@pytest.fixture
async def db() -> AsyncIterator[SqliteDatabase]:
    db = await SqliteDatabase.open()
    for i in range(250):
        await db.run(
            "INSERT INTO streamers (id, login, active, added_at) VALUES (?, ?, ?, ?)",
            str(i),
            f"s{i}",
            int(i != 7),
            "2026-01-01T00:00:00Z",
        )
    yield db
    await db.close()


async def test_a_tick_creates_one_job_and_one_message_per_active_streamer(db: SqliteDatabase) -> None:
    queue = RecordingQueue()
    ports = Ports(db=db, queue=queue, clock=VirtualClock(NOW))
    started = await start_run(ports, Settings(), scheduled_time=NOW)
    assert started.opened and started.jobs == 249 and queue.calls == 3  # sends of at most 100
    bodies = [decode(m.body) for m in queue.sent]
    assert len({b.streamer_id for b in bodies}) == 249 and "7" not in {b.streamer_id for b in bodies}
    run = await db.first("SELECT * FROM runs")
    assert (run["status"], run["jobs_total"], run["slot"], run["kind"]) == (
        "running",
        249,
        slot_key(NOW),
        "scheduled",
    )
    assert (
        started.subrequests == 8
    )  # open (+ sweep reads), who is due, slice, 3 sends, mark enqueued, bookkeeping


async def test_the_same_cron_slot_opens_nothing_twice(db: SqliteDatabase) -> None:
    queue = RecordingQueue()
    ports = Ports(db=db, queue=queue, clock=VirtualClock(NOW))
    first = await start_run(ports, Settings(), scheduled_time=NOW)
    again = await start_run(ports, Settings(), scheduled_time=NOW + 20)  # same minute, re-fired
    assert first.opened and not again.opened and again.run_id == first.run_id
    assert len(queue.sent) == 249 and (await db.first("SELECT count(*) AS n FROM jobs"))["n"] == 249


async def test_a_streamer_with_an_unfinished_job_gets_no_second_one(db: SqliteDatabase) -> None:
    queue = RecordingQueue()
    clock = VirtualClock(NOW)
    ports = Ports(db=db, queue=queue, clock=clock)
    await start_run(ports, Settings(), scheduled_time=NOW)
    await db.run("UPDATE jobs SET status = 'done' WHERE streamer_id != '3'")
    clock.advance(3600)
    second = await start_run(ports, Settings(), scheduled_time=clock.now())
    assert second.opened and second.jobs == 248
    assert (await db.first("SELECT count(*) AS n FROM jobs WHERE streamer_id = '3'"))["n"] == 1


async def test_manual_kicks_open_a_new_run_each_time_for_the_listed_streamers(db: SqliteDatabase) -> None:
    queue = RecordingQueue()
    ports = Ports(db=db, queue=queue, clock=VirtualClock(NOW))
    a = await start_run(ports, Settings(), streamer_ids=["1", "2"])
    await db.run("UPDATE jobs SET status = 'done'")
    b = await start_run(ports, Settings(), streamer_ids=["1", "2", "7"])  # 7 is inactive
    assert a.run_id != b.run_id and a.jobs == 2 and b.jobs == 2


async def test_a_backfill_fixes_the_jobs_range(db: SqliteDatabase) -> None:
    ports = Ports(db=db, queue=RecordingQueue(), clock=VirtualClock(NOW))
    await start_run(ports, Settings(), streamer_ids=["1"], backfill=Window(NOW - 3 * 86400, NOW - 86400))
    job = await db.first("SELECT crawl_from, crawl_to FROM jobs")
    assert job == {"crawl_from": "2026-09-18T14:13:20Z", "crawl_to": "2026-09-20T14:13:20Z"}


async def test_an_empty_run_is_finished_at_once(db: SqliteDatabase) -> None:
    await db.run("UPDATE streamers SET active = 0")
    ports = Ports(db=db, queue=RecordingQueue(), clock=VirtualClock(NOW))
    started = await start_run(ports, Settings(), scheduled_time=NOW)
    assert started.finished and started.jobs == 0
    assert (await db.first("SELECT status FROM runs"))["status"] == "finished"


async def test_stale_jobs_are_resent_by_a_later_tick(db: SqliteDatabase) -> None:
    """A lost message (or a dead consumer) never leaves a streamer stuck: the sweep re-sends it."""
    queue = RecordingQueue()
    clock = VirtualClock(NOW)
    ports = Ports(db=db, queue=queue, clock=clock)
    settings = Settings()
    await start_run(ports, settings, scheduled_time=NOW)
    await db.run("UPDATE jobs SET status = 'done' WHERE streamer_id != '5'")
    clock.advance(3600)
    queue.sent.clear()
    soon = await start_run(ports, settings, scheduled_time=clock.now())
    assert soon.resent == 0  # an hour late may just be a slow queue
    await db.run("UPDATE jobs SET status = 'done' WHERE streamer_id != '5'")
    clock.advance(settings.sweep_after_minutes * 60)
    queue.sent.clear()
    late = await start_run(ports, settings, scheduled_time=clock.now())
    assert late.resent == 1 and [decode(m.body).streamer_id for m in queue.sent].count("5") == 1
    clock.advance(60)
    again = await start_run(ports, settings, streamer_ids=["1"])
    assert again.resent == 0  # postponed: not re-sent on every tick


async def test_a_token_the_producer_mints_is_stored_before_the_first_message_goes_out(
    make_stack: StackFactory,
) -> None:
    stack = await make_stack(30, concurrency=30)
    await stack.db.run("DELETE FROM app_tokens")  # a fresh deployment: nothing cached yet
    minted_before = stack.emulator.tokens_minted
    tokens_at_send: list[int] = []
    send = stack.runner.queue.send_batch

    async def checking_send(messages: Any) -> None:
        # Cloudflare may deliver a message before the producer's invocation returns: its token must be in D1.
        tokens_at_send.append((await stack.db.first("SELECT count(*) AS n FROM app_tokens"))["n"])
        await send(messages)

    stack.runner.queue.send_batch = checking_send  # type: ignore[method-assign]
    await stack.runner.crawl(scheduled_time=stack.clock.now())
    assert tokens_at_send and tokens_at_send[0] == 1
    assert stack.emulator.tokens_minted == minted_before + 1  # the producer's; no consumer minted its own
    assert (await stack.db.first("SELECT count(*) AS n FROM jobs WHERE status = 'done'"))["n"] == 30
