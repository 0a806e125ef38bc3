"""Deleted clips (issue 15 item 1): an emulated world that deletes clips over 60 days, crawled through the
real
consumer, ends with every deleted clip marked within one check period, no live clip marked, and a clip that
comes back unmarked."""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator
from typing import Any

import pytest

from local.activity_mix import WeekActivity
from local.clock import VirtualClock
from local.emulated import emulator_client, emulator_settings
from local.emulator import EmulatorConfig, HelixWorld, create_emulator_app
from local.emulator.deletions import ClipDeletions
from local.emulator.world import Activity
from local.runner import LocalRunner
from local.sqlite_db import SqliteDatabase
from producer.core import start_run
from producer.streamers import add_streamers
from shared.config import Settings
from shared.ports import Ports
from shared.timefmt import parse_rfc3339, to_rfc3339
from shared.verification import DAY
from shared.windows import Window
from tests.conftest import START

HOUR = 3600.0
CRAWL_EVERY = 12 * HOUR  # the slowest schedule tier: every streamer is crawled at least this often


class World:
    def __init__(
        self,
        world: HelixWorld,
        clock: VirtualClock,
        db: SqliteDatabase,
        runner: LocalRunner,
        settings: Settings,
        helix: dict[str, int],
    ) -> None:
        self.world, self.clock, self.db, self.runner, self.settings, self.helix = (
            world,
            clock,
            db,
            runner,
            settings,
            helix,
        )

    async def crawl_until(self, end: float, every: float = CRAWL_EVERY) -> None:
        while self.clock.now() + every <= end:
            self.clock.set(self.clock.now() + every)
            await self.runner.crawl()

    async def stored(self) -> dict[str, dict[str, Any]]:
        rows = await self.db.all("SELECT id, created_at, deleted_at, last_seen_at, next_check_at FROM clips")
        return {r["id"]: r for r in rows}


@pytest.fixture
async def make_world() -> AsyncIterator[Any]:
    opened: list[tuple[Any, SqliteDatabase]] = []

    async def make(
        deletions: ClipDeletions,
        streamers: int = 2,
        clips_per_day: tuple[int, int] = (6, 10),
        activity: Activity | None = None,
    ) -> World:
        clock = VirtualClock(START)
        world = HelixWorld(5, streamers, clips_per_day, clock=clock, deletions=deletions, activity=activity)
        config = EmulatorConfig(history_s=100 * DAY)
        helix = {"by_id": 0, "games": 0}

        def wrap(name: str, handler: Any) -> Any:
            async def counted(request: Any) -> Any:
                if name == "clips" and "id" in request.query_params:
                    helix["by_id"] += 1
                elif name == "games":
                    helix["games"] += 1
                return await handler(request)

            return counted

        http = emulator_client(create_emulator_app(world, config, wrap=wrap))
        db = await SqliteDatabase.open()
        opened.append((http, db))
        settings = emulator_settings(Settings(), config).with_(http_backoff_seconds=0)
        runner = LocalRunner(db, http, settings, clock, concurrency=4, seed=5)
        await add_streamers(db, http, settings, clock, [s.login for s in world.all_streamers()])
        return World(world, clock, db, runner, settings, helix)

    yield make
    for http, db in opened:
        await http.aclose()
        await db.close()


