from __future__ import annotations

import pytest

from shared.errors import ConfigError
from shared.schedule import HOUR, Tiers, latest
from shared.timefmt import parse_rfc3339
from tests.conftest import StackFactory

NOW = 1_790_000_000.0  # 14:13:20
TIERS = Tiers((1, 3, 12), (24, 168))


@pytest.mark.parametrize(
    ("hours_since_activity", "tier", "next_due"),
    [
        (0, 0, "2026-09-21T15:00:00Z"),  # clipped or live just now: hourly
        (23.9, 0, "2026-09-21T15:00:00Z"),
        (24.1, 1, "2026-09-21T17:00:00Z"),  # quiet for a day: every 3 h
        (167, 1, "2026-09-21T17:00:00Z"),
        (169, 2, "2026-09-22T02:00:00Z"),  # quiet for a week: every 12 h
        (None, 2, "2026-09-22T02:00:00Z"),  # never seen active
    ],
)
def test_tiers(hours_since_activity: float | None, tier: int, next_due: str) -> None:
    activity = None if hours_since_activity is None else NOW - hours_since_activity * HOUR
    assert TIERS.choose(NOW, activity) == tier
    assert TIERS.next_crawl_at(NOW, tier) == parse_rfc3339(next_due)


def test_next_due_lands_on_the_hour_so_that_hours_cron_finds_it() -> None:
    due = TIERS.next_crawl_at(NOW, 0)
    assert due % HOUR == 0 and NOW < due <= NOW + HOUR


@pytest.mark.parametrize(
    ("every", "within"),
    [("1,3", "24,168"), ("3,1,12", "24,168"), ("1,x", "24"), ("0,3", "24"), ("1,3,12", "168,24")],
)
def test_bad_tier_settings_are_refused(every: str, within: str) -> None:
    with pytest.raises(ConfigError):
        Tiers.parse(every, within)


def test_latest_ignores_unknowns() -> None:
    assert latest(None, 3.0, 1.0) == 3.0 and latest(None) is None


async def due_ids(stack) -> set[str]:
    started = await stack.runner.crawl(scheduled_time=stack.clock.now())
    rows = await stack.db.all("SELECT streamer_id FROM jobs WHERE run_id = ?", started.run_id)
    return {r["streamer_id"] for r in rows}


async def test_quiet_streamers_are_crawled_less_often(make_stack: StackFactory) -> None:
    stack = await make_stack(6)
    quiet = stack.world.all_streamers()[0].id
    stack.world.set_rate(quiet, 0)
    assert len(await due_ids(stack)) == 6
    tier = await stack.db.first("SELECT tier, next_crawl_at FROM streamers WHERE id = ?", quiet)
    assert tier["tier"] == 2  # no clips ever: the slowest tier
    stack.clock.advance(3600)
    assert quiet not in await due_ids(stack)  # an hour later it is not due, the active ones are
    stack.clock.advance(12 * 3600)
    assert quiet in await due_ids(stack)


async def test_a_dormant_streamer_that_goes_live_is_crawled_within_the_hour(make_stack: StackFactory) -> None:
    stack = await make_stack(4)
    sleeper = stack.world.all_streamers()[1].id
    stack.world.set_rate(sleeper, 0)
    await due_ids(stack)
    stack.clock.advance(3600)
    assert sleeper not in await due_ids(stack)
    stack.world.set_rate(sleeper, 200)  # wakes up: streams and gets clipped
    stack.clock.advance(3600)
    assert sleeper in await due_ids(stack)  # Get Streams saw it live at the next tick
    row = await stack.db.first("SELECT tier, last_live_at FROM streamers WHERE id = ?", sleeper)
    assert row["tier"] == 0 and row["last_live_at"] is not None


async def test_a_streamer_crawled_after_a_12_hour_gap_gets_every_clip_of_the_gap(
    make_stack: StackFactory,
) -> None:
    stack = await make_stack(3)
    await due_ids(stack)
    first_end = {
        r["id"]: r["crawled_through"] for r in await stack.db.all("SELECT id, crawled_through FROM streamers")
    }
    await stack.db.run("UPDATE streamers SET tier = 2, next_crawl_at = ?", "2026-09-22T02:00:00Z")
    stack.clock.advance(12 * 3600)
    crawled = await due_ids(stack)
    assert crawled == set(first_end)
    stored = await stack.clip_ids()
    for streamer_id, through in first_end.items():
        gap = stack.world.clips(streamer_id, parse_rfc3339(through) - 3600, stack.clock.now() - 300)
        assert gap and {c["id"] for c in gap} <= stored
