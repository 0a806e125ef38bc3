"""The emulator through a real third-party client: twitchAPI (PyPI) over HTTP, the emulator under uvicorn.

twitchAPI parses every answer into its own models, so a field the emulator leaves out, or sends with
another type, shows up here as a missing attribute or a failed conversion.
"""

from __future__ import annotations

import asyncio
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
import pytest
from twitchAPI.oauth import validate_token
from twitchAPI.object.api import Clip, Game, Stream, TwitchUser
from twitchAPI.twitch import Twitch

from local.clock import VirtualClock
from local.emulator import EmulatorConfig, HelixWorld, create_emulator_app
from local.emulator.app import Emulator
from local.emulator.streams import StreamFilters, live_streams
from shared.timefmt import align_down, parse_rfc3339, to_rfc3339
from tests.served_app import served as served_app

NOW = parse_rfc3339("2026-09-21T12:34:56Z")
CONFIG = EmulatorConfig()
MINT_ATTEMPTS = 10


@dataclass
class Served:
    base_url: str
    world: HelixWorld
    emulator: Emulator
    busy: str  # a streamer with hundreds of clips a day


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    world = HelixWorld(seed=6, streamers=40, clock=VirtualClock(NOW))
    busy = world.all_streamers()[3].id
    world.set_rate(busy, 600)
    app = create_emulator_app(world, CONFIG)
    with served_app(app) as base:
        yield Served(base + "/", world, app.state.emulator, busy)


@pytest.fixture(scope="module")
def app_token(served: Served) -> str:
    """One app token for the module, minted through twitchAPI's own client-credentials flow.

    twitchAPI 4.5 reads the token answer after closing its HTTP session, so when the body reaches the
    socket after the headers the read fails with "Connection closed" (5 of 40 mints on a loaded
    machine, each one answered 200). Such an attempt is retried, at most MINT_ATTEMPTS times, and the
    emulator's own counts show it answered every attempt with a token: the test judges the emulator.
    """

    async def mint() -> str | None:
        twitch = await Twitch(
            CONFIG.client_id,
            CONFIG.client_secret,
            base_url=served.base_url + "helix/",
            auth_base_url=served.base_url + "oauth2/",
        )
        return twitch.get_app_token()

    for attempt in range(1, MINT_ATTEMPTS + 1):
        try:
            token = asyncio.run(mint())
        except (aiohttp.ClientConnectionError, RuntimeError) as exc:
            if "Connection closed" not in str(exc):
                raise
            continue
        finally:
            assert served.emulator.tokens_minted == served.emulator.requests["/oauth2/token"] == attempt
        assert token
        return token
    pytest.fail(f"twitchAPI could not read any of {MINT_ATTEMPTS} token answers")


@pytest.fixture
async def twitch(served: Served, app_token: str) -> Twitch:
    client = Twitch(
        CONFIG.client_id,
        CONFIG.client_secret,
        authenticate_app=False,
        base_url=served.base_url + "helix/",
        auth_base_url=served.base_url + "oauth2/",
    )
    await client.set_app_authentication(app_token, [])
    return client


def parsed(model: Any) -> dict[str, Any]:
    """Every field the model declares, as JSON would carry it; AssertionError for one it never set."""
    hints = typing.get_type_hints(type(model))
    missing = [name for name in hints if name != "email" and not hasattr(model, name)]
    assert not missing, f"{type(model).__name__} lacks {missing}"
    return {name: _as_json(getattr(model, name)) for name in hints if name != "email"}


def _as_json(value: Any) -> Any:
    if isinstance(value, datetime):
        assert value.tzinfo is not None, value
        return to_rfc3339(value.timestamp())
    return value


