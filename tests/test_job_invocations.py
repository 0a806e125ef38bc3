"""`jobs.invocations` counts the consumer invocations that worked on a job (issue 13, finding 7)."""

from __future__ import annotations

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
