"""Get Games and the world's game catalogue: clips' game ids are drawn from it, Get Games serves it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from local.clock import VirtualClock
from local.emulator import EmulatorConfig, HelixWorld, create_emulator_app
from local.emulator.games import CATALOGUE, Game, GameCatalogue
from shared.timefmt import parse_rfc3339

NOW = parse_rfc3339("2026-09-21T12:34:56Z")
CONFIG = EmulatorConfig()


@pytest.fixture
def world() -> HelixWorld:
    return HelixWorld(seed=2, streamers=60, clock=VirtualClock(NOW))


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


async def games(helix: httpx.AsyncClient, params: Any) -> list[dict[str, Any]]:
    reply = await helix.get("/helix/games", params=params)
    assert reply.status_code == 200, reply.text
    assert set(reply.json()) == {"data"}
    return reply.json()["data"]  # type: ignore[no-any-return]


async def test_get_games_by_id_name_and_igdb_id_in_the_order_asked(helix: httpx.AsyncClient) -> None:
    found = await games(
        helix,
        [
            ("id", "21779"),
            ("name", "Fortnite"),
            ("igdb_id", "1020"),
            ("id", "nope"),
            ("name", "fortnite"),
            ("id", "33214"),
            ("igdb_id", ""),
        ],
    )
    assert found == [
        {"id": "21779", "name": "League of Legends", "igdb_id": "115",
         "box_art_url": "https://static-cdn.jtvnw.net/ttv-boxart/21779-{width}x{height}.jpg"},
        {"id": "33214", "name": "Fortnite", "igdb_id": "1905",
         "box_art_url": "https://static-cdn.jtvnw.net/ttv-boxart/33214-{width}x{height}.jpg"},
        {"id": "32982", "name": "Grand Theft Auto V", "igdb_id": "1020",
         "box_art_url": "https://static-cdn.jtvnw.net/ttv-boxart/32982_IGDB-{width}x{height}.jpg"},
    ]  # fmt: skip
    assert await games(helix, {"name": "fortnite"}) == []  # the name must match exactly
    chatting = await games(helix, {"name": "Just Chatting"})
    box_art = "https://static-cdn.jtvnw.net/ttv-boxart/509658-{width}x{height}.jpg"
    assert chatting == [{"id": "509658", "name": "Just Chatting", "igdb_id": "", "box_art_url": box_art}]


async def test_the_whole_catalogue_in_one_call(helix: httpx.AsyncClient) -> None:
    found = await games(helix, [("id", g.id) for g in CATALOGUE])
    assert [g["id"] for g in found] == [g.id for g in CATALOGUE]
    for game in found:
        assert set(game) == {"id", "name", "box_art_url", "igdb_id"}
        assert all(isinstance(v, str) for v in game.values()) and game["name"]
        assert "{width}x{height}" in game["box_art_url"]


@pytest.mark.parametrize("params", [
    {}, [("id", "1")] * 60 + [("name", "x")] * 41, [("igdb_id", str(i)) for i in range(101)],
])  # fmt: skip
async def test_get_games_limits(helix: httpx.AsyncClient, params: Any) -> None:
    reply = await helix.get("/helix/games", params=params)
    assert reply.status_code == 400 and reply.json()["status"] == 400


async def test_a_hundred_selectors_together_is_allowed(helix: httpx.AsyncClient) -> None:
    params = [("id", g.id) for g in CATALOGUE] * 4 + [("name", g.name) for g in CATALOGUE]
    assert len(params) == 100
    assert len(await games(helix, params)) == len(CATALOGUE)


async def test_every_clip_plays_a_catalogue_game(helix: httpx.AsyncClient, world: HelixWorld) -> None:
    clips = [c for s in world.all_streamers() for c in world.clips(s.id, NOW - 86_400, NOW)]
    played = {c["game_id"] for c in clips}
    assert played <= set(world.game_ids()) and len(played) > 10
    named = await games(helix, [("id", g) for g in sorted(played)])
    assert {g["id"] for g in named} == played


async def test_clips_by_game_needs_a_known_game(helix: httpx.AsyncClient, world: HelixWorld) -> None:
    game = world.all_streamers()[0].games[0]
    reply = await helix.get("/helix/clips", params={"game_id": game, "first": 100})
    assert reply.status_code == 200 and reply.json()["data"]
    assert all(c["game_id"] == game for c in reply.json()["data"])
    assert (await helix.get("/helix/clips", params={"game_id": "1"})).status_code == 404


def test_a_world_takes_its_own_catalogue() -> None:
    own = [Game("1", "One", "11"), Game("2", "Two"), Game("3", "Three", "33", "3_IGDB")]
    world = HelixWorld(seed=1, streamers=20, clock=VirtualClock(NOW), games=own)
    assert world.game_ids() == ("1", "2", "3")
    assert {g for s in world.all_streamers() for g in s.games} == {"1", "2", "3"}
    assert world.games.by_igdb_id("33") == own[2] and world.games.by_name("Two") == own[1]
    with pytest.raises(ValueError, match="at least 3 games"):
        HelixWorld(seed=1, streamers=1, clock=VirtualClock(NOW), games=own[:2])
    with pytest.raises(ValueError, match="share the id '1'"):
        GameCatalogue([Game("1", "A"), Game("1", "B")])


def test_the_default_catalogue_keeps_the_worlds_clips() -> None:
    # Streamers sample their games from the catalogue in order: replacing a game changes names, not clips.
    world = HelixWorld(seed=1, streamers=5, clock=VirtualClock(NOW))
    renamed = [Game(f"g{i}", f"Game {i}") for i in range(len(CATALOGUE))]
    other = HelixWorld(seed=1, streamers=5, clock=VirtualClock(NOW), games=renamed)
    for a, b in zip(world.all_streamers(), other.all_streamers(), strict=True):
        assert (
            [CATALOGUE.index(world.games.by_id(g)) for g in a.games]
            == [  # type: ignore[arg-type]
                int(g[1:]) for g in b.games
            ]
        )
        assert [c["id"] for c in world.clips(a.id, NOW - 86_400, NOW)] == [
            c["id"] for c in other.clips(b.id, NOW - 86_400, NOW)
        ]
