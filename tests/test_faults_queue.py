from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from local.clock import VirtualClock
from local.crash import ConsumerCrashes, CrashingDatabase, CrashingRunner, CrashInjector, SimulatedCrash
from local.queue import ConsumerSettings, QueueBatch, SimulatedQueue
from local.queue_faults import QueueFaultInjector, QueueFaults
from local.sqlite_db import SqliteDatabase
from shared.ports import OutgoingMessage, Statement

T0 = 1_000.0


def faulty_queue(faults: QueueFaults, **options: Any) -> tuple[SimulatedQueue, QueueFaultInjector]:
    dlq = SimulatedQueue("dlq", clock=VirtualClock(T0))
    queue = SimulatedQueue(
        "jobs",
        clock=dlq.clock,
        dead_letter=dlq,
        settings=ConsumerSettings(**{"max_batch_size": 1, "max_retries": 3, **options}),
    )
    return queue, QueueFaultInjector(queue, faults)


async def deliver_all(queue: SimulatedQueue, count: int) -> list[tuple[int, int, float]]:
    """Send `count` numbered messages, ack every delivery; return (number, attempts, time) per delivery."""
    for start in range(0, count, 100):
        await queue.send_batch([OutgoingMessage({"n": i}) for i in range(start, min(count, start + 100))])
    seen: list[tuple[int, int, float]] = []

    async def handler(batch: QueueBatch) -> None:
        for message in batch.messages:
            seen.append((message.body["n"], message.attempts, queue.clock.now()))
        await asyncio.sleep(0)

    await queue.drain(handler)
    return seen


async def test_duplicates_deliver_the_same_message_again() -> None:
    queue, injector = faulty_queue(QueueFaults(seed=1, duplicate_rate=0.3))
    seen = await deliver_all(queue, 200)
    times = Counter(n for n, _, _ in seen)
    assert set(times) == set(range(200))
    extra = sum(times.values()) - 200
    assert extra == injector.injected["duplicate_concurrent"] + injector.injected["duplicate_later"] > 30
    assert {attempts for _, attempts, _ in seen} == {1}  # a duplicate is not a retry
    assert queue.stats.delivered == queue.stats.acked == len(seen)
    assert queue.pending() == 0


async def test_a_concurrent_duplicate_runs_alongside_the_original() -> None:
    queue, injector = faulty_queue(
        QueueFaults(duplicate_rate=1.0, duplicate_concurrent_share=1.0), max_concurrency=2
    )
    await queue.send({"n": 0})
    both = asyncio.Event()
    ids: list[str] = []

    async def handler(batch: QueueBatch) -> None:
        ids.append(batch.messages[0].id)
        if len(ids) == 2:
            both.set()
        await asyncio.wait_for(both.wait(), timeout=5)  # deadlocks unless both are in flight at once

    await queue.drain(handler, max_deliveries=2)
    assert ids[0] == ids[1]
    assert queue.stats.max_in_flight == 2
    assert injector.injected["duplicate_concurrent"] >= 1


async def test_a_later_duplicate_comes_after_its_delay() -> None:
    queue, injector = faulty_queue(
        QueueFaults(duplicate_rate=1.0, duplicate_concurrent_share=0.0, duplicate_later_s=(100, 100))
    )
    await queue.send({"n": 0})
    times: list[float] = []

    async def handler(batch: QueueBatch) -> None:
        times.append(queue.clock.now())

    await queue.drain(handler, max_deliveries=3)
    assert times == [T0, T0 + 100, T0 + 200]  # each copy is duplicated again: the rate is 1
    assert injector.injected["duplicate_later"] == 3


async def test_lost_acks_bring_the_message_back_until_it_dead_letters() -> None:
    queue, injector = faulty_queue(QueueFaults(lost_ack_rate=1.0), max_retries=2)
    seen = await deliver_all(queue, 1)
    assert [attempts for _, attempts, _ in seen] == [1, 2, 3]
    assert injector.injected["lost_ack"] == 3
    assert queue.stats.acked == 0 and queue.stats.dead_lettered == 1
    assert queue.dead_letter is not None and queue.dead_letter.pending() == 1


async def test_lost_acks_leave_retries_alone() -> None:
    queue, injector = faulty_queue(QueueFaults(lost_ack_rate=1.0), max_retries=1)
    await queue.send({"n": 0})

    async def handler(batch: QueueBatch) -> None:
        batch.messages[0].retry(delay_seconds=5)

    await queue.drain(handler)
    assert injector.injected["lost_ack"] == 0
    assert queue.stats.retried == 1


async def test_out_of_order_delivery_still_delivers_each_message_once() -> None:
    queue, injector = faulty_queue(QueueFaults(seed=2, reorder_rate=1.0), max_concurrency=1)
    seen = [n for n, _, _ in await deliver_all(queue, 50)]
    assert sorted(seen) == list(range(50))
    assert seen != list(range(50))
    assert 0 < injector.injected["reordered"] <= 49


