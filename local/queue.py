"""An in-process queue with Cloudflare Queues' delivery semantics: batches, acks, retries, dead letters."""

from __future__ import annotations

import asyncio
import heapq
import json
import logging
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from shared.errors import QueueError
from shared.ports import Clock, OutgoingMessage

logger = logging.getLogger("clipcrawler.queue")

# https://developers.cloudflare.com/queues/platform/limits/ (1 KB = 1,000 bytes there).
MAX_BATCH_MESSAGES = 100
MAX_BATCH_BYTES = 256_000
MAX_MESSAGE_BYTES = 128_000
MAX_DELAY_SECONDS = 86_400
MAX_RETRIES = 100
MAX_CONCURRENCY = 250


class QueueLimitError(QueueError, ValueError):
    """A send or retry broke one of Cloudflare Queues' limits."""

    def __init__(self, what: str, size: int, limit: int) -> None:
        super().__init__(f"{what} is {size:,}; the limit is {limit:,}")
        self.what = what
        self.size = size
        self.limit = limit


def _check_delay(delay_seconds: int) -> None:
    if delay_seconds < 0:
        raise QueueLimitError("delay_seconds", delay_seconds, 0)
    if delay_seconds > MAX_DELAY_SECONDS:
        raise QueueLimitError("delay_seconds", delay_seconds, MAX_DELAY_SECONDS)


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ValueError(f"ConsumerSettings.{name} is {value}; it must be between {low} and {high}")


@dataclass(frozen=True)
class ConsumerSettings:
    """The `[[queues.consumers]]` block of a consumer's wrangler.toml."""

    max_batch_size: int = 10
    max_batch_timeout: int = 5
    max_retries: int = 3
    retry_delay: int = 0
    max_concurrency: int | None = None
    dead_letter_queue: str | None = None

    def __post_init__(self) -> None:
        _check_range("max_batch_size", self.max_batch_size, 1, MAX_BATCH_MESSAGES)
        _check_range("max_batch_timeout", self.max_batch_timeout, 0, 60)
        _check_range("max_retries", self.max_retries, 0, MAX_RETRIES)
        _check_range("retry_delay", self.retry_delay, 0, MAX_DELAY_SECONDS)
        if self.max_concurrency is not None:
            _check_range("max_concurrency", self.max_concurrency, 1, MAX_CONCURRENCY)

    @property
    def concurrency(self) -> int:
        """How many invocations may run at once; unset means autoscaling up to the platform maximum."""
        return self.max_concurrency or MAX_CONCURRENCY


@dataclass
class Envelope:
    """The queue's own record of a stored message; `attempts` counts deliveries so far."""

    id: str
    body_json: str
    timestamp: float
    attempts: int = 0


@dataclass(frozen=True)
class Outcome:
    """How one delivery settled: acked, or retried after `delay_seconds` (None = the consumer default)."""

    ack: bool
    delay_seconds: int | None = None


ACK = Outcome(ack=True)


@dataclass(frozen=True)
class DroppedMessage:
    """A message deleted after its last retry because the queue has no dead-letter queue."""

    id: str
    body: dict[str, Any]
    attempts: int
    timestamp: float


@dataclass
class QueueStats:
    """Counters; once nothing is in flight, delivered == acked + retried + dead_lettered + dropped."""

    sent: int = 0
    delivered: int = 0
    acked: int = 0
    retried: int = 0
    dead_lettered: int = 0
    dropped: int = 0
    invocations: int = 0
    max_in_flight: int = 0


