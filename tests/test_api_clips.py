"""GET /clips: every filter against a model of it, key paging without duplicates or gaps, bad input, plans."""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from producer.api.clips import when_param
from producer.clip_search import (
    MAX_SAFE_INTEGER,
    RANGE_PROBE,
    ClipFilter,
    Key,
    encode_key,
    index_for,
    planned,
)
from shared.timefmt import to_rfc3339
from tests import api_support
from tests.api_support import Api, ApiFactory
from tests.clips_support import GAMES, T0, UNKNOWN_GAME, SeededClip, seed_clips, seed_games
from tests.test_query_plans import RecordingDatabase, full_scans

make_api = api_support.make_api

STREAMERS = [("10000000", "Streamer0"), ("10007919", "Streamer1"), ("10015838", "Streamer2")]
DAY = 86_400


@pytest.fixture
async def seeded(make_api: ApiFactory) -> tuple[Api, list[SeededClip]]:
    api = await make_api(3)
    await seed_games(api.stack.db)
    return api, await seed_clips(api.stack.db, STREAMERS, 150)


def expected(clips: list[SeededClip], params: dict[str, str]) -> list[str]:
    """The model: which clips GET /clips must list, in which order."""
    logins = {"streamer00000": "10000000", "streamer00001": "10007919", "streamer00002": "10015838"}
    names = {name.lower(): game_id for game_id, name in GAMES.items()}
    kept = []
    for c in clips:
        if "streamer" in params and c.broadcaster_id != logins.get(
            params["streamer"].lower(), params["streamer"]
        ):
            continue
        if "game" in params and c.game_id != names.get(params["game"].lower(), params["game"]):
            continue
        if "created_from" in params and c.created_at < params["created_from"]:
            continue
        if "created_to" in params and c.created_at >= params["created_to"]:
            continue
        if "featured" in params and c.is_featured != (params["featured"] == "true"):
            continue
        deleted = params.get("deleted", "exclude")
        if (deleted == "exclude" and c.deleted_at) or (deleted == "only" and not c.deleted_at):
            continue
        kept.append(c)
    if params.get("sort") == "views":
        kept.sort(key=lambda c: (c.view_count, c.id), reverse=True)
    else:
        kept.sort(key=lambda c: (c.created_at, c.id), reverse=True)
    return [c.id for c in kept]


async def all_pages(api: Api, params: dict[str, str], limit: int) -> list[str]:
    """Every page, following next_after; fails on a repeated clip or a page over the limit."""
    seen: list[str] = []
    after = None
    for _ in range(1000):
        response = await api.get(
            "/clips", params={**params, "limit": limit, **({"after": after} if after else {})}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["clips"]) <= limit
        seen += [c["id"] for c in body["clips"]]
        after = body["next_after"]
        if after is None:
            break
        assert len(body["clips"]) == limit, "a page before the last must be full"
    assert len(seen) == len(set(seen)), "a clip was listed twice"
    return seen


FILTERS: list[dict[str, str]] = [
    {},
    {"streamer": "10007919"},
    {"streamer": "streamer00002"},
    {"streamer": "STREAMER00000"},
    {"game": "509658"},
    {"game": "chess"},
    {"game": UNKNOWN_GAME},
    {"created_from": "2026-09-12", "created_to": "2026-09-14"},
    {"created_from": to_rfc3339(T0 + 3.5 * DAY)},
    {"created_to": "2026-09-15T12:00:00+02:00"},
    {"featured": "true"},
    {"featured": "false"},
    {"deleted": "only"},
    {"deleted": "include"},
    {"streamer": "10000000", "game": "743", "featured": "false", "deleted": "include"},
    {"game": "509658", "created_from": "2026-09-11", "deleted": "only"},
    {"game": "Just Chatting", "featured": "true"},
    {"streamer": "10015838", "created_from": "2026-09-13", "created_to": "2026-09-14"},
]


def normalised(params: dict[str, str]) -> dict[str, str]:
    """The model compares stored-form timestamps; the API takes dates and offsets too."""
    out = dict(params)
    for name, end_of_day in (("created_from", False), ("created_to", True)):
        if name in out:
            when = when_param(out, name, end_of_day=end_of_day)
            assert when is not None
            out[name] = to_rfc3339(when)
    return out


@pytest.mark.parametrize("sort", ["newest", "views"])
@pytest.mark.parametrize(
    "params", FILTERS, ids=lambda p: ",".join(f"{k}={v}" for k, v in p.items()) or "none"
)
async def test_each_filter_lists_exactly_its_clips_in_order_across_pages(
    seeded: tuple[Api, list[SeededClip]], params: dict[str, str], sort: str
) -> None:
    api, clips = seeded
    want = expected(clips, {**normalised(params), "sort": sort})
    assert want or params.get("deleted") == "only", "the filter should match something in the seed"
    assert await all_pages(api, {**params, "sort": sort}, limit=7) == want


