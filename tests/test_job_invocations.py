"""`jobs.invocations` counts the consumer invocations that worked on a job (issue 13, finding 7)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from shared import store
from shared.timefmt import to_rfc3339
from tests.conftest import StackFactory


async def test_every_job_counts_the_invocations_that_claimed_it(make_stack: StackFactory) -> None:
    # A small external budget splits the busiest streamers over several invocations (continuations).
    stack = await make_stack(12, clips_per_day=(300, 600), external_limit=2)
    started = await stack.runner.crawl()
    jobs = await stack.db.all("SELECT invocations, pages, status FROM jobs WHERE run_id = ?", started.run_id)
    assert jobs and all(j["status"] == "done" for j in jobs)
    assert all(j["invocations"] >= 1 for j in jobs)
    assert any(j["invocations"] > 1 for j in jobs)  # some needed continuations
    # Without faults every delivery claims its job once: the counters add up to the invocations made.
    assert sum(j["invocations"] for j in jobs) == len(stack.runner.invocations.subrequests)


class StallingClips(httpx.AsyncBaseTransport):
    """Answers everything but Get Clips, which never answers: every invocation hangs mid-crawl, lease held."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.stalled = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/clips"):
            self.stalled += 1
            await asyncio.Event().wait()
        return await self.inner.handle_async_request(request)


async def test_a_hard_stop_hands_back_every_lease_the_runner_holds(make_stack: StackFactory) -> None:
    """The second Ctrl-C cancels invocations mid-crawl; the jobs they held go back to `queued` at once."""
    stalling: list[StallingClips] = []
    stack = await make_stack(
        30,
        concurrency=10,
        transport_wrapper=lambda inner: stalling.append(StallingClips(inner)) or stalling[0],
    )
    started = await stack.runner.tick()
    drain = asyncio.create_task(stack.runner.drain())
    while stalling[0].stalled < 10:
        await asyncio.sleep(0)
    drain.cancel()
    with pytest.raises(asyncio.CancelledError):
        await drain
    held = await stack.db.all("SELECT id FROM jobs WHERE status = 'running'")
    assert len(held) == 10  # cancelled mid-crawl, their leases still held
    assert await stack.runner.leases.release(stack.clock.now()) == 10
    counts = await stack.db.all(
        "SELECT status, count(*) AS n FROM jobs WHERE run_id = ? GROUP BY status", started.run_id
    )
    assert counts == [{"status": "queued", "n": 30}]  # the next run's resume crawls them all


async def test_a_claim_whose_caller_is_cancelled_mid_batch_is_still_handed_back(
    make_stack: StackFactory,
) -> None:
    """The second Ctrl-C can land while a claim is between BEGIN and COMMIT: the claim still commits (its
    batch is shielded), so the ledger must note its lease too, or the job stays `running` until it expires."""
    stack = await make_stack(3, concurrency=3)
    started = await stack.runner.tick()
    job = (await stack.db.all("SELECT id, streamer_id FROM jobs WHERE run_id = ? LIMIT 1", started.run_id))[0]
    now = to_rfc3339(stack.clock.now())
    claim = store.claim_job(
        job["id"],
        started.run_id,
        job["streamer_id"],
        "lease-1",
        now,
        "2999-01-01T00:00:00Z",
        stack.settings.twitch_client_id,
    )
    task = asyncio.create_task(stack.runner.leases.batch(claim.statements))
    await asyncio.sleep(0)  # the batch has started on SQLite's thread, not finished
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await stack.runner.leases.release(stack.clock.now()) == 1
    assert await stack.db.all("SELECT status FROM jobs WHERE id = ?", job["id"]) == [{"status": "queued"}]