async def test_a_tenth_deleted_over_60_days_is_marked_within_a_check_period_and_no_live_clip_is(
    make_world: Any,
) -> None:
    w = await make_world(ClipDeletions(rate=0.1, after_s=(HOUR, 60 * DAY), seed=3))
    end = START + 60 * DAY
    await w.crawl_until(end)
    schedule, early = w.settings.check_schedule, w.settings.verify_early_hours * HOUR
    stored = await w.stored()
    created = [
        c for s in w.world.all_streamers() for c in w.world.clips(s.id, START, end, include_deleted=True)
    ]
    deleted = {c["id"]: c for c in created if w.world.deletion(c["id"]) is not None}
    assert len(stored) >= 500 and 0.05 * len(stored) <= len(deleted) <= 0.15 * len(stored)
    checked_in_time = 0
    for clip_id, row in stored.items():
        span = w.world.deletion(clip_id)
        if row["deleted_at"] is not None:
            # No live clip marked: Twitch had deleted it when the mark was made, and has not brought it back.
            assert span is not None, f"{clip_id} is marked deleted but Twitch still has it"
            assert span[0] <= parse_rfc3339(row["deleted_at"]) and span[1] is None
            # A mark is a change the Parquet export must see: last_seen_at moved with it.
            assert row["last_seen_at"] == row["deleted_at"]
        if span is None:
            continue
        c = parse_rfc3339(row["created_at"])
        # The first check at or after the deletion: a check may run `early` ahead of its time, and it happens
        # at the streamer's first crawl after that, at most CRAWL_EVERY later.
        bound = schedule.next_after(c, span[0] + early) + CRAWL_EVERY
        if bound <= w.clock.now():
            assert row["deleted_at"] is not None, (
                f"{clip_id}, deleted at +{(span[0] - c) / DAY:.1f} d, "
                f"not marked by +{(bound - c) / DAY:.1f} d"
            )
            assert parse_rfc3339(row["deleted_at"]) <= bound
            checked_in_time += 1
    # Deletions come up to 60 days after creation, so many are too recent to judge at the end: still, dozens
    # are.
    assert checked_in_time >= 25
    # Every clip out of the lookback is on the schedule; the calls stay a few per streamer a day.
    unscheduled = [
        r
        for r in stored.values()
        if r["next_check_at"] is None
        and parse_rfc3339(r["created_at"]) < w.clock.now() - schedule.first - CRAWL_EVERY
    ]
    assert unscheduled == []
    assert 0 < w.helix["by_id"] <= 60 * 2 * len(w.world.all_streamers())


def fewest_calls(due_times: list[float], early: float) -> int:
    """The fewest Get Clips by id calls that check a streamer's clips at their times, one call carrying every
    clip due within `early` of its time (calls of 100 ids are never full here): a greedy cover."""
    calls, covered_until = 0, -math.inf
    for due in sorted(due_times):
        if due > covered_until:
            calls, covered_until = calls + 1, due + early
    return calls


async def test_hourly_crawls_check_a_streams_clips_in_one_call_as_they_leave_the_lookback(
    make_world: Any,
) -> None:
    # Daily streams of 3-6 hours, crawled every hour: the clips leave the 24-hour lookback an hour's worth per
    # crawl, yet their 1-day check is one call, the 7-day one another (shared with a later stream's 1-day).
    w = await make_world(
        ClipDeletions(), streamers=3, clips_per_day=(8, 12), activity=WeekActivity(5, START, ["daily"] * 3)
    )
    end = START + 12 * DAY
    await w.crawl_until(end, every=HOUR)
    schedule, early = w.settings.check_schedule, w.settings.verify_early_hours * HOUR
    judged_until = end - 3 * HOUR  # a check falls to the streamer's first crawl after it: within its tier
    needed = 0
    for streamer in w.world.all_streamers():
        due_times = []
        for clip in w.world.clips(streamer.id, START, end):
            created = parse_rfc3339(clip["created_at"])
            due = schedule.next_after(created, created)
            while due <= judged_until:
                due_times.append(due)
                due = schedule.next_after(created, due)
        needed += fewest_calls(due_times, early)
    assert needed >= 3 * 11  # a 1-day check for each of 11 days of streams (7-day ones coincide)
    # A call may go out for a check due after judged_until, at most one per streamer (36 for 33 here; 143
    # when the clips still in the crawl's range could not ride along).
    assert needed <= w.helix["by_id"] <= needed + len(w.world.all_streamers()), (w.helix["by_id"], needed)
    stored = await w.stored()
    late = [
        r
        for r in stored.values()
        if r["next_check_at"] is None and parse_rfc3339(r["created_at"]) + schedule.first < judged_until
    ]
    assert late == []


