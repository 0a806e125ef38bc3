"""Get Streams as Twitch documents it: every field, every filter, `first`, and cursors both ways."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from local.clock import VirtualClock
from local.emulator import EmulatorConfig, HelixWorld, create_emulator_app
from local.emulator.faults import HelixFaultInjector, HelixFaults
from shared.timefmt import parse_rfc3339

NOW = parse_rfc3339("2026-09-21T12:34:56Z")
CONFIG = EmulatorConfig()
STREAM_FIELDS = {
    "id": str, "user_id": str, "user_login": str, "user_name": str, "game_id": str, "game_name": str,
    "type": str, "title": str, "viewer_count": int, "started_at": str, "language": str,
    "thumbnail_url": str, "tag_ids": list, "tags": list, "is_mature": bool,
}  # fmt: skip


@pytest.fixture
def world() -> HelixWorld:
    return HelixWorld(seed=5, streamers=300, clock=VirtualClock(NOW))


@pytest.fixture
async def helix(world: HelixWorld) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_emulator_app(world, CONFIG))
    async with httpx.AsyncClient(transport=transport, base_url="http://emulator") as client:
        form = {
            "client_id": CONFIG.client_id,
            "client_secret": CONFIG.client_secret,
            "grant_type": "client_credentials",
        }
        token = (await client.post("/oauth2/token", data=form)).json()["access_token"]
        client.headers.update({"Authorization": f"Bearer {token}", "Client-Id": CONFIG.client_id})
        yield client


async def streams(helix: httpx.AsyncClient, params: Any) -> dict[str, Any]:
    reply = await helix.get("/helix/streams", params=params)
    assert reply.status_code == 200, reply.text
    return reply.json()  # type: ignore[no-any-return]


async def walk(helix: httpx.AsyncClient, params: list[tuple[str, str]]) -> list[dict[str, Any]]:
    body = await streams(helix, params)
    data = list(body["data"])
    while cursor := body["pagination"].get("cursor"):
        body = await streams(helix, [*params, ("after", cursor)])
        data += body["data"]
    return data


def live_ids(world: HelixWorld) -> list[str]:
    return [s.id for s in world.all_streamers() if world.is_live(s.id)]


async def test_no_filter_lists_every_live_stream_by_viewers(
    helix: httpx.AsyncClient, world: HelixWorld
) -> None:
    first_page = await streams(helix, {})
    assert len(first_page["data"]) == 20 and first_page["pagination"]["cursor"]  # first defaults to 20
    everything = await walk(helix, [("first", "100")])
    live = live_ids(world)
    assert 50 < len(live) < 300
    assert sorted(s["user_id"] for s in everything) == sorted(live)
    counts = [s["viewer_count"] for s in everything]
    assert counts == sorted(counts, reverse=True) and len(set(counts)) > len(counts) // 2
    assert everything[:20] == first_page["data"]


async def test_every_field_is_there_and_typed(helix: httpx.AsyncClient, world: HelixWorld) -> None:
    for stream in await walk(helix, [("first", "100")]):
        assert set(stream) == set(STREAM_FIELDS)
        for name, kind in STREAM_FIELDS.items():
            assert isinstance(stream[name], kind), (name, stream)
        streamer = world.streamer_by_id(stream["user_id"])
        assert streamer is not None
        assert (stream["user_login"], stream["user_name"]) == (streamer.login, streamer.display_name)
        assert stream["language"] == streamer.language and stream["type"] == "live"
        assert stream["game_id"] in streamer.games
        assert stream["game_name"] == world.games.name_of(stream["game_id"]) != ""
        assert stream["thumbnail_url"].endswith(f"live_user_{streamer.login}-{{width}}x{{height}}.jpg")
        assert stream["tag_ids"] == [] and stream["is_mature"] is False  # both deprecated by Twitch
        assert all(isinstance(tag, str) and tag for tag in stream["tags"]) and stream["tags"]
        started = parse_rfc3339(stream["started_at"])
        assert NOW - 6 * 3600 < started <= NOW and started % (6 * 3600) == 0  # its VOD's 6-hour block
        assert stream["id"].isdigit() and stream["viewer_count"] > 0


async def test_a_stream_keeps_its_id_and_start_through_the_session(
    helix: httpx.AsyncClient, world: HelixWorld
) -> None:
    clock = world.clock
    assert isinstance(clock, VirtualClock)
    before = {s["user_id"]: s for s in await walk(helix, [("first", "100")])}
    clock.advance(600)
    after = {s["user_id"]: s for s in await walk(helix, [("first", "100")])}
    same = before.keys() & after.keys()
    assert len(same) > 0.8 * len(before)
    for user_id in same:
        assert (after[user_id]["id"], after[user_id]["started_at"]) == (
            before[user_id]["id"],
            before[user_id]["started_at"],
        )


async def test_filters_by_user_id_and_login(helix: httpx.AsyncClient, world: HelixWorld) -> None:
    live = live_ids(world)
    offline = [s.id for s in world.all_streamers() if not world.is_live(s.id)]
    by_id = await streams(helix, [("user_id", i) for i in (live[0], offline[0], live[1], "999")])
    assert sorted(s["user_id"] for s in by_id["data"]) == sorted(live[:2]) and by_id["pagination"] == {}
    logins = [world.streamer_by_id(i).login.upper() for i in live[2:4]]  # type: ignore[union-attr]
    by_login = await streams(helix, [("user_login", login) for login in logins])
    assert sorted(s["user_id"] for s in by_login["data"]) == sorted(live[2:4])
    both = await streams(helix, [("user_id", live[0]), ("user_login", logins[0]), ("user_id", live[0])])
    assert sorted(s["user_id"] for s in both["data"]) == sorted([live[0], live[2]])


async def test_the_producers_call_gets_every_live_one_of_a_hundred(
    helix: httpx.AsyncClient, world: HelixWorld
) -> None:
    # shared/helix.py's get_live: 100 user_id parameters and first=100, one page.
    hundred = [s.id for s in world.all_streamers()[:100]]
    body = await streams(helix, [("user_id", i) for i in hundred] + [("first", "100")])
    assert sorted(s["user_id"] for s in body["data"]) == sorted(i for i in hundred if world.is_live(i))
    assert body["pagination"] == {}


async def test_filters_by_game_and_language(helix: httpx.AsyncClient, world: HelixWorld) -> None:
    everything = await walk(helix, [("first", "100")])
    games = sorted({s["game_id"] for s in everything})[:2]
    by_game = await walk(helix, [("game_id", g) for g in games] + [("first", "100")])
    assert by_game == [s for s in everything if s["game_id"] in games] != []
    by_language = await walk(helix, [("language", "ja"), ("language", "de"), ("first", "100")])
    assert by_language == [s for s in everything if s["language"] in ("ja", "de")] != []
    narrowed = await walk(helix, [("game_id", games[0]), ("language", "en"), ("first", "100")])
    assert narrowed == [s for s in everything if s["game_id"] == games[0] and s["language"] == "en"]
    for stream_type in ("all", "live"):
        assert await walk(helix, [("type", stream_type), ("first", "100")]) == everything


async def test_cursors_page_forward_and_back(helix: httpx.AsyncClient) -> None:
    everything = await walk(helix, [("first", "100")])
    pages = [await streams(helix, {"first": 7})]
    while cursor := pages[-1]["pagination"].get("cursor"):
        pages.append(await streams(helix, {"first": 7, "after": cursor}))
    assert [s for p in pages for s in p["data"]] == everything
    assert all(len(p["data"]) == 7 for p in pages[:-1]) and pages[-1]["pagination"] == {}
    back = await streams(helix, {"first": 7, "before": pages[2]["pagination"]["cursor"]})
    assert back["data"] == pages[1]["data"]
    start = await streams(helix, {"first": 7, "before": pages[1]["pagination"]["cursor"]})
    assert start["data"] == pages[0]["data"]


@pytest.mark.parametrize("params", [
    {"first": "0"}, {"first": "101"}, {"first": "many"}, {"type": "vodcast"},
    {"after": "bm90IGEgY3Vyc29y"}, [("after", "x"), ("before", "y")],
    [("user_id", str(i)) for i in range(101)], [("user_login", f"u{i}") for i in range(101)],
    [("game_id", str(i)) for i in range(101)], [("language", "en")] * 101,
])  # fmt: skip
async def test_bad_parameters_answer_400(helix: httpx.AsyncClient, params: Any) -> None:
    reply = await helix.get("/helix/streams", params=params)
    assert reply.status_code == 400, params
    assert reply.json()["error"] == "Bad Request" and reply.json()["message"]
    assert "Ratelimit-Remaining" in reply.headers


async def test_a_gone_broadcaster_has_no_stream(world: HelixWorld) -> None:
    live = live_ids(world)[:3]
    injector = HelixFaultInjector(
        HelixFaults(gone_broadcasters=frozenset({live[0]}), gone_after_s=60, routes=frozenset())
    )
    transport = httpx.ASGITransport(app=create_emulator_app(world, CONFIG, wrap=injector.wrap))
    async with httpx.AsyncClient(transport=transport, base_url="http://emulator") as client:
        form = {
            "client_id": CONFIG.client_id,
            "client_secret": CONFIG.client_secret,
            "grant_type": "client_credentials",
        }
        token = (await client.post("/oauth2/token", data=form)).json()["access_token"]
        client.headers.update({"Authorization": f"Bearer {token}", "Client-Id": CONFIG.client_id})
        asked = [("user_id", i) for i in live]
        assert sorted(s["user_id"] for s in (await streams(client, asked))["data"]) == sorted(live)
        world.clock.advance(60)  # type: ignore[attr-defined]
        assert sorted(s["user_id"] for s in (await streams(client, asked))["data"]) == sorted(live[1:])
    assert injector.withheld_broadcasters == {live[0]}