async def test_an_answer_carries_deleted_at_and_the_game_name_or_null(
    seeded: tuple[Api, list[SeededClip]],
) -> None:
    api, clips = seeded
    body = (await api.get("/clips", params={"deleted": "include", "limit": 100})).json()
    by_id = {c.id: c for c in clips}
    for clip in body["clips"]:
        seeded_clip = by_id[clip["id"]]
        assert clip["deleted_at"] == seeded_clip.deleted_at
        assert clip["game_name"] == GAMES.get(seeded_clip.game_id)  # None for the unknown game
        assert clip["game_id"] == seeded_clip.game_id and isinstance(clip["is_featured"], bool)
    assert {c["game_name"] for c in body["clips"]} >= {None, "Chess"}


async def test_the_default_page_and_its_bound(seeded: tuple[Api, list[SeededClip]]) -> None:
    api, clips = seeded
    body = (await api.get("/clips")).json()
    assert len(body["clips"]) == 25 and body["next_after"]
    full = (await api.get("/clips", params={"limit": 100})).json()
    assert len(full["clips"]) == 100
    live = len([c for c in clips if not c.deleted_at])
    last = (await api.get("/clips", params={"limit": 100, "after": full["next_after"]})).json()
    assert len(last["clips"]) == live - 100 and last["next_after"] is None


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    limit=st.integers(1, 40),
    sort=st.sampled_from(["newest", "views"]),
    deleted=st.sampled_from(["exclude", "include", "only"]),
    featured=st.sampled_from([None, "true", "false"]),
)
async def test_any_page_size_pages_through_without_duplicates_or_gaps(
    seeded: tuple[Api, list[SeededClip]], limit: int, sort: str, deleted: str, featured: str | None
) -> None:
    api, clips = seeded
    params = {"sort": sort, "deleted": deleted, **({"featured": featured} if featured else {})}
    assert await all_pages(api, params, limit) == expected(clips, params)


async def test_paging_by_views_walks_a_long_tie_by_id(make_api: ApiFactory) -> None:
    api = await make_api(1)
    clips = await seed_clips(api.stack.db, STREAMERS[:1], 60)
    await api.stack.db.run("UPDATE clips SET view_count = 1, deleted_at = NULL")
    ids = sorted((c.id for c in clips), reverse=True)
    assert await all_pages(api, {"sort": "views"}, limit=8) == ids


async def test_a_clip_added_while_paging_newest_does_not_shift_the_pages(
    seeded: tuple[Api, list[SeededClip]],
) -> None:
    api, clips = seeded
    first = (await api.get("/clips", params={"limit": 10})).json()
    newer = await seed_clips(api.stack.db, STREAMERS, 1, seed=99)
    await api.stack.db.run(
        "UPDATE clips SET created_at = ?, deleted_at = NULL WHERE id = ?",
        to_rfc3339(T0 + 20 * DAY),
        newer[0].id,
    )
    second = (await api.get("/clips", params={"limit": 10, "after": first["next_after"]})).json()
    want = expected(clips, {})
    assert [c["id"] for c in first["clips"] + second["clips"]] == want[:20]


BAD: list[tuple[dict[str, Any], str, str]] = [
    ({"streamer": "nobody_here"}, "streamer", "no streamer has login or id 'nobody_here'"),
    ({"streamer": "x" * 101}, "streamer", "1 to 100 characters"),
    ({"streamer": " "}, "streamer", "1 to 100 characters"),
    ({"game": "Not A Game"}, "game", "no known game is named 'Not A Game'"),
    ({"streamer": ""}, "streamer", "must be 1 to 100 characters, got 0"),  # found by Schemathesis
    ({"game": ""}, "game", "must be 1 to 100 characters, got 0"),
    ({"created_from": "yesterday"}, "created_from", "'yesterday'"),
    ({"created_from": "2026-02-30"}, "created_from", "'2026-02-30'"),
    ({"created_to": "2026-09-12T00:00:00"}, "created_to", "'2026-09-12T00:00:00'"),
    ({"created_from": "0001-01-01"}, "created_from", "between 1970 and 9998"),
    ({"created_from": "2026-09-12", "created_to": "2026-09-12T00:00:00Z"}, "created_to", "is not after"),
    ({"featured": "yes"}, "featured", "'yes'"),
    ({"created_to": ""}, "created_to", "''"),  # found by Schemathesis: an empty filter is not "no filter"
    ({"after": ""}, "after", "''"),
    ({"deleted": "maybe"}, "deleted", "'maybe'"),
    ({"sort": "oldest"}, "sort", "'oldest'"),
    ({"limit": "0"}, "limit", "between 1 and 100"),
    ({"limit": "101"}, "limit", "between 1 and 100"),
    ({"limit": "ten"}, "limit", "'ten'"),
    ({"limit": str(2**64)}, "limit", "between 1 and 100"),
    ({"after": "not-a-cursor"}, "after", "'not-a-cursor'"),
    ({"after": encode_key(Key("views", 5, "x"))}, "after", "sort=views, not sort=newest"),
    ({"after": encode_key(Key("views", MAX_SAFE_INTEGER, "x")), "sort": "views"}, "after", "not a cursor"),
    ({"after": encode_key(Key("newest", 5, "x"))}, "after", "not a cursor"),
    ({"page": "2"}, "page", "unknown query parameter"),
]


