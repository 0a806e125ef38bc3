from __future__ import annotations

import asyncio
import logging
from collections import Counter, defaultdict
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from local.clock import VirtualClock
from local.queue import (
    MAX_CONCURRENCY,
    ConsumerSettings,
    QueueBatch,
    QueueLimitError,
    SimulatedQueue,
)
from shared.ports import OutgoingMessage


def make_queue(clock: VirtualClock | None = None, **options: Any) -> SimulatedQueue:
    return SimulatedQueue("jobs", clock=clock or VirtualClock(), settings=ConsumerSettings(**options))


async def send_numbers(queue: SimulatedQueue, count: int) -> None:
    await queue.send_batch([OutgoingMessage({"n": i}) for i in range(count)])


async def test_explicit_ack_retry_and_implicit_ack() -> None:
    queue = make_queue()
    await send_numbers(queue, 3)
    deliveries: list[tuple[int, int]] = []

    async def handler(batch: QueueBatch) -> None:
        for message in batch.messages:
            deliveries.append((message.body["n"], message.attempts))
            if message.body["n"] == 0:
                message.ack()
            elif message.body["n"] == 1 and message.attempts == 1:
                message.retry()

    assert await queue.drain(handler) == 4
    assert deliveries == [(0, 1), (1, 1), (2, 1), (1, 2)]
    assert (queue.stats.acked, queue.stats.retried, queue.pending()) == (3, 1, 0)


async def test_handler_raising_retries_everything_not_acked(caplog: pytest.LogCaptureFixture) -> None:
    queue = make_queue()
    await send_numbers(queue, 3)
    batches: list[list[tuple[int, int]]] = []

    async def handler(batch: QueueBatch) -> None:
        batches.append([(m.body["n"], m.attempts) for m in batch.messages])
        if len(batches) == 1:
            batch.messages[0].ack()
            batch.messages[1].retry(delay_seconds=5)
            raise RuntimeError("consumer crashed")

    with caplog.at_level(logging.ERROR, logger="clipcrawler.queue"):
        await queue.drain(handler)

    assert batches == [[(0, 1), (1, 1), (2, 1)], [(2, 2)], [(1, 2)]]
    assert queue.stats.acked == 3
    assert len(caplog.records) == 1
    assert "consumer crashed" in caplog.text


async def test_raise_logs_the_message_ids(caplog: pytest.LogCaptureFixture) -> None:
    queue = make_queue(max_retries=0)
    await queue.send({"n": 0})
    ids: list[str] = []

    async def handler(batch: QueueBatch) -> None:
        ids.append(batch.messages[0].id)
        raise ValueError("bad body")

    with caplog.at_level(logging.ERROR, logger="clipcrawler.queue"):
        await queue.drain(handler)

    assert ids[0] in caplog.records[0].getMessage()


async def test_per_message_ack_overrides_later_retry_all() -> None:
    queue = make_queue()
    await send_numbers(queue, 3)
    attempts: list[tuple[int, int]] = []

    async def handler(batch: QueueBatch) -> None:
        attempts.extend((m.body["n"], m.attempts) for m in batch.messages)
        if batch.messages[0].attempts == 1:
            batch.messages[0].ack()
            batch.retry_all()

    await queue.drain(handler)
    assert attempts == [(0, 1), (1, 1), (2, 1), (1, 2), (2, 2)]


async def test_per_message_retry_overrides_later_ack_all() -> None:
    queue = make_queue()
    await send_numbers(queue, 3)
    attempts: list[tuple[int, int]] = []

    async def handler(batch: QueueBatch) -> None:
        attempts.extend((m.body["n"], m.attempts) for m in batch.messages)
        if batch.messages[0].attempts == 1:
            batch.messages[1].retry()
            batch.ack_all()

    await queue.drain(handler)
    assert attempts == [(0, 1), (1, 1), (2, 1), (1, 2)]


