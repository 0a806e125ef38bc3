"""Which stored view counts a crawl rewrites: a move of at least the step, or a count stored long enough ago.

Anything else that changed is always rewritten, and the run's and job's counters count exactly the rows
rewritten. These go through the consumer and SQLite, so the upsert and the counters are the ones shipped.
"""

from __future__ import annotations

import pytest

from shared.config import Settings
from shared.errors import ConfigError
from tests import test_consumer_core
from tests.scripted_helix import make_clip
from tests.test_consumer_core import SETTINGS, Env

env = test_consumer_core.env  # the fixture, under the name the tests ask for

HOUR = 3600
STEPPED = SETTINGS.with_(view_count_step=0.05, view_count_max_age_hours=6)


async def crawl_twice(
    env: Env,
    first: int,
    second: int,
    *,
    hours_between: float,
    settings: Settings = STEPPED,
    **changes: object,
) -> dict[str, object]:
    """Store a clip with `first` views, crawl again `hours_between` later seeing `second`; the outcome."""
    env.helix.pages = {None: ([make_clip("a", view_count=first)], None)}
    await env.handle(await env.job_message(), settings=settings)
    env.clock.advance(hours_between * HOUR)
    env.helix.pages = {None: ([make_clip("a", view_count=second, **changes)], None)}
    await env.handle(await env.job_message(), settings=settings)
    row = await env.db.first(
        "SELECT view_count, video_id, first_seen_at < last_seen_at AS rewritten FROM clips"
    )
    job = await env.job()
    run = await env.db.first("SELECT clips_seen, clips_updated FROM runs ORDER BY id DESC LIMIT 1")
    assert run == {"clips_seen": 1, "clips_updated": job["clips_updated"]}
    return {
        "views": row["view_count"],
        "video_id": row["video_id"],
        "rewritten": bool(row["rewritten"]),
        "updated": job["clips_updated"],
        "seen": job["clips_seen"],
    }


@pytest.mark.parametrize(
    ("first", "second", "hours", "rewritten"),
    [
        (1_000, 1_049, 1, False),  # +4.9%, stored an hour ago: kept
        (1_000, 1_050, 1, True),  # +5%: rewritten
        (1_000, 990, 1, False),  # a small drop (Twitch discounts views) is a small move too
        (1_000, 900, 1, True),
        (10, 11, 1, True),  # a small count: one view is already more than the step
        (0, 1, 1, True),
        (1_000, 1_001, 5, False),  # stored 5 h ago: not stale yet
        (1_000, 1_001, 6, True),  # stored 6 h ago: any move is written
        (1_000, 1_000, 12, False),  # nothing moved: nothing written, however old
    ],
)
async def test_a_view_count_is_rewritten_when_it_moved_enough_or_is_old(
    env: Env, first: int, second: int, hours: float, rewritten: bool
) -> None:  # noqa: F811
    outcome = await crawl_twice(env, first, second, hours_between=hours)
    assert outcome["rewritten"] is rewritten
    assert outcome["views"] == (second if rewritten else first)
    assert (outcome["updated"], outcome["seen"]) == (
        int(rewritten),
        1,
    )  # seen either way, updated only if written


async def test_any_other_change_is_rewritten_with_the_current_view_count(env: Env) -> None:  # noqa: F811
    outcome = await crawl_twice(env, 1_000, 1_001, hours_between=1, video_id="v77")
    assert outcome == {"views": 1_001, "video_id": "v77", "rewritten": True, "updated": 1, "seen": 1}


async def test_a_max_age_of_zero_keeps_every_count_exact(env: Env) -> None:  # noqa: F811
    exact = STEPPED.with_(view_count_max_age_hours=0)
    outcome = await crawl_twice(env, 1_000, 1_001, hours_between=1, settings=exact)
    assert outcome["rewritten"] and outcome["views"] == 1_001


async def test_by_default_every_view_count_is_exact(env: Env) -> None:  # noqa: F811
    for first, second in ((1_000, 1_001), (100_000, 100_001), (1_000, 999)):
        outcome = await crawl_twice(
            env,
            first,
            second,
            hours_between=0.1,
            settings=SETTINGS.with_(
                view_count_step=Settings().view_count_step,
                view_count_max_age_hours=Settings().view_count_max_age_hours,
            ),
        )
        assert outcome["rewritten"] and outcome["views"] == second and outcome["updated"] == 1


def test_the_view_count_settings_come_from_the_environment_and_are_checked() -> None:
    settings = Settings.from_env(
        {"CLIPCRAWLER_VIEW_COUNT_STEP": "0.1", "CLIPCRAWLER_VIEW_COUNT_MAX_AGE_HOURS": "3"}
    )
    assert (settings.view_count_step, settings.view_count_max_age_hours) == (0.1, 3)
    assert (Settings().view_count_step, Settings().view_count_max_age_hours) == (0.0, 0)  # exact by default
    for name, value in (("STEP", "-0.1"), ("STEP", "nan"), ("MAX_AGE_HOURS", "-1")):
        with pytest.raises(ConfigError, match=name.lower()):
            Settings.from_env({f"CLIPCRAWLER_VIEW_COUNT_{name}": value})
