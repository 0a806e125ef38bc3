"""Apply the core's verdicts to a delivered batch: one message's failure never touches another's."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from consumer.core import Verdict

log = logging.getLogger("clipcrawler.consumer")
CRASH_RETRY_SECONDS = 30


class Delivered(Protocol):
    """A delivered queue message as the entry adapts it (local queue and Workers alike)."""

    body: Any
    attempts: int

    def ack(self) -> None: ...

    def retry(self, delay_seconds: int | None = None) -> None: ...


Handler = Callable[[Any, int], Awaitable[Verdict]]


async def process_batch(messages: Iterable[Delivered], handle: Handler) -> list[Verdict | None]:
    """Handle each message on its own, then ack it or retry it with the verdict's delay."""
    verdicts: list[Verdict | None] = []
    for message in messages:
        try:
            verdict = await handle(message.body, message.attempts)
        except Exception as exc:
            # Explicit retry: throwing would redeliver the whole batch, acked messages aside.
            log.error("message failed: %s: %s", type(exc).__name__, exc)
            message.retry(CRASH_RETRY_SECONDS)
            verdicts.append(None)
            continue
        if verdict.ack:
            message.ack()
        else:
            message.retry(verdict.delay_seconds)
        verdicts.append(verdict)
    return verdicts