class QueueMessage:
    """One delivered message, as a consumer's `queue()` handler sees it."""

    def __init__(self, batch: QueueBatch, envelope: Envelope) -> None:
        self._batch = batch
        self._envelope = envelope
        self._outcome: Outcome | None = None
        self.id = envelope.id
        self.body: dict[str, Any] = json.loads(envelope.body_json)
        self.attempts = envelope.attempts
        self.timestamp = envelope.timestamp

    def ack(self) -> None:
        """Mark the message done; ignored if this message or the whole batch was already settled."""
        self._decide(ACK)

    def retry(self, delay_seconds: int | None = None) -> None:
        """Ask for redelivery after `delay_seconds` (default: the consumer's `retry_delay`)."""
        if delay_seconds is not None:
            _check_delay(delay_seconds)
        self._decide(Outcome(ack=False, delay_seconds=delay_seconds))

    def _decide(self, outcome: Outcome) -> None:
        # workerd ignores a per-message call made after ackAll()/retryAll(): the first call covering a
        # message wins, whether it named the message or the batch.
        if self._outcome is None and self._batch._outcome is None and not self._batch._settled:
            self._outcome = outcome


class QueueBatch:
    """The batch handed to one consumer invocation."""

    def __init__(self, queue: str, envelopes: Sequence[Envelope]) -> None:
        self.queue = queue
        self._outcome: Outcome | None = None
        self._settled = False
        self.messages = [QueueMessage(self, envelope) for envelope in envelopes]

    def ack_all(self) -> None:
        """Ack every message that has no call of its own."""
        if self._outcome is None and not self._settled:
            self._outcome = ACK

    def retry_all(self, delay_seconds: int | None = None) -> None:
        """Retry every message that has no call of its own."""
        if delay_seconds is not None:
            _check_delay(delay_seconds)
        if self._outcome is None and not self._settled:
            self._outcome = Outcome(ack=False, delay_seconds=delay_seconds)

    def _settle(self, crashed: bool) -> list[tuple[Envelope, Outcome]]:
        """Each message's outcome once the handler has finished; later calls are ignored."""
        self._settled = True
        batch_retry = self._outcome if self._outcome is not None and not self._outcome.ack else None
        settled = []
        for message in self.messages:
            if message._outcome is not None:
                outcome = message._outcome
            elif crashed:
                # As in miniflare: a throw retries all but per-message acks, even after ackAll().
                outcome = batch_retry or Outcome(ack=False)
            else:
                outcome = self._outcome or ACK
            settled.append((message._envelope, outcome))
        return settled


Handler = Callable[[QueueBatch], Awaitable[None]]


class DeliveryFaults(Protocol):
    """Where fault injection plugs in: which messages form a batch, and how each delivery settles."""

    def pick(self, ready: deque[Envelope], limit: int) -> list[Envelope]:
        """Remove and return up to `limit` envelopes from `ready`, which is in visibility order."""
        ...

    def settle(self, envelope: Envelope, outcome: Outcome) -> Outcome:
        """The outcome the queue applies, given the one the consumer asked for."""
        ...


class NoFaults:
    """No faults: deliver in visibility order and apply what the consumer asked for."""

    def pick(self, ready: deque[Envelope], limit: int) -> list[Envelope]:
        return [ready.popleft() for _ in range(min(limit, len(ready)))]

    def settle(self, envelope: Envelope, outcome: Outcome) -> Outcome:
        return outcome


@runtime_checkable
class _ManualClock(Protocol):
    def set(self, when: float) -> None: ...