async def test_batch_call_made_first_wins_over_later_message_call() -> None:
    queue = make_queue()
    await send_numbers(queue, 2)
    attempts: list[tuple[int, int]] = []

    async def handler(batch: QueueBatch) -> None:
        attempts.extend((m.body["n"], m.attempts) for m in batch.messages)
        if batch.messages[0].attempts == 1:
            batch.retry_all()
            batch.messages[0].ack()

    await queue.drain(handler)
    assert attempts == [(0, 1), (1, 1), (0, 2), (1, 2)]


async def test_ack_all_does_not_protect_messages_when_handler_raises() -> None:
    queue = make_queue()
    await send_numbers(queue, 2)
    attempts: list[tuple[int, int]] = []

    async def handler(batch: QueueBatch) -> None:
        attempts.extend((m.body["n"], m.attempts) for m in batch.messages)
        if batch.messages[0].attempts == 1:
            batch.messages[0].ack()
            batch.ack_all()
            raise RuntimeError("crash after ackAll")

    await queue.drain(handler)
    assert attempts == [(0, 1), (1, 1), (1, 2)]


@pytest.mark.parametrize(("first", "expected_deliveries"), [("ack", 1), ("retry", 2)])
async def test_first_call_on_a_message_wins(first: str, expected_deliveries: int) -> None:
    queue = make_queue()
    await queue.send({"n": 0})

    async def handler(batch: QueueBatch) -> None:
        message = batch.messages[0]
        if message.attempts > 1:
            return
        if first == "ack":
            message.ack()
            message.retry()
        else:
            message.retry()
            message.ack()

    assert await queue.drain(handler) == expected_deliveries


async def test_attempts_count_up_and_dead_letter_after_max_retries() -> None:
    clock = VirtualClock()
    dlq = SimulatedQueue("jobs-dlq", clock=clock)
    queue = SimulatedQueue("jobs", clock=clock, settings=ConsumerSettings(max_retries=3), dead_letter=dlq)
    body = {"streamer": "alice", "window": [1, 2], "note": "é"}
    await queue.send(body)
    attempts: list[int] = []

    async def always_retry(batch: QueueBatch) -> None:
        attempts.extend(m.attempts for m in batch.messages)
        batch.retry_all()

    await queue.drain(always_retry)

    assert attempts == [1, 2, 3, 4]
    assert (queue.stats.retried, queue.stats.dead_lettered, queue.pending()) == (3, 1, 0)
    assert dlq.messages_waiting() == [body]
    assert dlq.stats.sent == 1

    dead: list[tuple[dict[str, object], int]] = []

    async def inspect(batch: QueueBatch) -> None:
        dead.extend((m.body, m.attempts) for m in batch.messages)

    await dlq.drain(inspect)
    assert dead == [(body, 1)]


async def test_past_max_retries_without_dead_letter_queue_the_message_is_dropped() -> None:
    queue = make_queue(max_retries=1)
    await queue.send({"n": 7})

    async def crash(batch: QueueBatch) -> None:
        raise RuntimeError("always")

    assert await queue.drain(crash) == 2
    assert [(d.body, d.attempts) for d in queue.dropped] == [({"n": 7}, 2)]
    assert (queue.stats.dropped, queue.stats.dead_lettered, queue.pending()) == (1, 0, 0)


async def test_dead_letter_queue_named_in_settings_is_created() -> None:
    queue = make_queue(max_retries=0, dead_letter_queue="jobs-dlq")
    await queue.send({"n": 1})

    async def retry(batch: QueueBatch) -> None:
        batch.retry_all()

    await queue.drain(retry)
    assert queue.dead_letter is not None
    assert queue.dead_letter.name == "jobs-dlq"
    assert queue.dead_letter.messages_waiting() == [{"n": 1}]


