"""The consumer Worker: crawl jobs from the jobs queue, terminal failures from its dead-letter queue."""

from __future__ import annotations

from typing import Any

from workers import WorkerEntrypoint  # type: ignore[import-not-found]

from consumer.core import Verdict, handle_dead_letter, handle_message
from consumer.dispatch import process_batch
from shared.bindings import DeliveredMessage, worker_env
from shared.logs import Redactor, configure


class Default(WorkerEntrypoint):  # type: ignore[misc]
    async def queue(self, batch: Any, env: Any = None, ctx: Any = None) -> None:
        # The runtime passes (batch, env, ctx) positionally, and None for env and ctx on a class
        # entrypoint: the bindings are on self.env.
        worker = worker_env(self.env)
        # Workers Logs shows what reaches stderr; Python alone would print only warnings.
        configure(Redactor.for_settings(worker.settings, worker.api_token))

        async def crawl(body: Any, attempts: int) -> Verdict:
            return await handle_message(body, attempts, worker.ports, worker.settings)

        async def dead_letter(body: Any, attempts: int) -> Verdict:
            return await handle_dead_letter(body, worker.ports, worker.settings)

        # Each message is acked or retried on its own, so returning normally never redelivers the batch.
        async with worker.http:
            await process_batch(
                [DeliveredMessage(m) for m in batch.messages],
                dead_letter if batch.queue == worker.dead_letter_queue else crawl,
            )
