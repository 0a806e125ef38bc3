"""Fan-out in slices: each invocation enqueues at most one slice of streamers and hands on the rest.

One producer invocation could not enqueue 100,000 streamers on the Free plan (1,000 queue sends), so
it enqueues the first slice itself and sends a FanOut message for the next; each slice is one D1 batch
and at most `slice_size / 100 + 1` queue sends.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared import store
from shared.messages import CrawlJob, FanOut
from shared.metered import MeteredDatabase, MeteredQueue
from shared.ports import OutgoingMessage, Row
from shared.timefmt import to_rfc3339


@dataclass(frozen=True)
class SliceResult:
    jobs: int  # crawl messages sent
    more: bool  # a FanOut for the next slice was sent
    owned: bool  # False: a duplicate delivery; someone else already did this slice
    finished_run: Row | None  # the run's row, when the last slice closed an empty run


async def fan_out(db: MeteredDatabase, queue: MeteredQueue, run_id: int, after: str, *, slice_size: int,
                  now: float) -> SliceResult:
    """Enqueue the jobs of the slice after `after`; then chain the next slice, or mark the run enqueued."""
    stamp = to_rfc3339(now)
    _, queued, bounds, moved = await db.batch(store.fan_out_slice(run_id, after, slice_size, stamp))
    if moved.changes == 0:
        return SliceResult(0, False, False, None)
    messages = [OutgoingMessage(CrawlJob(run_id, int(j["id"]), str(j["streamer_id"])).encode())
                for j in queued.rows]
    more = bool(bounds.rows[0]["more"])
    if more:
        messages.append(OutgoingMessage(FanOut(run_id, str(bounds.rows[0]["last"])).encode()))
    if messages:
        await queue.send_batch(messages)
    finished = None
    if not more:
        calls = store.Calls(helix=db.budget.calls["helix"], d1=db.budget.calls["d1"] + 1,
                            queue=db.budget.calls["queue"])
        results = await db.batch(store.mark_enqueued(run_id, stamp, calls))
        finished = results[1].rows[0] if results[1].rows else None
    return SliceResult(len(queued.rows), more, True, finished)