async def test_retry_delay_is_honoured_in_virtual_time() -> None:
    clock = VirtualClock()
    start = clock.now()
    queue = make_queue(clock, retry_delay=60)
    await queue.send({"n": 0})
    seen_at: list[float] = []

    async def handler(batch: QueueBatch) -> None:
        seen_at.append(clock.now())
        if len(seen_at) == 1:
            batch.messages[0].retry()
        elif len(seen_at) == 2:
            batch.messages[0].retry(delay_seconds=300)

    await queue.drain(handler)
    assert seen_at == [start, start + 60, start + 360]


async def test_raise_uses_retry_delay() -> None:
    clock = VirtualClock()
    start = clock.now()
    queue = make_queue(clock, retry_delay=45)
    await queue.send({"n": 0})
    seen_at: list[float] = []

    async def handler(batch: QueueBatch) -> None:
        seen_at.append(clock.now())
        if len(seen_at) == 1:
            raise RuntimeError("transient")

    await queue.drain(handler)
    assert seen_at == [start, start + 45]


async def test_send_delay_is_honoured_and_visibility_orders_delivery() -> None:
    clock = VirtualClock()
    start = clock.now()
    queue = make_queue(clock, max_batch_size=1)
    await queue.send_batch([OutgoingMessage({"n": 0}, delay_seconds=120), OutgoingMessage({"n": 1})])
    assert queue.messages_waiting() == [{"n": 1}, {"n": 0}]
    seen: list[tuple[int, float]] = []

    async def handler(batch: QueueBatch) -> None:
        seen.extend((m.body["n"], clock.now()) for m in batch.messages)

    await queue.drain(handler)
    assert seen == [(1, start), (0, start + 120)]


async def test_until_idle_false_leaves_delayed_messages() -> None:
    clock = VirtualClock()
    queue = make_queue(clock)
    await queue.send({"n": 0}, delay_seconds=30)
    await queue.send({"n": 1})

    async def handler(batch: QueueBatch) -> None:
        pass

    assert await queue.drain(handler, until_idle=False) == 1
    assert queue.messages_waiting() == [{"n": 0}]
    assert queue.pending() == 1


class SleepOnlyClock:
    """A clock without `set`, so the queue must sleep; the sleep is simulated to keep the test fast."""

    def __init__(self) -> None:
        self.t = 1_000.0
        self.slept: list[float] = []

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds
        await asyncio.sleep(0)


async def test_without_a_settable_clock_the_queue_sleeps_until_visible() -> None:
    clock = SleepOnlyClock()
    queue = SimulatedQueue("jobs", clock=clock, settings=ConsumerSettings(retry_delay=10))
    await queue.send({"n": 0})
    seen_at: list[float] = []

    async def handler(batch: QueueBatch) -> None:
        seen_at.append(clock.now())
        if len(seen_at) == 1:
            batch.retry_all()

    await queue.drain(handler)
    assert seen_at == [1_000.0, 1_010.0]
    assert clock.slept == [10.0]


async def test_send_batch_rejects_more_than_100_messages() -> None:
    queue = make_queue()
    with pytest.raises(QueueLimitError, match="message count is 101; the limit is 100"):
        await queue.send_batch([OutgoingMessage({"n": i}) for i in range(101)])
    assert queue.pending() == 0


async def test_send_batch_rejects_more_than_256_kb_in_total() -> None:
    queue = make_queue()
    third = "x" * 85_657  # each body is 85,666 bytes of JSON, 256,998 in all
    with pytest.raises(QueueLimitError, match="size in bytes is 256,998; the limit is 256,000") as info:
        await queue.send_batch([OutgoingMessage({"x": third}) for _ in range(3)])
    assert (info.value.size, info.value.limit) == (256_998, 256_000)
    assert queue.pending() == 0


async def test_send_rejects_a_body_over_128_kb() -> None:
    queue = make_queue()
    with pytest.raises(QueueLimitError, match="body size in bytes is 129,009; the limit is 128,000"):
        await queue.send({"x": "y" * 129_000})