async def test_a_clip_gone_inside_the_lookback_is_marked_only_by_get_clips_by_id_and_unmarked_when_back(
    make_world: Any,
) -> None:
    w = await make_world(ClipDeletions(), streamers=1, clips_per_day=(20, 20))
    await w.crawl_until(START + DAY)
    first = max((await w.stored()).values(), key=lambda r: r["created_at"])  # not checked yet
    c = parse_rfc3339(first["created_at"])
    w.world.delete_clip(first["id"], at=w.clock.now() + HOUR, until=c + 20 * DAY)
    # Inside the lookback the crawl no longer sees it, and that alone proves nothing: not marked.
    w.clock.set(c + 17 * HOUR)
    await w.runner.crawl()
    assert w.world.clip(first["id"]) is None
    assert (await w.stored())[first["id"]]["deleted_at"] is None
    # The first check (a day after creation) asks Get Clips by id, which no longer has it: marked.
    await w.crawl_until(c + DAY + CRAWL_EVERY)
    marked = (await w.stored())[first["id"]]
    assert marked["deleted_at"] is not None and marked["last_seen_at"] == marked["deleted_at"]
    # Still gone at the 7-day check; back by the 30-day one: unmarked, and last_seen_at moved again.
    await w.crawl_until(c + 8 * DAY)
    assert (await w.stored())[first["id"]]["deleted_at"] == marked["deleted_at"]
    await w.crawl_until(c + 31 * DAY)
    back = (await w.stored())[first["id"]]
    assert back["deleted_at"] is None and back["last_seen_at"] > marked["last_seen_at"]
    assert parse_rfc3339(back["next_check_at"]) == c + 60 * DAY
    rows = await w.db.all("SELECT count(*) AS n FROM clips WHERE deleted_at IS NOT NULL")
    assert rows[0]["n"] == 0  # nothing else was marked


async def test_a_marked_clip_a_later_crawl_reads_again_is_unmarked_by_that_crawl(
    make_world: Any, caplog: pytest.LogCaptureFixture
) -> None:
    w = await make_world(ClipDeletions(), streamers=1, clips_per_day=(20, 20))
    await w.crawl_until(START + DAY)
    first = max((await w.stored()).values(), key=lambda r: r["created_at"])
    c = parse_rfc3339(first["created_at"])
    w.world.delete_clip(first["id"], at=w.clock.now() + HOUR, until=c + 2 * DAY)
    await w.crawl_until(c + DAY + CRAWL_EVERY)  # the 1-day check finds it gone
    marked = (await w.stored())[first["id"]]
    assert marked["deleted_at"] is not None
    assert parse_rfc3339(marked["next_check_at"]) == c + 7 * DAY
    # Back on Twitch; a backfill over its hour reads it from Get Clips, with the checks turned off, so only
    # the backfill's pages can unmark it.
    w.clock.set(c + 3 * DAY)
    assert w.world.clip(first["id"]) is not None
    checks = w.helix["by_id"]
    w.runner.settings = w.settings.with_(verify_external_share=0.0)
    ports = Ports(db=w.db, queue=w.runner.queue, clock=w.clock, http=w.runner.http)
    streamer = w.world.all_streamers()[0].id
    await start_run(ports, w.settings, streamer_ids=[streamer], backfill=Window(c - HOUR, c + HOUR))
    with caplog.at_level(logging.INFO, logger="clipcrawler.consumer"):
        await w.runner.drain()
    back = (await w.stored())[first["id"]]
    assert w.helix["by_id"] == checks
    assert back["deleted_at"] is None
    assert back["last_seen_at"] == to_rfc3339(w.clock.now())  # the Parquet export sees the change
    assert back["next_check_at"] == marked["next_check_at"]  # the clip's schedule goes on as before
    assert "1 back in crawled pages" in caplog.text
    rows = await w.db.all("SELECT count(*) AS n FROM clips WHERE deleted_at IS NOT NULL")
    assert rows[0]["n"] == 0
