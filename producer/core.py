"""The producer core: open a run, create one job per due streamer, enqueue one message per job."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from shared import store
from shared.budget import Budget
from shared.config import Settings
from shared.helix import AppToken, HelixClient
from shared.messages import CrawlJob
from shared.metered import MeteredDatabase, MeteredQueue
from shared.ports import Clock, Database, OutgoingMessage, QueueSender, Statement
from shared.timefmt import align_down, parse_rfc3339, to_rfc3339
from shared.windows import Window

log = logging.getLogger("clipcrawler.producer")
SWEEP_LIMIT = 100  # stale jobs re-sent per tick: one queue send


@dataclass
class ProducerPorts:
    db: Database
    queue: QueueSender
    clock: Clock
    http: httpx.AsyncClient | None = None  # to mint the app token once per run, not once per consumer


@dataclass(frozen=True)
class RunStarted:
    """What one producer invocation did."""

    run_id: int
    opened: bool  # False: this cron slot already had a run, nothing was enqueued
    jobs: int  # messages sent for new jobs
    resent: int  # messages re-sent for stale jobs (lost messages, dead consumers)
    finished: bool  # the run had nothing to do and is already finished
    subrequests: int


def slot_key(scheduled_time: float) -> str:
    """The idempotency key of a cron tick: its scheduled minute."""
    return "cron:" + to_rfc3339(align_down(scheduled_time, 60))


async def start_run(ports: ProducerPorts, settings: Settings, *, scheduled_time: float | None = None,
                    streamer_ids: Sequence[str] | None = None, backfill: Window | None = None) -> RunStarted:
    """A cron tick (`scheduled_time` given) or a manual kick (always a new run).

    A manual kick can be limited to some streamers and can backfill a fixed window instead of each
    streamer's usual range.
    """
    budget = Budget(*settings.limits)
    db = MeteredDatabase(ports.db, budget)
    queue = MeteredQueue(ports.queue, budget)
    now = ports.clock.now()
    stamp = to_rfc3339(now)
    kind = "scheduled" if scheduled_time is not None else "manual"
    key = slot_key(scheduled_time) if scheduled_time is not None else None

    inserted, existing = await db.batch(store.open_run(key, kind, stamp))
    run = inserted.rows[0] if inserted.rows else existing.rows[0]
    run_id = int(run["id"])
    if run["status"] != "enqueuing":
        log.info("run %s: slot %s already opened", run_id, key)
        return RunStarted(run_id, False, 0, 0, run["status"] == "finished", budget.total)

    stale_before = to_rfc3339(now - settings.lease_seconds)
    created, queued, _, stale, token_row = await db.batch(
        store.create_jobs(run_id, stamp, streamer_ids,
                          to_rfc3339(backfill.start) if backfill else None, to_rfc3339(backfill.end) if backfill else None)
        + [store.stale_jobs(stale_before, SWEEP_LIMIT), store.read_token(settings.twitch_client_id)])
    fresh = [CrawlJob(run_id, int(j["id"]), str(j["streamer_id"])) for j in queued.rows]
    fresh_ids = {m.job_id for m in fresh}
    resend = [CrawlJob(int(j["run_id"]), int(j["id"]), str(j["streamer_id"]))
              for j in stale.rows if int(j["id"]) not in fresh_ids]

    token_statements = await _fresh_token(ports, settings, budget, token_row.rows)
    outgoing = [OutgoingMessage(m.encode()) for m in fresh + resend]
    if outgoing:
        await queue.send_batch(outgoing)

    calls = store.Calls(helix=budget.calls["helix"], d1=budget.calls["d1"] + 1, queue=budget.calls["queue"])
    statements = store.mark_enqueued(run_id, stamp, calls) + token_statements
    if resend:
        statements.append(store.postpone_jobs([m.job_id for m in resend], to_rfc3339(now + settings.lease_seconds)))
    results = await db.batch(statements)
    finished = bool(results[1].rows)
    log.info("run %s: %d jobs enqueued, %d stale re-sent", run_id, len(fresh), len(resend))
    return RunStarted(run_id, True, len(fresh), len(resend), finished, budget.total)


async def _fresh_token(ports: ProducerPorts, settings: Settings, budget: Budget,
                       rows: list[dict]) -> list[Statement]:
    """Mint the app token here when it is missing or near expiry, so consumers don't all mint at once."""
    if ports.http is None or not (settings.twitch_client_id and settings.twitch_client_secret):
        return []
    now = ports.clock.now()
    if rows and AppToken(rows[0]["access_token"], parse_rfc3339(rows[0]["expires_at"])).usable(now):
        return []
    helix = HelixClient(ports.http, settings, budget, ports.clock)
    try:
        token = await helix.mint_token()
    except Exception as exc:  # consumers mint on their own if this fails; the run goes on
        log.warning("token not minted by the producer: %s", exc)
        return []
    return [store.store_token(settings.twitch_client_id, token.access_token, to_rfc3339(token.expires_at),
                              to_rfc3339(now))]
