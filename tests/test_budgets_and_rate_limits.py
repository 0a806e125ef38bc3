from __future__ import annotations

from local.emulator import EmulatorConfig
from shared.timefmt import parse_rfc3339
from tests.conftest import StackFactory

APPEAR_SLACK = 300  # the emulator shows a clip up to 2 minutes after its creation


async def missing_clips(stack) -> set[str]:
    """Clips that already existed when their job started crawling but are not stored."""
    expected: set[str] = set()
    for job in await stack.db.all("SELECT streamer_id, crawl_from, crawl_to, started_at FROM jobs"):
        end = min(parse_rfc3339(job["crawl_to"]), parse_rfc3339(job["started_at"]) - APPEAR_SLACK)
        expected |= {
            c["id"] for c in stack.world.clips(job["streamer_id"], parse_rfc3339(job["crawl_from"]), end)
        }
    return expected - await stack.clip_ids()


async def test_a_streamer_with_5000_clips_finishes_under_the_free_plan(make_stack: StackFactory) -> None:
    stack = await make_stack(1)
    streamer = stack.world.all_streamers()[0]
    stack.world.set_rate(streamer.id, 5000)
    await stack.runner.crawl()
    job = await stack.db.first("SELECT * FROM jobs")
    assert job["status"] == "done", job
    assert len(await stack.clip_ids()) >= 4500
    assert await missing_clips(stack) == set()
    log = stack.runner.invocations
    assert len(log.subrequests) >= 2, "needs continuations under the Free plan"
    assert max(log.external) <= 50 and max(log.internal) <= 50
    assert log.outcomes.get("budget", 0) >= 1 and log.outcomes.get("done") == 1
    run = await stack.db.first("SELECT * FROM runs")
    assert (run["jobs_total"], run["jobs_done"], run["status"]) == (1, 1, "finished")  # counted once
    assert run["clips_new"] == len(await stack.clip_ids())


async def test_429s_are_retried_at_the_reset_without_burning_retries(make_stack: StackFactory) -> None:
    stack = await make_stack(30, config=EmulatorConfig(rate_limit_points=8), max_retries=1)
    await stack.runner.crawl()
    statuses = stack.emulator.statuses
    assert statuses[429] > 0 or stack.runner.invocations.outcomes.get("rate_limited", 0) > 0
    run = await stack.db.first("SELECT * FROM runs")
    assert (run["jobs_done"], run["jobs_failed"], run["status"]) == (30, 0, "finished")
    assert await missing_clips(stack) == set()
    assert stack.runner.queue.stats.dead_lettered == 0


async def test_consumers_slow_down_when_the_bucket_runs_low(make_stack: StackFactory) -> None:
    stack = await make_stack(60, config=EmulatorConfig(rate_limit_points=40), concurrency=5)
    await stack.runner.crawl()
    run = await stack.db.first("SELECT * FROM runs")
    assert run["jobs_done"] == 60
    requests = sum(stack.emulator.statuses.values())
    # Pacing on the shared Ratelimit-Remaining reading keeps 429s to a small share.
    assert stack.emulator.statuses[429] <= requests * 0.1
    assert await missing_clips(stack) == set()
