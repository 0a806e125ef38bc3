"""The local runner with every invocation's subrequests counted from outside the crawler."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import Any

from bench.probe import Probe
from local.queue import QueueBatch, SimulatedQueue
from local.runner import LocalRunner
from producer.core import RunStarted
from shared.ports import Clock, OutgoingMessage

WINDOW_S = 60.0


class FanOutSpread:
    """PROTOTYPE (not the shipped design): delay fresh crawl messages so they arrive at `per_minute`.

    The first minute's worth goes at once (the bucket starts full); the rest are spaced evenly, so
    consumers meet a bucket that never runs dry instead of pacing and requeueing among themselves.
    """

    def __init__(self, per_minute: float, clock: Clock) -> None:
        if per_minute <= 0:
            raise ValueError(f"per_minute must be positive, got {per_minute!r}")
        self.per_minute = per_minute
        self._clock = clock
        self._first: float | None = None
        self._sent = 0

    def delay(self, message: OutgoingMessage) -> OutgoingMessage:
        body = message.body
        if body.get("type") != "crawl" or body.get("seq", 0) != 0:
            return message
        now = self._clock.now()
        if self._first is None:
            self._first = now
        burst = math.floor(self.per_minute)
        k, self._sent = self._sent, self._sent + 1
        if k < burst:
            return message
        due = self._first + WINDOW_S + (k - burst) * WINDOW_S / self.per_minute
        return OutgoingMessage(body, max(message.delay_seconds, math.ceil(due - now)))


class CountingQueue(SimulatedQueue):
    """The simulated queue, counting each send as one internal subrequest."""

    def __init__(self, probe: Probe, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.probe = probe
        self.spread: FanOutSpread | None = None
        self.sent = asyncio.Event()  # set by the first send

    async def send_batch(self, messages: Sequence[OutgoingMessage]) -> None:
        self.probe.count("queue")
        if self.spread is not None:
            messages = [self.spread.delay(m) for m in messages]
        await super().send_batch(messages)
        self.sent.set()


class MeasuredRunner(LocalRunner):
    """LocalRunner whose producer tick and consumer invocations each get their own tally in `probe`."""

    def __init__(self, *args: Any, probe: Probe, spread: FanOutSpread | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.probe = probe
        q = self.queue
        self.queue = CountingQueue(
            probe, q.name, clock=q.clock, settings=q.settings, dead_letter=q.dead_letter, faults=q.faults
        )
        self.queue.spread = spread

    async def tick(
        self, scheduled_time: float | None = None, streamer_ids: Sequence[str] | None = None
    ) -> RunStarted:
        with self.probe.invocation("producer"):
            return await super().tick(scheduled_time, streamer_ids)

    async def crawl_overlapped(self) -> RunStarted:
        """The producer's tick, with consumers starting on its first message rather than after it returns.

        Cloudflare delivers a message while the invocation that sent it is still finishing its own work.
        """
        ticking = asyncio.ensure_future(self.tick())
        first_send = asyncio.ensure_future(self.queue.sent.wait())
        try:
            await asyncio.wait({ticking, first_send}, return_when=asyncio.FIRST_COMPLETED)
            await self.drain()
            started = await ticking
        finally:
            first_send.cancel()
        await self.drain()  # whatever the tick sent after the first drain emptied the queue
        return started

    async def _consume(self, batch: QueueBatch) -> None:
        # Runs inside the queue's task for this invocation, so the tally sees only this invocation's calls.
        with self.probe.invocation("consumer", _message_type(batch)):
            await super()._consume(batch)

    async def _consume_dead_letters(self, batch: QueueBatch) -> None:
        with self.probe.invocation("consumer", "dead_letter"):
            await super()._consume_dead_letters(batch)


def _message_type(batch: QueueBatch) -> str:
    body = batch.messages[0].body if batch.messages else None
    kind = body.get("type") if isinstance(body, dict) else None
    return kind if isinstance(kind, str) else "unknown"