async def test_limits_are_inclusive() -> None:
    queue = make_queue()
    await queue.send({"x": "y" * (128_000 - 9)}, delay_seconds=86_400)
    await queue.send_batch([OutgoingMessage({"n": i}) for i in range(100)])
    assert queue.stats.sent == 101


@pytest.mark.parametrize("delay", [86_401, -1])
async def test_send_rejects_a_delay_out_of_range(delay: int) -> None:
    queue = make_queue()
    with pytest.raises(QueueLimitError, match="delay_seconds"):
        await queue.send({"n": 0}, delay_seconds=delay)


async def test_retry_rejects_a_delay_over_a_day() -> None:
    queue = make_queue()
    await queue.send({"n": 0})
    errors: list[Exception] = []

    async def handler(batch: QueueBatch) -> None:
        try:
            batch.messages[0].retry(delay_seconds=86_401)
        except QueueLimitError as exc:
            errors.append(exc)

    await queue.drain(handler)
    assert len(errors) == 1
    assert queue.stats.acked == 1


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="max_batch_size is 101"):
        ConsumerSettings(max_batch_size=101)
    with pytest.raises(ValueError, match="max_concurrency is 0"):
        ConsumerSettings(max_concurrency=0)


async def test_max_concurrency_caps_invocations_in_flight() -> None:
    queue = make_queue(max_batch_size=1, max_concurrency=3)
    await send_numbers(queue, 20)
    running = 0
    peak = 0

    async def handler(batch: QueueBatch) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        for _ in range(3):
            await asyncio.sleep(0)
        running -= 1

    await queue.drain(handler)
    assert peak == 3
    assert queue.stats.max_in_flight == 3
    assert queue.stats.invocations == 20


async def test_unset_max_concurrency_autoscales_to_the_platform_maximum() -> None:
    queue = make_queue(max_batch_size=1)
    for start in range(0, 300, 100):
        await queue.send_batch([OutgoingMessage({"n": i}) for i in range(start, start + 100)])

    async def handler(batch: QueueBatch) -> None:
        await asyncio.sleep(0)

    await queue.drain(handler)
    assert queue.stats.max_in_flight == MAX_CONCURRENCY


async def test_batches_hold_at_most_max_batch_size_messages() -> None:
    queue = make_queue(max_batch_size=10, max_concurrency=1)
    await send_numbers(queue, 25)
    sizes: list[int] = []

    async def handler(batch: QueueBatch) -> None:
        assert batch.queue == "jobs"
        sizes.append(len(batch.messages))

    await queue.drain(handler)
    assert sizes == [10, 10, 5]


async def test_delivered_bodies_are_copies() -> None:
    queue = make_queue()
    body = {"tags": ["a"]}
    await queue.send(body)
    body["tags"].append("mutated by sender")
    seen: list[list[str]] = []

    async def handler(batch: QueueBatch) -> None:
        message = batch.messages[0]
        seen.append(list(message.body["tags"]))
        message.body["tags"].append("mutated by consumer")
        if message.attempts == 1:
            message.retry()

    await queue.drain(handler)
    assert seen == [["a"], ["a"]]


async def test_messages_sent_by_the_handler_are_delivered_in_the_same_drain() -> None:
    queue = make_queue(max_batch_size=1)
    await queue.send({"depth": 0})
    depths: list[int] = []

    async def handler(batch: QueueBatch) -> None:
        depth = batch.messages[0].body["depth"]
        depths.append(depth)
        if depth < 3:
            await queue.send({"depth": depth + 1}, delay_seconds=depth)

    await queue.drain(handler)
    assert depths == [0, 1, 2, 3]


async def test_max_deliveries_stops_a_drain_that_would_not_end() -> None:
    queue = make_queue(max_batch_size=4, max_retries=100)
    await send_numbers(queue, 3)

    async def retry(batch: QueueBatch) -> None:
        batch.retry_all()

    assert await queue.drain(retry, max_deliveries=10) == 10
    assert queue.stats.delivered == 10
    assert queue.pending() == 3


