"""Runs the real producer and consumer locally: SQLite for D1, the simulated queue, any Helix."""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from consumer.core import Verdict, handle_dead_letter, handle_message
from consumer.dispatch import process_batch
from local.queue import ConsumerSettings, QueueBatch, SimulatedQueue
from producer.core import RunStarted, start_run
from shared.config import Settings
from shared.ports import BatchShortcuts, Clock, Database, Ports, Result, Statement
from shared.states import JobStatus
from shared.timefmt import to_rfc3339

LEDGER_PRUNE_AT = 2_000
log = logging.getLogger("clipcrawler.local")
QUEUE_NAME = "clipcrawler-jobs"
DLQ_NAME = "clipcrawler-jobs-dlq"


@dataclass
class InvocationLog:
    """Per consumer invocation: the subrequests it used and how it ended."""

    subrequests: list[int] = field(default_factory=list)
    external: list[int] = field(default_factory=list)
    internal: list[int] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)

    def record(self, verdicts: Sequence[Verdict | None]) -> None:
        for verdict in verdicts:
            outcome = verdict.outcome if verdict is not None else "crashed"
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
            if verdict is not None:
                self.subrequests.append(verdict.subrequests)
                self.external.append(verdict.external)
                self.internal.append(verdict.internal)


class LeaseLedger(BatchShortcuts):
    """The consumers' database, noting each job lease they claim, so a hard stop can hand them all back."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.held: dict[int, str] = {}  # job id -> lease token, from the claim's RETURNING row
        self._noting: set[asyncio.Future[list[Result]]] = set()
        self._pruning: asyncio.Task[None] | None = None

    async def batch(self, statements: Sequence[Statement]) -> list[Result]:
        # Shielded: a caller cancelled mid-batch (the second Ctrl-C) does not stop its claim from committing,
        # so the lease it took must still be noted, or `release` would miss it.
        task = asyncio.ensure_future(self._batch_and_note(statements))
        self._noting.add(task)
        task.add_done_callback(self._noting.discard)
        return await asyncio.shield(task)

    async def _batch_and_note(self, statements: Sequence[Statement]) -> list[Result]:
        results = await self.db.batch(statements)
        for result in results:
            for row in result.rows:
                if row.get("status") == JobStatus.RUNNING and row.get("lease_token") and "reclaims" in row:
                    self.held[int(row["id"])] = str(row["lease_token"])
        if len(self.held) > LEDGER_PRUNE_AT and self._pruning is None:
            # A long `serve` claims jobs for days: forget the settled ones. One prune at a time, and in a task
            # of its own with an empty context: the Worker keeps no ledger, so no invocation waits on (or is
            # charged for) this round trip.
            self._pruning = asyncio.create_task(self._prune(), context=contextvars.Context())
        return results

    async def _prune(self) -> None:
        snapshot = dict(self.held)
        try:
            running = await self.db.all(
                "SELECT id, lease_token FROM jobs WHERE status = 'running' "
                "AND id IN (SELECT value FROM json_each(?))",
                json.dumps(list(snapshot)),
            )
        except Exception as exc:  # the ledger stays as it was; the next claim past the mark tries again
            log.warning("lease ledger: prune failed: %s: %s", type(exc).__name__, exc)
            return
        finally:
            self._pruning = None
        still = {int(r["id"]): r["lease_token"] for r in running}
        # A lease noted while the query ran (a new claim, or a continuation's) was not asked about: kept.
        self.held = {
            job_id: token
            for job_id, token in self.held.items()
            if snapshot.get(job_id) != token or still.get(job_id) == token
        }

    async def release(self, now: float) -> int:
        """Put every job still running under a lease of ours back to `queued`; how many there were."""
        if self._noting:  # batches whose callers were cancelled: their claims may still be committing
            await asyncio.gather(*self._noting, return_exceptions=True)
        if self._pruning is not None:
            await asyncio.gather(self._pruning, return_exceptions=True)
        if not self.held:
            return 0
        pairs = json.dumps([[job_id, token] for job_id, token in self.held.items()])
        result = await self.db.run(
            "UPDATE jobs SET status = 'queued', lease_expires_at = NULL, due_at = ?, "
            "stop_reason = 'interrupted' WHERE status = 'running' AND EXISTS (SELECT 1 FROM json_each(?) AS "
            "p "
            "WHERE json_extract(p.value, '$[0]') = jobs.id "
            "AND json_extract(p.value, '$[1]') = jobs.lease_token)",
            to_rfc3339(now),
            pairs,
        )
        self.held.clear()
        return result.changes


class LocalRunner:
    """Ticks the producer and drains the queue through the consumer, as Cloudflare would."""

    def __init__(
        self,
        db: Database,
        http: httpx.AsyncClient,
        settings: Settings,
        clock: Clock,
        *,
        concurrency: int = 50,
        queue: SimulatedQueue | None = None,
        seed: int | None = None,
    ) -> None:
        self.db = db
        self.http = http
        self.settings = settings
        self.clock = clock
        self.dlq = SimulatedQueue(
            DLQ_NAME,
            clock=clock,
            settings=ConsumerSettings(
                max_batch_size=1, max_retries=settings.max_retries, retry_delay=settings.retry_delay_seconds
            ),
        )
        if queue is not None and queue.dead_letter is not None:
            self.dlq = queue.dead_letter
        self.queue = queue or SimulatedQueue(
            QUEUE_NAME,
            clock=clock,
            dead_letter=self.dlq,
            settings=ConsumerSettings(
                max_batch_size=1,
                max_batch_timeout=0,
                max_retries=settings.max_retries,
                retry_delay=settings.retry_delay_seconds,
                max_concurrency=concurrency,
                dead_letter_queue=DLQ_NAME,
            ),
        )
        self.invocations = InvocationLog()
        self.leases = LeaseLedger(db)
        self._rng = random.Random(seed)
        self._on_verdict: Callable[[Verdict | None], Any] | None = None

    @property
    def consumer_ports(self) -> Ports:
        return Ports(db=self.leases, queue=self.queue, clock=self.clock, http=self.http)

    async def tick(
        self, scheduled_time: float | None = None, streamer_ids: Sequence[str] | None = None
    ) -> RunStarted:
        """One producer invocation: a cron tick for `scheduled_time`, or a manual kick."""
        ports = Ports(db=self.db, queue=self.queue, clock=self.clock, http=self.http)
        return await start_run(ports, self.settings, scheduled_time=scheduled_time, streamer_ids=streamer_ids)

    async def drain(self, on_verdict: Callable[[Verdict | None], Any] | None = None) -> None:
        """Deliver until both the queue and its dead-letter queue are empty."""
        self._on_verdict = on_verdict
        while (self.queue.pending() or self.dlq.pending()) and not self.stopping:
            await self.queue.drain(self._consume)
            await self.dlq.drain(self._consume_dead_letters)

    @property
    def stopping(self) -> bool:
        return self.queue.stopping

    def stop(self) -> None:
        """Take no new message; the drain ends once the invocations in flight have finished."""
        self.queue.stop_delivering()
        self.dlq.stop_delivering()

    async def crawl(
        self,
        scheduled_time: float | None = None,
        streamer_ids: Sequence[str] | None = None,
        on_verdict: Callable[[Verdict | None], Any] | None = None,
    ) -> RunStarted:
        started = await self.tick(scheduled_time, streamer_ids)
        await self.drain(on_verdict)
        return started

    async def _consume(self, batch: QueueBatch) -> None:
        async def handle(body: Any, attempts: int) -> Verdict:
            return await handle_message(body, attempts, self.consumer_ports, self.settings, self._rng)

        self._record(await process_batch(batch.messages, handle))

    async def _consume_dead_letters(self, batch: QueueBatch) -> None:
        async def handle(body: Any, attempts: int) -> Verdict:
            return await handle_dead_letter(body, self.consumer_ports, self.settings)

        self._record(await process_batch(batch.messages, handle))

    def _record(self, verdicts: Sequence[Verdict | None]) -> None:
        self.invocations.record(verdicts)
        if self._on_verdict is not None:
            for verdict in verdicts:
                self._on_verdict(verdict)
