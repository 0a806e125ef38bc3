"""The producer core: open a run, create one job per due streamer, enqueue one message per job."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from producer.hot import mark_views
from shared import store
from shared.budget import Budget
from shared.config import Settings
from shared.errors import AuthFailed, BudgetExhausted, HelixError
from shared.fanout import fan_out
from shared.helix import AppToken, HelixClient
from shared.logs import EventLog, Redactor, log_bug
from shared.messages import CrawlJob, FanOut
from shared.metered import MeteredDatabase, MeteredQueue
from shared.notify import announce_run_finished
from shared.ports import OutgoingMessage, Ports, Row
from shared.states import RunStatus
from shared.timefmt import align_down, to_rfc3339
from shared.windows import Window

log = logging.getLogger("clipcrawler.producer")
SWEEP_LIMIT = 100  # stale jobs re-sent per tick: one queue send


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


async def start_run(
    ports: Ports,
    settings: Settings,
    *,
    scheduled_time: float | None = None,
    streamer_ids: Sequence[str] | None = None,
    backfill: Window | None = None,
) -> RunStarted:
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

    # Longer than any retry or requeue delay and any lease: a message this late is not coming. A backlog
    # that is merely slow would be served twice, harmlessly (the claim lets one copy through).
    sweep_after = settings.sweep_after_minutes * 60
    stale_before = to_rfc3339(now - sweep_after)
    opened = await (
        store.open_run(
            key,
            kind,
            stamp,
            to_rfc3339(backfill.start) if backfill else None,
            to_rfc3339(backfill.end) if backfill else None,
            streamer_ids,
        )
        .add(store.stale_jobs(stale_before, SWEEP_LIMIT), "stale")
        .add(store.stuck_fan_outs(stale_before), "stuck")
        .add(store.read_token(settings.twitch_client_id), "token")
        .run(db)
    )
    run = opened.first("inserted") or opened.first("existing")
    assert run is not None  # the slot's run exists once the insert is done
    run_id = int(run["id"])
    if run["status"] != RunStatus.ENQUEUING:
        log.info("run %s: slot %s already opened", run_id, key)
        return RunStarted(run_id, False, 0, 0, run["status"] == RunStatus.FINISHED, budget.total)
    # Minted while the fan-out reads its slice, and stored in the batch that queues the jobs: a consumer
    # must find it in D1 when it starts, or each of the first few dozen would mint one of its own.
    minting = asyncio.ensure_future(_fresh_token(ports, settings, budget, opened.rows("token")))
    # Sweep: jobs whose message was lost or whose consumer died, and fan-outs that stopped half-way.
    resend = [CrawlJob(int(j["run_id"]), int(j["id"]), str(j["streamer_id"])) for j in opened.rows("stale")]
    resume = [
        FanOut(int(r["id"]), str(r["fanout_cursor"])) for r in opened.rows("stuck") if int(r["id"]) != run_id
    ]
    if resend or resume:
        sweep: list[CrawlJob | FanOut] = [*resend, *resume]
        await queue.send_batch([OutgoingMessage(m.encode()) for m in sweep])

    try:
        sliced = await fan_out(
            db, queue, run_id, "", settings=settings, clock=ports.clock, http=ports.http, minting=minting
        )
    finally:
        if not minting.done():  # the fan-out failed before it needed the token
            minting.cancel()
        elif not minting.cancelled():
            minting.exception()  # retrieved: a refusal the fan-out never awaited is not an unhandled error
    closing = mark_views(now, settings)
    if resend:
        closing.add(store.postpone_jobs([m.job_id for m in resend], to_rfc3339(now + sweep_after)))
    await closing.run(db)
    events = EventLog(Redactor.for_settings(settings))
    events.emit(
        "run_opened",
        run_id=run_id,
        kind=kind,
        slot=key,
        jobs=sliced.jobs,
        more=sliced.more,
        resent=len(resend),
        resumed=len(resume),
        subrequests=budget.total,
    )
    if sliced.finished_run is not None:  # nothing to crawl: the run ends here, not in a consumer
        await announce_run_finished(
            run_id, db=db, http=ports.http, settings=settings, events=events, row=sliced.finished_run
        )
    return RunStarted(run_id, True, sliced.jobs, len(resend), sliced.finished_run is not None, budget.total)


async def _fresh_token(ports: Ports, settings: Settings, budget: Budget, rows: list[Row]) -> AppToken | None:
    """Mint the app token here when it is missing or near expiry, so consumers don't all mint at once."""
    if ports.http is None or not (settings.twitch_client_id and settings.twitch_client_secret):
        return None
    cached = AppToken.from_row(rows[0] if rows else None)
    if cached is not None and cached.usable(ports.clock.now()):
        return None
    helix = HelixClient(ports.http, settings, budget, ports.clock)
    try:
        return await helix.mint_token()
    except AuthFailed as exc:  # the fan-out records it for the run, whose consumers then fail asking no more
        log.warning("token not minted by the producer: %s", exc)
        raise
    except (HelixError, BudgetExhausted) as exc:  # consumers mint on their own if this fails; the run goes on
        log.warning("token not minted by the producer: %s", exc)
        return None
    except Exception as exc:  # a bug: the run still goes on, as above
        log_bug("producer.mint_token", exc)
        return None