def ranked(clips: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(clips, key=lambda c: (-c["view_count"], c["id"]))


async def test_the_app_token_validates(served: Served, app_token: str) -> None:
    answer = await validate_token(app_token, auth_base_url=served.base_url + "oauth2/")
    assert answer["client_id"] == CONFIG.client_id and answer["scopes"] == []
    assert 0 < answer["expires_in"] <= CONFIG.token_lifetime_s


async def test_get_users_by_login_and_by_id(twitch: Twitch, served: Served) -> None:
    streamers = served.world.all_streamers()
    by_login = [u async for u in twitch.get_users(logins=[s.login for s in streamers[:3]])]
    by_id = [u async for u in twitch.get_users(user_ids=[s.id for s in streamers[3:30]])]
    assert all(isinstance(u, TwitchUser) for u in by_login + by_id)
    assert [parsed(u) for u in by_login + by_id] == [s.to_user() for s in streamers[:30]]
    assert isinstance(by_id[0].view_count, int) and isinstance(by_id[0].created_at, datetime)


async def test_get_clips_paged_to_the_end(twitch: Twitch, served: Served) -> None:
    start, end = align_down(NOW - 86_400, 600), align_down(NOW, 600)  # Twitch cuts windows to 10 minutes
    window = {
        "started_at": datetime.fromtimestamp(start).astimezone(),
        "ended_at": datetime.fromtimestamp(end).astimezone(),
    }
    clips = [c async for c in twitch.get_clips(broadcaster_id=served.busy, first=100, **window)]
    expected = ranked(served.world.clips(served.busy, start, end))
    assert 400 < len(expected) < 1000
    assert [parsed(c) for c in clips] == expected
    assert all(isinstance(c, Clip) and isinstance(c.duration, float) for c in clips)
    assert {type(c.vod_offset) for c in clips} == {int, type(None)}  # set late, as on Twitch
    featured = [
        c async for c in twitch.get_clips(broadcaster_id=served.busy, is_featured=True, first=100, **window)
    ]
    assert [c.id for c in featured] == [c["id"] for c in expected if c["is_featured"]] != []


async def test_get_clips_all_time_stops_at_the_cap(twitch: Twitch, served: Served) -> None:
    streamer = served.world.all_streamers()[0].id  # a year of 10 to 30 clips a day
    clips = [parsed(c) async for c in twitch.get_clips(broadcaster_id=streamer, first=100)]
    year = ranked(served.world.clips(streamer, NOW - CONFIG.history_s, NOW))
    assert len(year) > 3000 and clips == year[: CONFIG.result_cap]


async def test_get_clips_by_id_in_the_order_asked(twitch: Twitch, served: Served) -> None:
    some = served.world.clips(served.busy, NOW - 3600, NOW)[:5]
    wanted = [some[3]["id"], "NoSuchClip-0000000000000000", some[0]["id"], some[3]["id"], some[1]["id"]]
    clips = [c async for c in twitch.get_clips(clip_id=wanted)]
    assert [parsed(c) for c in clips] == [some[3], some[0], some[1]]


async def test_get_streams_by_id_and_by_login(twitch: Twitch, served: Served) -> None:
    world = served.world
    live = live_streams(world, StreamFilters())
    assert 10 < len(live) < 40
    ids = [s["user_id"] for s in live[:5]] + [
        world.all_streamers()[i].id for i in range(40) if not world.is_live(world.all_streamers()[i].id)
    ][:3]
    by_id = [s async for s in twitch.get_streams(user_id=ids, first=100)]
    logins = [s["user_login"] for s in live[5:10]]
    by_login = [s async for s in twitch.get_streams(user_login=logins)]
    assert all(isinstance(s, Stream) for s in by_id + by_login)
    assert [parsed(s) for s in by_id + by_login] == live[:10]
    assert by_id[0].tag_ids == [] and by_id[0].is_mature is False and by_id[0].tags
    everyone = [s.user_id async for s in twitch.get_streams(first=7)]  # no filter: every live stream, paged
    assert everyone == [s["user_id"] for s in live]


async def test_get_games(twitch: Twitch, served: Served) -> None:
    played = sorted({g for s in served.world.all_streamers() for g in s.games})
    found = [g async for g in twitch.get_games(game_ids=played[:5], names=["Fortnite", "Just Chatting"])]
    assert all(isinstance(g, Game) for g in found)
    expected = [served.world.games.by_id(g) for g in played[:5]]
    expected += [served.world.games.by_name(n) for n in ("Fortnite", "Just Chatting")]
    unique = list({g.id: g for g in expected if g is not None}.values())
    assert [parsed(g) for g in found] == [g.to_helix() for g in unique]
    by_igdb = [g async for g in twitch.get_games(igdb_ids=["1905"])]
    assert [g.name for g in by_igdb] == ["Fortnite"] and "{width}x{height}" in by_igdb[0].box_art_url
