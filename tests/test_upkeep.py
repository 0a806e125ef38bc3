"""The upkeep after a completed crawl (consumer/upkeep.py): the check schedule, its budget shares, its
safety."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from shared.config import Settings
from shared.errors import ConfigError
from shared.timefmt import to_rfc3339
from shared.verification import DAY, CheckSchedule
from tests.scripted_helix import ScriptedHelix, make_clip
from tests.test_consumer_core import NOW, SETTINGS, Env, env  # noqa: F401, F811  (the fixture)

SCHEDULE = CheckSchedule.parse("1,7,30", 24 * 3600)
SETTINGS_PAID = SETTINGS.with_(plan="paid")


def test_the_schedule_front_loads_then_repeats_every_30_days() -> None:
    c = 1_000_000.0
    points, t = [], c
    for _ in range(6):
        t = SCHEDULE.next_after(c, t)
        points.append((t - c) / DAY)
    assert points == [1, 7, 30, 60, 90, 120]


def test_offsets_inside_the_lookback_are_dropped() -> None:
    assert CheckSchedule.parse("1,7,30", 48 * 3600).offsets == (7 * DAY, 30 * DAY)
    assert CheckSchedule.parse("1,7,30", 40 * DAY).offsets == (60 * DAY,)


@pytest.mark.parametrize("bad", ["", "a,b", "7,1", "0,3", "1,1", "-1"])
def test_a_bad_schedule_is_refused_naming_it(bad: str) -> None:
    with pytest.raises(ConfigError, match="CLIPCRAWLER_VERIFY_SCHEDULE_DAYS has value"):
        Settings(verify_schedule_days=bad).validated()


@pytest.mark.parametrize("field", ["verify_external_share", "verify_internal_share"])
def test_a_share_outside_0_1_is_refused(field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        Settings(**{field: 1.5}).validated()


@hsettings(max_examples=200, deadline=None)
@given(st.floats(0, 1e9), st.floats(0, 400 * DAY))
def test_next_after_is_the_first_check_strictly_later(created: float, since: float) -> None:
    after = created + since
    nxt = SCHEDULE.next_after(created, after)
    assert nxt > after
    offset = nxt - created
    assert (
        any(abs(offset - o) < 1e-3 for o in SCHEDULE.offsets)  # created + offset - created: rounded
        or (offset - SCHEDULE.offsets[-1]) % SCHEDULE.period < 1e-3
        or SCHEDULE.period - (offset - SCHEDULE.offsets[-1]) % SCHEDULE.period < 1e-3
    )
    # Nothing of the schedule lies between `after` and it: a check just before it gives the same answer.
    assert SCHEDULE.next_after(created, nxt - 1e-3 * max(1.0, offset / DAY)) == pytest.approx(nxt)


async def _old_clips(env: Env, count: int, **changes: Any) -> list[str]:  # noqa: F811 (not the fixture)
    """Clips of streamer 42 created 40 days ago, never checked (as a history backfill leaves them)."""
    created = to_rfc3339(NOW - 40 * DAY)
    clips = [make_clip(f"old{i:04d}", created_at=created, **changes) for i in range(count)]
    await env.db.run(
        "INSERT INTO clips (id, broadcaster_id, broadcaster_name, creator_id, creator_name, video_id, "
        "game_id, "
        "language, title, view_count, created_at, url, embed_url, thumbnail_url, duration, vod_offset, "
        "first_seen_at, last_seen_at) SELECT json_extract(value, '$.id'), '42', 'S', '7', 'F', '', "
        "json_extract(value, '$.game_id'), 'en', 't', 1, ?, 'u', 'e', 't', 30.0, NULL, ?, ? FROM "
        "json_each(?)",
        created,
        created,
        created,
        json.dumps(clips),
    )
    return [c["id"] for c in clips]


class ByIdHelix(ScriptedHelix):
    """Crawl pages as scripted; Get Clips by id answers only the ids in `alive`; Get Games knows `games`."""

    def __init__(self, alive: set[str], games: set[str], by_id_cursor: str | None = None) -> None:
        super().__init__({None: ([make_clip("new")], None)})
        self.alive, self.games, self.by_id_cursor = alive, games, by_id_cursor

    def __call__(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        if request.url.path.endswith("/clips") and "id" in params:
            self.requests.append(request)
            data = [make_clip(i) for i in params.get_list("id") if i in self.alive]
            return httpx.Response(
                200,
                json={"data": data, "pagination": {"cursor": self.by_id_cursor} if self.by_id_cursor else {}},
            )
        if request.url.path.endswith("/games"):
            self.requests.append(request)
            return httpx.Response(
                200,
                json={
                    "data": [
                        {"id": i, "name": f"G{i}", "box_art_url": "b-{width}x{height}", "igdb_id": ""}
                        for i in params.get_list("id")
                        if i in self.games
                    ]
                },
            )
        return super().__call__(request)

    def calls(self, kind: str) -> int:
        if kind == "by_id":
            return sum(1 for r in self.requests if r.url.path.endswith("/clips") and "id" in r.url.params)
        return sum(1 for r in self.requests if r.url.path.endswith("/" + kind))


async def test_verification_stays_within_its_share_and_marks_only_what_twitch_left_out(env: Env) -> None:  # noqa: F811
    ids = await _old_clips(env, 2_500)
    alive = set(ids[::2])
    env.helix = ByIdHelix(alive, set())
    verdict = await env.handle(await env.job_message())
    assert verdict.ack and verdict.outcome == "done"
    # Free plan: 50 external subrequests, a 0.2 share: 10 calls of 100 ids, the rest left due.
    assert env.helix.calls("by_id") == 10 and verdict.external <= 50
    rows = await env.db.all(
        "SELECT id, deleted_at, last_seen_at, next_check_at FROM clips WHERE id LIKE 'old%'"
    )
    checked = [r for r in rows if r["next_check_at"] is not None]
    assert len(checked) == 1_000
    assert {r["id"] for r in checked if r["deleted_at"] is not None} == {r["id"] for r in checked} - alive
    assert all(r["last_seen_at"] == r["deleted_at"] for r in checked if r["deleted_at"])
    # 40 days old: the 30-day check is past, so the next is the 60-day one.
    assert {r["next_check_at"] for r in checked} == {to_rfc3339(NOW - 40 * DAY + 60 * DAY)}
    job = await env.job()
    assert job["helix_calls"] >= 11 and job["max_subrequests"] == verdict.subrequests


async def test_an_answer_with_a_cursor_marks_nothing(env: Env) -> None:  # noqa: F811
    await _old_clips(env, 50)
    env.helix = ByIdHelix(set(), set(), by_id_cursor="more")
    verdict = await env.handle(await env.job_message())
    assert verdict.outcome == "done" and env.helix.calls("by_id") == 1
    row = await env.db.first(
        "SELECT count(*) AS n FROM clips WHERE deleted_at IS NOT NULL OR "
        "(next_check_at IS NOT NULL AND id LIKE 'old%')"
    )
    assert row["n"] == 0  # still due, none marked


async def test_games_are_asked_once_and_unknown_ones_not_asked_again(env: Env) -> None:  # noqa: F811
    env.helix = ByIdHelix(set(), {"509658"})
    env.helix.pages = {
        None: ([make_clip("a"), make_clip("b", game_id="404404"), make_clip("c", game_id="")], None)
    }
    message = await env.job_message()
    await env.db.run("DELETE FROM games")  # the fixture names make_clip's game: not here
    await env.handle(message)
    assert env.helix.calls("games") == 1
    asked = [r.url.params.get_list("id") for r in env.helix.requests if r.url.path.endswith("/games")]
    assert sorted(asked[0]) == ["404404", "509658"]  # never the empty id
    games = await env.db.all("SELECT id, name, box_art_url FROM games")
    assert games == [{"id": "509658", "name": "G509658", "box_art_url": "b-{width}x{height}"}]
    assert await env.db.all("SELECT id FROM games_unknown") == [{"id": "404404"}]
    env.clock.set(NOW + 3600)
    await env.handle(await env.job_message())
    assert env.helix.calls("games") == 1  # neither the named game nor the unknown one is asked again
    # Past games_retry_days, the unknown id is asked again (and only it).
    env.clock.set(NOW + 31 * DAY)
    env.helix.pages = {
        None: ([make_clip("d", game_id="404404", created_at=to_rfc3339(NOW + 31 * DAY - 60))], None)
    }
    await env.handle(await env.job_message())
    asked = [r.url.params.get_list("id") for r in env.helix.requests if r.url.path.endswith("/games")]
    assert asked[1:] == [["404404"]]


async def test_a_paid_budget_still_checks_at_most_50_calls_a_crawl(env: Env) -> None:  # noqa: F811
    await _old_clips(env, 5_200)
    env.helix = ByIdHelix(set(), set())
    await env.handle(await env.job_message(), settings=SETTINGS_PAID)
    assert env.helix.calls("by_id") == 50
    left = await env.db.first(
        "SELECT count(*) AS n FROM clips WHERE next_check_at IS NULL AND id LIKE 'old%'"
    )
    assert left["n"] == 200  # due still, for the next crawl


async def test_clips_the_crawl_just_read_are_not_verified_until_a_crawl_no_longer_covers_them(
    env: Env,  # noqa: F811
) -> None:
    # A first crawl reaching 48 hours back reads a clip 30 hours old: due (1 day), but just seen alive.
    settings = SETTINGS.with_(backfill_hours=48)
    clip = make_clip("seen", created_at=to_rfc3339(NOW - 30 * 3600))
    env.helix = ByIdHelix({"seen"}, set())
    env.helix.pages = {None: ([clip], None)}
    verdict = await env.handle(await env.job_message(), settings=settings)
    assert verdict.outcome == "done" and env.helix.calls("by_id") == 0
    # An hour later the crawl covers the last 24 hours only: the clip left it, so this crawl checks it.
    env.clock.set(NOW + 3600)
    env.helix.pages = {None: ([], None)}
    verdict = await env.handle(await env.job_message(), settings=settings)
    assert verdict.outcome == "done" and env.helix.calls("by_id") == 1
    row = await env.db.first("SELECT deleted_at, next_check_at FROM clips WHERE id = 'seen'")
    assert row["deleted_at"] is None and row["next_check_at"] == to_rfc3339(NOW - 30 * 3600 + 7 * DAY)