class SimulatedQueue:
    """A queue and its consumer in one process; implements the `QueueSender` port."""

    def __init__(
        self,
        name: str,
        *,
        clock: Clock,
        settings: ConsumerSettings = ConsumerSettings(),
        dead_letter: SimulatedQueue | None = None,
        faults: DeliveryFaults | None = None,
    ) -> None:
        self.name: str = name
        dlq_name = settings.dead_letter_queue
        if dead_letter is not None and dlq_name is not None and dead_letter.name != dlq_name:
            raise ValueError(f"dead_letter queue is {dead_letter.name!r} but settings name {dlq_name!r}")
        if dead_letter is None and dlq_name is not None:
            # Cloudflare creates a missing dead-letter queue on first use.
            dead_letter = SimulatedQueue(dlq_name, clock=clock)
        self.clock = clock
        self.settings = settings
        self.dead_letter = dead_letter
        self.faults: DeliveryFaults = faults or NoFaults()
        self.stats = QueueStats()
        self.dropped: list[DroppedMessage] = []
        self._delayed: list[tuple[float, int, Envelope]] = []
        self._ready: deque[Envelope] = deque()
        self._pushes = 0
        self._in_flight = 0
        self._wakeup: asyncio.Event | None = None
        self.stopping = False

    def stop_delivering(self) -> None:
        """Start no new invocation; a drain returns once those in flight finished. Messages stay stored."""
        self.stopping = True
        if self._wakeup is not None:
            self._wakeup.set()

    async def send(self, body: dict[str, Any], delay_seconds: int = 0) -> None:
        """Enqueue one message."""
        await self.send_batch([OutgoingMessage(body, delay_seconds)])

    async def send_batch(self, messages: Sequence[OutgoingMessage]) -> None:
        """Enqueue up to 100 messages (256 KB in all) at once; all or none are stored."""
        if len(messages) > MAX_BATCH_MESSAGES:
            raise QueueLimitError("send_batch message count", len(messages), MAX_BATCH_MESSAGES)
        encoded = []
        for message in messages:
            _check_delay(message.delay_seconds)
            body_json = json.dumps(message.body, allow_nan=False)
            size = len(body_json.encode())
            if size > MAX_MESSAGE_BYTES:
                raise QueueLimitError("message body size in bytes", size, MAX_MESSAGE_BYTES)
            encoded.append((body_json, size, message.delay_seconds))
        total = sum(size for _, size, _ in encoded)
        if total > MAX_BATCH_BYTES:
            raise QueueLimitError("send_batch size in bytes", total, MAX_BATCH_BYTES)
        now = self.clock.now()
        for body_json, _, delay_seconds in encoded:
            self._accept(Envelope(uuid.uuid4().hex, body_json, now), now + delay_seconds)

    def in_flight(self) -> int:
        """Messages delivered to an invocation that has not finished yet."""
        return self._in_flight

    def pending(self) -> int:
        """Messages not yet acked, dead-lettered or dropped: waiting or in flight."""
        return len(self._ready) + len(self._delayed) + self._in_flight

    def messages_waiting(self) -> list[dict[str, Any]]:
        """Bodies of the messages not in flight (visible or delayed), in visibility order."""
        delayed = [envelope for _, _, envelope in sorted(self._delayed, key=lambda entry: entry[:2])]
        return [json.loads(envelope.body_json) for envelope in [*self._ready, *delayed]]

    async def drain(
        self, handler: Handler, *, until_idle: bool = True, max_deliveries: int | None = None
    ) -> int:
        """Run consumer invocations until the queue is empty; returns the number of deliveries made.

        With `until_idle=False`, stop once nothing is visible or in flight instead of waiting out delays.
        With `max_deliveries`, stop starting invocations once that many messages have been delivered.
        """
        if self._wakeup is not None:
            raise RuntimeError(f"queue {self.name!r} is already being drained")
        self._wakeup = asyncio.Event()
        running: dict[asyncio.Task[None], QueueBatch] = {}
        delivered = 0
        try:
            while True:
                self._wakeup.clear()
                while not self.stopping and len(running) < self.settings.concurrency:
                    room = self.settings.max_batch_size
                    if max_deliveries is not None:
                        room = min(room, max_deliveries - delivered)
                    batch = self._next_batch(room) if room > 0 else None
                    if batch is None:
                        break
                    delivered += len(batch.messages)
                    self.stats.invocations += 1
                    running[asyncio.create_task(self._invoke(handler, batch))] = batch
                    self.stats.max_in_flight = max(self.stats.max_in_flight, len(running))
                budget_left = max_deliveries is None or delivered < max_deliveries
                slot_free = len(running) < self.settings.concurrency
                # A delayed message is only worth a timed wait when a slot is free to deliver it.
                wait_for_delays = (
                    until_idle and budget_left and slot_free and bool(self._delayed) and not self.stopping
                )
                if not running and not wait_for_delays:
                    return delivered
                next_visible = self._delayed[0][0] if wait_for_delays else None
                if not running and next_visible is not None and isinstance(self.clock, _ManualClock):
                    self.clock.set(next_visible)
                    await asyncio.sleep(0)  # let other tasks (a producer, say) act at the new time first
                    continue
                timeout = None if next_visible is None else max(0.0, next_visible - self.clock.now())
                await self._wait(running, timeout)
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            for batch in running.values():
                if not batch._settled:  # its task was cancelled before the handler started
                    self._apply(batch, crashed=True)
            self._wakeup = None

    def _accept(self, envelope: Envelope, visible_at: float) -> None:
        self.stats.sent += 1
        self._store(envelope, visible_at)

    def _store(self, envelope: Envelope, visible_at: float) -> None:
        self._pushes += 1
        heapq.heappush(self._delayed, (visible_at, self._pushes, envelope))
        if self._wakeup is not None:
            self._wakeup.set()

    def _next_batch(self, limit: int) -> QueueBatch | None:
        """Take the next batch of visible messages; the one place delivery order is decided."""
        now = self.clock.now()
        while self._delayed and self._delayed[0][0] <= now:
            self._ready.append(heapq.heappop(self._delayed)[2])
        envelopes = self.faults.pick(self._ready, limit) if self._ready else []
        if not envelopes:
            return None
        for envelope in envelopes:
            envelope.attempts += 1
        self._in_flight += len(envelopes)
        self.stats.delivered += len(envelopes)
        return QueueBatch(self.name, envelopes)

    async def _wait(self, running: dict[asyncio.Task[None], QueueBatch], timeout: float | None) -> None:
        """Wait for an invocation to finish, a message to arrive, or `timeout` seconds of clock time."""
        assert self._wakeup is not None
        waiters: set[asyncio.Task[Any]] = {asyncio.create_task(self._wakeup.wait())}
        if timeout is not None and not isinstance(self.clock, _ManualClock):
            waiters.add(asyncio.create_task(self.clock.sleep(timeout)))
        try:
            done, _ = await asyncio.wait({*running, *waiters}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)
        for task in done - waiters:
            del running[task]
            # A handler that raised CancelledError itself was settled as a crash; don't let it end the drain.
            if not task.cancelled():
                task.result()

    async def _invoke(self, handler: Handler, batch: QueueBatch) -> None:
        try:
            await handler(batch)
        except Exception:
            ids = ", ".join(message.id for message in batch.messages)
            logger.exception("consumer of queue %s raised; retrying unacked messages %s", self.name, ids)
            self._apply(batch, crashed=True)
        except asyncio.CancelledError:
            self._apply(batch, crashed=True)
            raise
        else:
            self._apply(batch, crashed=False)

    def _apply(self, batch: QueueBatch, *, crashed: bool) -> None:
        settled = batch._settle(crashed)
        self._in_flight -= len(settled)
        for envelope, asked in settled:
            outcome = self.faults.settle(envelope, asked)
            if outcome.ack:
                self.stats.acked += 1
            elif envelope.attempts <= self.settings.max_retries:
                delay = self.settings.retry_delay if outcome.delay_seconds is None else outcome.delay_seconds
                self.stats.retried += 1
                self._store(envelope, self.clock.now() + delay)
            else:
                self._give_up(envelope)

    def _give_up(self, envelope: Envelope) -> None:
        """Move a message past `max_retries` to the dead-letter queue, or delete it."""
        if self.dead_letter is not None:
            self.stats.dead_lettered += 1
            # Like miniflare, keep the id and timestamp so a dead letter can be traced to its source.
            fresh = Envelope(envelope.id, envelope.body_json, envelope.timestamp)
            self.dead_letter._accept(fresh, self.dead_letter.clock.now())
            logger.info(
                "queue %s: message %s dead-lettered to %s", self.name, envelope.id, self.dead_letter.name
            )
            return
        self.stats.dropped += 1
        body = json.loads(envelope.body_json)
        self.dropped.append(DroppedMessage(envelope.id, body, envelope.attempts, envelope.timestamp))
        logger.warning(
            "queue %s: message %s dropped after %d attempts", self.name, envelope.id, envelope.attempts
        )
