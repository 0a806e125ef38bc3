from __future__ import annotations

import logging

import pytest

from shared.timefmt import parse_rfc3339
from tests.conftest import Stack, StackFactory


async def served_clips(stack: Stack, run_id: int | None = None) -> dict[str, dict]:
    """Every clip the emulator has now in the windows the (run's) jobs crawled."""
    clips: dict[str, dict] = {}
    jobs = await stack.db.all(
        "SELECT streamer_id, crawl_from, crawl_to FROM jobs WHERE status = 'done' "
        "AND (? IS NULL OR run_id = ?)",
        run_id,
        run_id,
    )
    for job in jobs:
        for clip in stack.world.clips(
            job["streamer_id"], parse_rfc3339(job["crawl_from"]), parse_rfc3339(job["crawl_to"])
        ):
            clips[clip["id"]] = clip
    return clips


async def test_a_whole_crawl_stores_every_clip_served(make_stack: StackFactory) -> None:
    stack = await make_stack(40)
    started = await stack.runner.crawl()
    run = await stack.db.first("SELECT * FROM runs WHERE id = ?", started.run_id)
    assert run["status"] == "finished" and run["jobs_done"] == 40 and run["jobs_failed"] == 0
    served = await served_clips(stack)
    assert served and set(served) == await stack.clip_ids()
    assert run["clips_new"] == len(served) and run["clips_updated"] == 0
    # A claim, and a Get Clips call and a write per page (one or two here); only the invocation that
    # finished the run adds Get Games and its write.
    jobs = await stack.db.all("SELECT helix_calls, d1_calls, max_subrequests FROM jobs")
    assert sum(j["helix_calls"] for j in jobs) == sum(stack.emulator.requests.values()) - 2  # token, users
    assert max(j["max_subrequests"] for j in jobs) <= 6
    unnamed = await stack.db.first(
        "SELECT count(*) AS n FROM clips LEFT JOIN games ON games.id = clips.game_id WHERE games.name IS NULL"
    )
    assert unnamed["n"] == 0


async def test_the_run_s_new_games_are_named_in_one_get_games_call(
    make_stack: StackFactory, caplog: pytest.LogCaptureFixture
) -> None:
    stack = await make_stack(40)
    with caplog.at_level(logging.INFO, logger="clipcrawler.consumer"):
        await stack.runner.crawl()
    named = [r.getMessage() for r in caplog.records if "games named" in r.getMessage()]
    finished = await stack.db.first("SELECT count(*) AS n FROM jobs WHERE status = 'done'")
    assert finished["n"] == 40 and len(named) == 1, named  # by the invocation that finished the run
    games = await stack.db.first("SELECT count(DISTINCT game_id) AS n FROM clips WHERE game_id != ''")
    assert 3 <= games["n"] <= 100  # the world's catalogue: every streamer plays 3 of its games
    assert stack.emulator.requests["/helix/games"] == 1
    assert await stack.db.all("SELECT id FROM games_wanted") == []
    # The next run brings no new game: no Get Games call at all.
    stack.clock.advance(3600)
    await stack.runner.crawl(scheduled_time=stack.clock.now())
    assert stack.emulator.requests["/helix/games"] == 1


async def test_a_rerun_adds_nothing_twice_and_updates_views(make_stack: StackFactory) -> None:
    stack = await make_stack(20)
    await stack.runner.crawl()
    query = "SELECT id, view_count, video_id, vod_offset FROM clips"
    before = {r["id"]: r for r in await stack.db.all(query)}
    stack.clock.advance(3600)
    second = await stack.runner.crawl(scheduled_time=stack.clock.now())
    assert (await stack.db.first("SELECT count(*) = count(DISTINCT id) AS ok FROM clips"))["ok"] == 1
    served = await served_clips(stack, second.run_id)
    after = {r["id"]: r for r in await stack.db.all(query)}
    assert set(served) <= set(after)
    for clip_id, clip in served.items():  # stored fields are the emulator's, as of the crawl (views grow)
        assert after[clip_id]["video_id"] == clip["video_id"]
        assert (
            before.get(clip_id, after[clip_id])["view_count"]
            <= after[clip_id]["view_count"]
            <= clip["view_count"]
        )
    grown = [i for i in before if after[i]["view_count"] > before[i]["view_count"]]
    assert grown, "view counts the emulator changed between runs must be updated"
    changed = [i for i in before if after[i] != before[i]]
    run = await stack.db.first("SELECT * FROM runs WHERE id = ?", second.run_id)
    assert run["clips_updated"] == len(changed)  # only rows that really changed count as updated
    assert run["clips_new"] == len(set(after) - set(before))


async def test_the_watermark_and_success_are_recorded(make_stack: StackFactory) -> None:
    stack = await make_stack(3)
    await stack.runner.crawl()
    rows = await stack.db.all("SELECT crawled_through, last_success_at, failure_streak FROM streamers")
    assert all(r["crawled_through"] and r["last_success_at"] and r["failure_streak"] == 0 for r in rows)


async def test_a_new_streamer_is_backfilled_in_windows_of_a_day(make_stack: StackFactory) -> None:
    stack = await make_stack(2, backfill_hours=24 * 4)
    await stack.runner.crawl()
    job = await stack.db.first("SELECT * FROM jobs LIMIT 1")
    assert parse_rfc3339(job["crawl_to"]) - parse_rfc3339(job["crawl_from"]) >= 4 * 86400
    assert job["helix_calls"] >= 4  # one window per day at least
    assert set(await served_clips(stack)) == await stack.clip_ids()
