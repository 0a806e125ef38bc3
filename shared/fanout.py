"""Fan-out in slices: each invocation enqueues at most one slice of streamers and hands on the rest.

One producer invocation could not enqueue 100,000 streamers on the Free plan (1,000 queue sends), so
it enqueues the first slice itself and sends a FanOut message for the next. A slice costs two D1 round
trips (read who is due, then create the jobs), a Get Streams call per 100 streamers not due (those
live now are crawled anyway), and at most `slice_size / 100 + 1` queue sends.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable
from dataclasses import dataclass

import httpx

from shared import store
from shared.batch import Batch
from shared.config import Settings
from shared.errors import AuthFailed, BudgetExhausted, ConfigError, HelixError
from shared.helix import AppToken, HelixClient
from shared.limits import MAX_DELAY_SECONDS
from shared.messages import CrawlJob, FanOut
from shared.metered import MeteredDatabase, MeteredQueue
from shared.ports import Clock, OutgoingMessage, Row
from shared.timefmt import parse_rfc3339, to_rfc3339

log = logging.getLogger("clipcrawler.fanout")


@dataclass(frozen=True)
class SliceResult:
    jobs: int  # crawl messages sent
    more: bool  # a FanOut for the next slice was sent
    owned: bool  # False: a duplicate delivery; someone else already did this slice
    finished_run: Row | None  # the run's row, when the last slice closed an empty run
    run_found: bool = True  # False: the message names a run that does not exist


async def fan_out(
    db: MeteredDatabase,
    queue: MeteredQueue,
    run_id: int,
    after: str,
    *,
    settings: Settings,
    clock: Clock,
    http: httpx.AsyncClient | None = None,
    minting: Awaitable[AppToken | None] | None = None,
) -> SliceResult:
    """Enqueue the jobs of the slice after `after`; then chain the next slice, or mark the run enqueued.

    `minting` is an app token on its way (the producer's, for a database without a usable one): it is
    stored in the same batch that queues the jobs, before any message goes out.
    """
    now = clock.now()
    stamp = to_rfc3339(now)
    size = settings.fanout_slice
    read = await (
        Batch()
        .add(store.slice_members(run_id, after, size, stamp), "members")
        .add(store.read_token(settings.twitch_client_id), "token")
        .add(store.run_progress(run_id), "run")
        .run(db)
    )
    token, run = read.rows("token"), read.first("run")
    resting = [str(m["id"]) for m in read.rows("members") if not m["due"]]
    refused = store.refusal(read.first("token"), run_id)
    try:
        minted = await minting if minting is not None else None
    except AuthFailed as exc:  # stored with the jobs below, before their messages go out
        minted, refused = None, str(exc)
        extra_refusal = [store.refuse_token(settings.twitch_client_id, run_id, refused, stamp)]
    else:
        extra_refusal = []
    cached = minted or AppToken.from_row(read.first("token"))
    # With the credentials refused, a live check would only be refused again.
    helix = None if http is None or refused else HelixClient(http, settings, db.budget, clock, cached)
    live = await _live(helix, resting)
    extra = [store.record_live(sorted(live), stamp)] if live else []
    extra.extend(extra_refusal)
    minted = helix.minted if helix is not None and helix.minted is not None else minted
    if minted is not None:
        extra.append(
            store.store_token(
                settings.twitch_client_id, minted.access_token, to_rfc3339(minted.expires_at), stamp
            )
        )
    sliced = await store.fan_out_slice(run_id, after, size, stamp, sorted(live)).add_all(extra).run(db)
    if sliced.changes("moved") == 0:
        return SliceResult(0, False, False, None, run_found=run is not None)
    assert run is not None  # the cursor moved, so the run is there
    bounds = sliced.first("bounds")
    assert bounds is not None  # one row, always
    queued = sliced.rows("queued")
    more = bool(bounds["more"])
    delays = spread(
        len(queued),
        first=int(run["jobs_total"]),
        more=more,
        now=now,
        started=parse_rfc3339(run["created_at"]),
        limit=_limit(token, settings),
        share=settings.ratelimit_share,
    )
    messages = [
        OutgoingMessage(CrawlJob(run_id, int(j["id"]), str(j["streamer_id"])).encode(), delay)
        for j, delay in zip(queued, delays, strict=True)
    ]
    if more:
        messages.append(OutgoingMessage(FanOut(run_id, str(bounds["last"])).encode()))
    if messages:
        await queue.send_batch(messages)
    finished = None
    if not more:
        calls = store.Calls(
            helix=db.budget.calls["helix"], d1=db.budget.calls["d1"] + 1, queue=db.budget.calls["queue"]
        )
        finished = (await store.mark_enqueued(run_id, stamp, calls).run(db)).first("finished_run")
    return SliceResult(len(queued), more, True, finished)


async def _live(helix: HelixClient | None, streamer_ids: list[str]) -> set[str]:
    """Streamers live now among those not due; a failed check only means waiting for their turn."""
    if helix is None or not streamer_ids:
        return set()
    try:
        return await helix.get_live(streamer_ids)
    except (HelixError, BudgetExhausted, ConfigError) as exc:
        log.warning("live check skipped for %d streamers: %s", len(streamer_ids), exc)
        return set()


def spread(
    count: int, *, first: int, more: bool, now: float, started: float, limit: int, share: float
) -> list[int]:
    """Delivery delays for a slice's messages, so that a big run meets Twitch at a steady pace.

    A run that fits in one minute's points goes out at once. A bigger one is spread from its start
    at `share` of the per-minute limit, one Helix call a job: a burst would spend the bucket in
    seconds and leave every other consumer to be refused (429) and requeued until the reset.
    """
    per_second = share * limit / 60
    if not more and first == 0 and count <= share * limit:
        return [0] * count
    return [
        min(MAX_DELAY_SECONDS, max(0, math.ceil(started + (first + i) / per_second - now)))
        for i in range(count)
    ]


def _limit(rows: list[Row], settings: Settings) -> int:
    """Twitch's per-minute points as last seen in its headers, else the documented default."""
    known = rows[0]["ratelimit_limit"] if rows else None
    return int(known) if known else settings.ratelimit_assumed_points