async def test_a_handler_raising_cancelled_error_is_a_crash_not_the_end_of_the_drain() -> None:
    queue = make_queue()
    await queue.send({"n": 0})

    async def handler(batch: QueueBatch) -> None:
        if batch.messages[0].attempts == 1:
            raise asyncio.CancelledError

    assert await queue.drain(handler) == 2
    assert (queue.stats.retried, queue.stats.acked) == (1, 1)


async def test_cancelling_a_drain_puts_in_flight_messages_back() -> None:
    queue = make_queue(max_batch_size=1, max_concurrency=1)
    await send_numbers(queue, 2)
    started = asyncio.Event()

    async def stuck(batch: QueueBatch) -> None:
        started.set()
        await asyncio.Event().wait()

    drain = asyncio.create_task(queue.drain(stuck))
    await started.wait()
    drain.cancel()
    with pytest.raises(asyncio.CancelledError):
        await drain
    assert queue.pending() == 2
    assert queue.stats.retried == 1

    async def ack(batch: QueueBatch) -> None:
        pass

    assert await queue.drain(ack) == 2


async def test_a_second_concurrent_drain_is_refused() -> None:
    queue = make_queue()
    await queue.send({"n": 0})
    release = asyncio.Event()

    async def handler(batch: QueueBatch) -> None:
        await release.wait()

    first = asyncio.create_task(queue.drain(handler))
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="already being drained"):
        await queue.drain(handler)
    release.set()
    assert await first == 1


@settings(max_examples=150, deadline=None)
@given(
    count=st.integers(1, 8),
    batch_size=st.integers(1, 4),
    concurrency=st.integers(1, 3),
    max_retries=st.integers(0, 3),
    retry_delay=st.integers(0, 120),
    use_dead_letter=st.booleans(),
    decisions=st.lists(st.sampled_from(["ack", "retry", "raise"]), max_size=60),
)
async def test_every_message_settles_exactly_once(
    count: int,
    batch_size: int,
    concurrency: int,
    max_retries: int,
    retry_delay: int,
    use_dead_letter: bool,
    decisions: list[str],
) -> None:
    clock = VirtualClock()
    dlq = SimulatedQueue("dlq", clock=clock) if use_dead_letter else None
    options = ConsumerSettings(
        max_batch_size=batch_size,
        max_concurrency=concurrency,
        max_retries=max_retries,
        retry_delay=retry_delay,
    )
    queue = SimulatedQueue("jobs", clock=clock, settings=options, dead_letter=dlq)
    await send_numbers(queue, count)
    script = iter(decisions)
    acked: list[int] = []
    attempts_seen: dict[str, list[int]] = defaultdict(list)

    async def handler(batch: QueueBatch) -> None:
        for message in batch.messages:
            attempts_seen[message.id].append(message.attempts)
        await asyncio.sleep(0)  # let invocations interleave
        for message in batch.messages:
            decision = next(script, "ack")
            if decision == "raise":
                raise RuntimeError("scripted crash")
            if decision == "ack":
                message.ack()
                acked.append(message.body["n"])
            else:
                message.retry()

    logging.getLogger("clipcrawler.queue").disabled = True
    try:
        await queue.drain(handler)
    finally:
        logging.getLogger("clipcrawler.queue").disabled = False

    dead = [body["n"] for body in dlq.messages_waiting()] if dlq else []
    dropped = [message.body["n"] for message in queue.dropped]
    assert Counter(acked + dead + dropped) == Counter(range(count))
    assert queue.pending() == 0
    assert queue.stats.max_in_flight <= concurrency
    for attempts in attempts_seen.values():
        assert attempts == list(range(1, len(attempts) + 1))
        assert len(attempts) <= max_retries + 1
    stats = queue.stats
    assert stats.delivered == stats.acked + stats.retried + stats.dead_lettered + stats.dropped
    assert (stats.acked, stats.dead_lettered, stats.dropped) == (len(acked), len(dead), len(dropped))
