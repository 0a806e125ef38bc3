from __future__ import annotations

from local.clock import VirtualClock
from local.emulator import HelixWorld
from local.emulator.faults import HelixFaultInjector, HelixFaults
from shared.messages import decode
from tests.conftest import StackFactory


async def test_cron_fired_twice_and_again_mid_run_enqueues_nothing_twice(make_stack: StackFactory) -> None:
    stack = await make_stack(30)
    slot = stack.clock.now()
    first = await stack.runner.tick(scheduled_time=slot)
    again = await stack.runner.tick(scheduled_time=slot + 15)  # the same slot, re-fired
    stack.clock.advance(3600)
    later = await stack.runner.tick(scheduled_time=stack.clock.now())  # next hour, first run not drained
    assert first.opened and not again.opened and later.opened
    assert (first.jobs, later.jobs) == (30, 0)
    waiting = [decode(m) for m in stack.runner.queue.messages_waiting()]
    streamers = [m.streamer_id for m in waiting if m.__class__.__name__ == "CrawlJob"]
    assert len(streamers) == len(set(streamers)) == 30
    jobs = await stack.db.all("SELECT streamer_id, count(*) AS n FROM jobs GROUP BY streamer_id HAVING n > 1")
    assert jobs == []
    await stack.runner.drain()
    runs = await stack.db.all("SELECT id, status, jobs_total, jobs_done FROM runs ORDER BY id")
    assert [(r["status"], r["jobs_total"], r["jobs_done"]) for r in runs] == [
        ("finished", 30, 30),
        ("finished", 0, 0),
    ]


async def test_deleted_clips_and_vanished_broadcasters_lose_nothing_stored(make_stack: StackFactory) -> None:
    gone = HelixWorld(1, 3, clock=VirtualClock()).all_streamers()[0].id  # the stack's world, seed 1
    injector = HelixFaultInjector(
        HelixFaults(
            seed=4,
            deleted_clip_rate=0.3,
            deleted_after_s=60,
            gone_broadcasters=frozenset({gone}),
            gone_after_s=60,
        )
    )
    stack = await make_stack(3, wrap=injector.wrap)
    await stack.runner.crawl()
    before = await stack.clip_ids()
    stack.clock.advance(3600)
    second = await stack.runner.crawl(scheduled_time=stack.clock.now())
    assert injector.withheld_clips and gone in injector.withheld_broadcasters
    assert before <= await stack.clip_ids()  # an archive keeps what Twitch deleted
    jobs = await stack.db.all(
        "SELECT streamer_id, status, clips_seen FROM jobs WHERE run_id = ?", second.run_id
    )
    assert all(j["status"] == "done" for j in jobs)
    assert next(j for j in jobs if j["streamer_id"] == gone)["clips_seen"] == 0


async def test_malformed_clips_from_helix_are_skipped_and_counted(make_stack: StackFactory) -> None:
    injector = HelixFaultInjector(
        HelixFaults(seed=2, malformed_clip_rate=0.2, oversized_title_rate=0.2, bad_text_rate=0.2)
    )
    stack = await make_stack(5, wrap=injector.wrap)
    started = await stack.runner.crawl()
    run = await stack.db.first("SELECT * FROM runs WHERE id = ?", started.run_id)
    assert run["jobs_done"] == 5 and run["jobs_failed"] == 0
    assert run["clips_skipped"] > 0 and run["clips_new"] > 0
    longest = await stack.db.first("SELECT max(length(title)) AS n FROM clips")
    assert longest["n"] <= 1000