@pytest.mark.parametrize(("params", "field", "message"), BAD, ids=[f"{b[1]}-{i}" for i, b in enumerate(BAD)])
async def test_bad_parameters_answer_422_naming_the_field_and_value(
    seeded: tuple[Api, list[SeededClip]], params: dict[str, Any], field: str, message: str
) -> None:
    api, _ = seeded
    response = await api.get("/clips", params=params)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["field"] == field and message in body["message"], body


async def test_a_game_id_filters_even_before_its_name_is_known(seeded: tuple[Api, list[SeededClip]]) -> None:
    api, _ = seeded
    body = (await api.get("/clips", params={"game": UNKNOWN_GAME, "limit": 100})).json()
    assert body["clips"] and all(
        c["game_name"] is None and c["game_id"] == UNKNOWN_GAME for c in body["clips"]
    )
    none = await api.get("/clips", params={"game": "123456789"})
    assert none.status_code == 200 and none.json() == {"clips": [], "next_after": None}


async def test_every_filter_combination_reads_one_index_range(seeded: tuple[Api, list[SeededClip]]) -> None:
    """No combination of filters, sort and cursor may scan clips (D1 bills every row a scan reads)."""
    api, _ = seeded
    recording = RecordingDatabase(api.stack.db)
    api.use(db=recording)
    for streamer, game, dates, featured, deleted, sort in itertools.product(
        [None, "10000000"],
        [None, "509658"],
        [None, "narrow", "wide"],
        [None, "true"],
        ["exclude", "include", "only"],
        ["newest", "views"],
    ):
        params = {"sort": sort, "deleted": deleted, "limit": "2"}
        params.update({"streamer": streamer} if streamer else {})
        params.update({"game": game} if game else {})
        params.update({"featured": featured} if featured else {})
        if dates:
            params.update(
                created_from="2026-09-12", created_to="2026-09-13" if dates == "narrow" else "2026-09-30"
            )
        first = await api.get("/clips", params=params)
        assert first.status_code == 200, first.text
        if first.json()["next_after"]:
            assert (
                await api.get("/clips", params={**params, "after": first.json()["next_after"]})
            ).status_code == 200
    await api.get("/clips", params={"game": "Chess", "streamer": "streamer00001"})
    indexes = {m for sql in recording.seen for m in re.findall(r"INDEXED BY (\w+)", sql)}
    # Every index the searches can name is used, so exists (SQLite refuses an INDEXED BY it cannot use).
    assert indexes == {
        "clips_created",
        "clips_views_magnitude",
        "clips_broadcaster_created",
        "clips_broadcaster_views_magnitude",
        "clips_game_created",
        "clips_deleted_created",
        "clips_deleted_views",
        "clips_deleted_broadcaster",
        "clips_deleted_game",
        "clips_featured_game_views",
    }
    assert len(recording.seen) >= 30
    assert await full_scans(api.stack.db, recording.seen) == {}


async def test_most_viewed_sorts_a_small_creation_range_and_walks_views_through_a_big_one(
    make_api: ApiFactory,
) -> None:
    api = await make_api(1)
    clips = await seed_clips(api.stack.db, STREAMERS[:1], RANGE_PROBE + 500)
    whole = ClipFilter(sort="views", created_from=to_rfc3339(T0), created_to=to_rfc3339(T0 + 10 * DAY))
    one_day = ClipFilter(sort="views", created_from=to_rfc3339(T0), created_to=to_rfc3339(T0 + DAY))
    assert not (await planned(api.stack.db, whole)).narrow
    assert index_for(await planned(api.stack.db, whole)) == "clips_views_magnitude"
    assert index_for(await planned(api.stack.db, one_day)) == "clips_created"
    for where in (whole, one_day):
        params = {
            "sort": "views",
            "created_from": where.created_from or "",
            "created_to": where.created_to or "",
        }
        assert await all_pages(api, params, limit=100) == expected(clips, params)


async def test_most_viewed_of_a_big_game_walks_all_clips_by_views_and_of_a_small_one_sorts_it(
    make_api: ApiFactory,
) -> None:
    api = await make_api(1)
    await seed_games(api.stack.db)
    clips = await seed_clips(api.stack.db, STREAMERS[:1], RANGE_PROBE + 500)
    big = {c.id for c in clips[: RANGE_PROBE + 100]}
    await api.stack.db.run(
        "UPDATE clips SET game_id = CASE WHEN id IN (SELECT value FROM json_each(?)) "
        "THEN '743' ELSE '18122' END",
        json.dumps(sorted(big)),
    )
    clips = [dataclasses.replace(c, game_id="743" if c.id in big else "18122") for c in clips]
    assert (
        index_for(await planned(api.stack.db, ClipFilter(game_id="743", sort="views")))
        == "clips_views_magnitude"
    )
    assert (
        index_for(await planned(api.stack.db, ClipFilter(game_id="18122", sort="views")))
        == "clips_game_created"
    )
    for game in ("743", "Chess", "18122"):
        params = {"sort": "views", "game": game, "deleted": "include"}
        assert await all_pages(api, params, limit=100) == expected(clips, params)