async def test_delayed_delivery_holds_messages_back_in_clock_time() -> None:
    queue, injector = faulty_queue(QueueFaults(seed=3, delay_rate=0.4, delay_s=(50, 50)))
    seen = await deliver_all(queue, 100)
    assert sorted(n for n, _, _ in seen) == list(range(100))  # delayed, never lost
    late = [t for _, _, t in seen if t > T0]
    assert late and all((t - T0) % 50 == 0 for t in late)
    assert injector.injected["delayed"] >= len(late)
    assert {attempts for _, attempts, _ in seen} == {1}


async def schedule(seed: int) -> tuple[list[int], Counter[str]]:
    faults = QueueFaults(seed=seed, duplicate_rate=0.2, reorder_rate=0.3, delay_rate=0.1, lost_ack_rate=0.1)
    queue, injector = faulty_queue(faults, max_concurrency=3)
    return [n for n, _, _ in await deliver_all(queue, 60)], injector.injected


async def test_the_seed_replays_the_same_schedule() -> None:
    first, counts = await schedule(11)
    assert (first, counts) == await schedule(11)
    assert first != (await schedule(12))[0]
    kinds = ("duplicate_concurrent", "duplicate_later", "reordered", "delayed", "lost_ack")
    assert all(counts[k] > 0 for k in kinds)


@pytest.mark.parametrize(
    "field, value",
    [
        ("duplicate_rate", 1.2),
        ("reorder_rate", -1.0),
        ("duplicate_concurrent_share", 2.0),
        ("delay_s", (10, 5)),
    ],
)
def test_bad_settings_are_refused(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=f"QueueFaults.{field} is"):
        QueueFaults(**{field: value})


# --- crashes -------------------------------------------------------------------------------------


async def test_a_crashing_database_crashes_right_after_its_nth_call_went_through() -> None:
    db = await SqliteDatabase.open()
    try:
        await db.run("CREATE TABLE t (n INTEGER)")
        crashing = CrashingDatabase(db, crash_after=2)
        await crashing.run("INSERT INTO t VALUES (1)")
        with pytest.raises(SimulatedCrash, match="after database call 2"):
            await crashing.batch([Statement("INSERT INTO t VALUES (2)")])
        assert [r["n"] for r in await db.all("SELECT n FROM t ORDER BY n")] == [1, 2]  # the write landed
    finally:
        await db.close()


async def test_except_exception_cannot_swallow_a_crash() -> None:
    async def consumer() -> str:
        try:
            raise SimulatedCrash("boom")
        except Exception:
            return "caught"

    with pytest.raises(SimulatedCrash):
        await consumer()


async def test_a_crashed_invocation_is_redelivered_with_its_write_kept() -> None:
    db = await SqliteDatabase.open()
    await db.run("CREATE TABLE t (n INTEGER)")
    queue = SimulatedQueue(
        "jobs", clock=VirtualClock(T0), settings=ConsumerSettings(max_batch_size=1, retry_delay=30)
    )
    await queue.send({"n": 1})
    crashes = iter([CrashingDatabase(db, crash_after=1), CrashingDatabase(db)])
    attempts: list[int] = []

    async def handler(batch: QueueBatch) -> None:
        message = batch.messages[0]
        attempts.append(message.attempts)
        await next(crashes).run("INSERT INTO t VALUES (?)", message.attempts)
        message.ack()

    try:
        await queue.drain(handler)
        assert attempts == [1, 2]
        assert queue.clock.now() == T0 + 30  # redelivered after the consumer's retry_delay
        assert [r["n"] for r in await db.all("SELECT n FROM t ORDER BY n")] == [1, 2]
        assert (queue.stats.acked, queue.stats.retried) == (1, 1)
    finally:
        await db.close()


async def test_the_crash_injector_arms_at_its_rate_and_replays_from_its_seed() -> None:
    def arm(seed: int) -> list[int | None]:
        injector = CrashInjector(ConsumerCrashes(seed=seed, rate=0.25, max_call=4))
        return [injector.wrap(None).crash_after for _ in range(400)]  # type: ignore[arg-type]

    points = arm(5)
    assert points == arm(5) != arm(6)
    armed = [p for p in points if p is not None]
    assert 60 <= len(armed) <= 140
    assert set(armed) == {1, 2, 3, 4}


def test_crash_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="ConsumerCrashes.rate is 2"):
        ConsumerCrashes(rate=2)
    with pytest.raises(ValueError, match="ConsumerCrashes.max_call is 0"):
        ConsumerCrashes(max_call=0)


async def test_a_crawl_with_crashing_consumers_still_finishes_every_job(make_stack: Any) -> None:
    stack = await make_stack(12, concurrency=3)
    reference = await make_stack(12, concurrency=3)
    await reference.runner.crawl()
    crashes = CrashInjector(ConsumerCrashes(seed=4, rate=0.5, max_call=2))
    runner = CrashingRunner(stack.db, stack.http, stack.settings, stack.clock, concurrency=3, crashes=crashes)
    await runner.crawl()
    jobs = await stack.db.all("SELECT status FROM jobs")
    assert {j["status"] for j in jobs} == {"done"}
    # Crashes cost lease waits, so the crawl ends later and may find clips made meanwhile; none are missing.
    assert await reference.clip_ids() <= await stack.clip_ids()
    assert crashes.injected["crashed"] >= 3
    assert crashes.injected["crashed_after_call_1"] and crashes.injected["crashed_after_call_2"]
