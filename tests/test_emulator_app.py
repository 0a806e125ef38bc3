from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from local.clock import VirtualClock
from local.emulator import EmulatorConfig, HelixWorld, create_emulator_app
from local.emulator.app import Emulator, Handler, Reply
from shared.timefmt import align_down, parse_rfc3339, to_rfc3339

NOW = parse_rfc3339("2026-09-21T12:34:56Z")
DAY_S = 86_400
CONFIG = EmulatorConfig()


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(NOW)


@pytest.fixture
def world(clock: VirtualClock) -> HelixWorld:
    return HelixWorld(seed=3, streamers=200, clock=clock)


@pytest.fixture
def app(world: HelixWorld) -> Starlette:
    return create_emulator_app(world)


def connect(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://emulator")


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with connect(app) as c:
        yield c


async def mint(client: httpx.AsyncClient, **overrides: str) -> httpx.Response:
    form = {"client_id": CONFIG.client_id, "client_secret": CONFIG.client_secret}
    form["grant_type"] = "client_credentials"
    return await client.post("/oauth2/token", data=form | overrides)


@pytest.fixture
async def helix(client: httpx.AsyncClient) -> httpx.AsyncClient:
    token = (await mint(client)).json()["access_token"]
    client.headers.update({"Authorization": f"Bearer {token}", "Client-Id": CONFIG.client_id})
    return client


def emulator(app: Starlette) -> Emulator:
    return app.state.emulator  # type: ignore[no-any-return]


def ranked(clips: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(clips, key=lambda c: (-c["view_count"], c["id"]))


async def walk(helix: httpx.AsyncClient, params: dict[str, Any]) -> list[httpx.Response]:
    pages = [await helix.get("/helix/clips", params=params)]
    while cursor := pages[-1].json()["pagination"].get("cursor"):
        pages.append(await helix.get("/helix/clips", params=params | {"after": cursor}))
    return pages


async def walk_clips(helix: httpx.AsyncClient, params: dict[str, Any]) -> list[dict[str, Any]]:
    return [clip for page in await walk(helix, params) for clip in page.json()["data"]]


async def test_token_and_validate(client: httpx.AsyncClient, clock: VirtualClock) -> None:
    reply = await mint(client)
    assert reply.status_code == 200
    body = reply.json()
    assert body["expires_in"] == 5_011_271 and body["token_type"] == "bearer"
    clock.advance(100)
    for scheme in ("OAuth", "Bearer"):
        auth = {"Authorization": f"{scheme} {body['access_token']}"}
        valid = await client.get("/oauth2/validate", headers=auth)
        assert valid.status_code == 200
        assert valid.json() == {
            "client_id": CONFIG.client_id,
            "scopes": [],
            "expires_in": 5_011_171,
            "login": None,
            "user_id": None,
        }
    invalid = await client.get("/oauth2/validate", headers={"Authorization": "OAuth nope"})
    assert invalid.status_code == 401
    assert invalid.json() == {"status": 401, "message": "invalid access token"}
    missing = await client.get("/oauth2/validate")
    assert (missing.status_code, missing.json()) == (
        401,
        {"status": 401, "message": "missing authorization token"},
    )


async def test_token_refuses_bad_credentials(client: httpx.AsyncClient, app: Starlette) -> None:
    # As id.twitch.tv answers, per clients' recorded answers (nicklaw5/helix's auth tests among them).
    refusals = {
        (("client_secret", "guess"),): (403, "invalid client secret"),
        (("client_id", "someone-else"),): (400, "invalid client"),
        (("client_id", ""),): (400, "missing client id"),
        (("client_secret", ""),): (400, "missing client secret"),
        (("grant_type", "password"),): (400, "invalid grant type"),
    }
    for overrides, (status, message) in refusals.items():
        reply = await mint(client, **dict(overrides))
        expected = (status, {"status": status, "message": message})
        assert (reply.status_code, reply.json()) == expected, overrides
    assert emulator(app).tokens_minted == 0


async def test_helix_requires_token_and_matching_client(helix: httpx.AsyncClient) -> None:
    params = {"login": "streamer00001"}
    assert (await helix.get("/helix/users", params=params)).status_code == 200
    missing = await helix.get("/helix/users", params=params, headers={"Authorization": ""})
    assert missing.status_code == 401
    assert missing.json() == {"error": "Unauthorized", "status": 401, "message": "Invalid OAuth token"}
    # A refused request is still charged to the Client-Id's bucket and says so, like every other answer.
    assert missing.headers["Ratelimit-Limit"] == "800" and missing.headers["Ratelimit-Remaining"] == "798"
    assert int(missing.headers["Ratelimit-Reset"]) >= NOW
    no_client = await helix.get("/helix/users", params=params, headers={"Client-Id": ""})
    assert no_client.status_code == 401 and "Ratelimit-Limit" not in no_client.headers
    oauth_scheme = {"Authorization": helix.headers["Authorization"].replace("Bearer", "OAuth")}
    assert (await helix.get("/helix/users", params=params, headers=oauth_scheme)).status_code == 401
    wrong_client = await helix.get("/helix/users", params=params, headers={"Client-Id": "other"})
    assert wrong_client.status_code == 401
    assert wrong_client.json()["error"] == "Unauthorized"


async def test_expired_tokens_answer_401(
    helix: httpx.AsyncClient, app: Starlette, clock: VirtualClock
) -> None:
    params = {"login": "streamer00001"}
    emulator(app).expire_all_tokens()
    assert (await helix.get("/helix/users", params=params)).status_code == 401
    token = (await mint(helix)).json()["access_token"]
    helix.headers["Authorization"] = f"Bearer {token}"
    assert (await helix.get("/helix/users", params=params)).status_code == 200
    clock.advance(CONFIG.token_lifetime_s)
    assert (await helix.get("/helix/users", params=params)).status_code == 401
    validate = await helix.get("/oauth2/validate", headers={"Authorization": f"OAuth {token}"})
    assert validate.status_code == 401


async def test_get_users_by_login_and_id(helix: httpx.AsyncClient, world: HelixWorld) -> None:
    first, second = world.all_streamers()[:2]
    params = [("login", first.login), ("login", "nobody"), ("id", second.id), ("login", first.login.upper())]
    reply = await helix.get("/helix/users", params=params)
    assert reply.status_code == 200
    data = reply.json()["data"]
    assert [u["id"] for u in data] == [first.id, second.id]
    assert data[0] == first.to_user()
    assert set(data[0]) == {
        "id", "login", "display_name", "type", "broadcaster_type", "description",
        "profile_image_url", "offline_image_url", "view_count", "created_at",
    }  # fmt: skip
    assert data[0]["view_count"] == 0 and data[0]["broadcaster_type"] in ("", "affiliate", "partner")


async def test_get_users_batch_limits(helix: httpx.AsyncClient, world: HelixWorld) -> None:
    streamers = world.all_streamers()
    hundred = [("login", s.login) for s in streamers[:60]] + [("id", s.id) for s in streamers[60:100]]
    reply = await helix.get("/helix/users", params=hundred)
    assert reply.status_code == 200 and len(reply.json()["data"]) == 100
    too_many = await helix.get("/helix/users", params=hundred + [("id", streamers[100].id)])
    assert too_many.status_code == 400
    assert too_many.json()["error"] == "Bad Request"
    assert (await helix.get("/helix/users")).status_code == 400


async def test_paging_returns_exactly_the_window(helix: httpx.AsyncClient, world: HelixWorld) -> None:
    bid = world.all_streamers()[0].id
    world.set_rate(bid, 300)
    start, end = "2026-09-20T10:00:00Z", "2026-09-21T10:00:00Z"
    pages = await walk(helix, {"broadcaster_id": bid, "started_at": start, "ended_at": end, "first": 7})
    data = [clip for page in pages for clip in page.json()["data"]]
    assert data == ranked(world.clips(bid, parse_rfc3339(start), parse_rfc3339(end)))
    assert len({c["id"] for c in data}) == len(data) > 200
    assert all(len(p.json()["data"]) == 7 for p in pages[:-1])
    assert pages[-1].json()["pagination"] == {}


async def test_cursor_is_opaque(helix: httpx.AsyncClient, world: HelixWorld) -> None:
    params = {"broadcaster_id": world.all_streamers()[0].id, "started_at": to_rfc3339(NOW - 2 * DAY_S)}
    reply = await helix.get("/helix/clips", params=params)
    cursor = reply.json()["pagination"]["cursor"]
    assert not cursor.isdigit()
    assert base64.b64decode(cursor + "=" * (-len(cursor) % 4)).startswith(b'{"b":null,"a":{"Cursor":')
    garbage = await helix.get("/helix/clips", params={"broadcaster_id": "1", "after": "MjA"})
    assert garbage.status_code == 400


async def test_window_is_truncated_to_ten_minutes(helix: httpx.AsyncClient, world: HelixWorld) -> None:
    bid = world.all_streamers()[1].id
    world.set_rate(bid, 2000)
    params = {"broadcaster_id": bid, "started_at": "2026-09-20T22:57:00Z", "ended_at": "2026-09-20T23:41:30Z"}
    data = await walk_clips(helix, params | {"first": 100})
    expected = world.clips(bid, parse_rfc3339("2026-09-20T22:50:00Z"), parse_rfc3339("2026-09-20T23:40:00Z"))
    assert data == ranked(expected)
    assert min(c["created_at"] for c in data) < "2026-09-20T22:57:00Z"
    narrow = params | {"started_at": "2026-09-20T22:41:00Z", "ended_at": "2026-09-20T22:42:00Z"}
    reply = await helix.get("/helix/clips", params=narrow)
    assert reply.json() == {"data": [], "pagination": {}}


async def test_window_defaults(helix: httpx.AsyncClient, world: HelixWorld) -> None:
    bid = world.all_streamers()[2].id
    start = NOW - 10 * DAY_S
    params = {"broadcaster_id": bid, "started_at": to_rfc3339(start), "first": 100}
    week = await walk_clips(helix, params)
    assert week == ranked(world.clips(bid, align_down(start, 600), align_down(start, 600) + 7 * DAY_S))


async def test_no_dates_mean_all_time_by_views(world: HelixWorld) -> None:
    # All time reaches back to the start of the world's history (a year by default; 90 days here).
    config = EmulatorConfig(history_s=90 * DAY_S)
    async with connect(create_emulator_app(world, config)) as client:
        token = (await mint(client)).json()["access_token"]
        client.headers.update({"Authorization": f"Bearer {token}", "Client-Id": CONFIG.client_id})
        bid = world.all_streamers()[2].id
        history = world.clips(bid, NOW - config.history_s, NOW)
        assert len(history) > 1000 and min(c["created_at"] for c in history) < to_rfc3339(NOW - 89 * DAY_S)
        all_time = await walk_clips(client, {"broadcaster_id": bid, "first": 100})
        assert all_time == ranked(history)[:1000]  # up to the ~1,000-result cap
        ended_only = {"broadcaster_id": bid, "first": 100, "ended_at": to_rfc3339(NOW - 10 * DAY_S)}
        assert await walk_clips(client, ended_only) == all_time  # Twitch ignores an ended_at alone
        ancient = {
            "broadcaster_id": bid,
            "first": 100,
            "started_at": "0001-01-01T00:00:00Z",
            "ended_at": to_rfc3339(NOW - 85 * DAY_S),
        }
        assert await walk_clips(client, ancient) == ranked(
            world.clips(bid, NOW - config.history_s, align_down(NOW - 85 * DAY_S, 600))
        )


async def test_result_cap_ends_the_walk(helix: httpx.AsyncClient, world: HelixWorld) -> None:
    bid = world.all_streamers()[0].id
    world.set_rate(bid, 5000)
    params = {"broadcaster_id": bid, "started_at": "2026-09-19T00:00:00Z", "ended_at": "2026-09-20T00:00:00Z"}
    pages = await walk(helix, params | {"first": 100})
    assert len(pages) == 11
    assert sum(len(p.json()["data"]) for p in pages) == 1000
    assert pages[-1].json() == {"data": [], "pagination": {}}


async def test_get_clips_parameter_errors(helix: httpx.AsyncClient, world: HelixWorld) -> None:
    bid = world.all_streamers()[0].id
    bad = [
        {},
        {"broadcaster_id": bid, "game_id": "509658"},
        {"broadcaster_id": bid, "first": 0},
        {"broadcaster_id": bid, "first": 101},
        {"broadcaster_id": bid, "first": "ten"},
        {"broadcaster_id": bid, "before": "abc"},
        {"broadcaster_id": bid, "started_at": "yesterday"},
        {"broadcaster_id": [bid, bid]},
        {"id": [f"clip{i}" for i in range(101)]},
    ]
    for params in bad:
        reply = await helix.get("/helix/clips", params=params)
        assert reply.status_code == 400, params
        assert reply.json()["status"] == 400
    unknown = await helix.get("/helix/clips", params={"broadcaster_id": "123"})
    assert unknown.status_code == 200 and unknown.json() == {"data": [], "pagination": {}}
    assert (await helix.get("/helix/clips", params={"game_id": "nope"})).status_code == 404


async def test_get_clips_by_id_keeps_input_order(helix: httpx.AsyncClient, world: HelixWorld) -> None:
    clips = world.clips(world.all_streamers()[4].id, NOW - DAY_S, NOW)[:3]
    wanted = [clips[2]["id"], "GoneClip-0000000000000000", clips[0]["id"], clips[2]["id"]]
    reply = await helix.get("/helix/clips", params={"id": wanted})
    assert reply.json() == {"data": [clips[2], clips[0]], "pagination": {}}


async def test_featured_filter_and_game_query(helix: httpx.AsyncClient, world: HelixWorld) -> None:
    bid = world.all_streamers()[0].id
    params = {"broadcaster_id": bid, "started_at": to_rfc3339(NOW - 3 * DAY_S), "first": 100}
    featured = await walk_clips(helix, params | {"is_featured": "true"})
    assert featured and all(c["is_featured"] for c in featured)
    others = await walk_clips(helix, params | {"is_featured": "False"})
    assert others and not any(c["is_featured"] for c in others)
    every = await walk_clips(helix, params)
    assert sorted(c["id"] for c in featured + others) == sorted(c["id"] for c in every)
    assert (await helix.get("/helix/clips", params=params | {"is_featured": "yes"})).status_code == 400
    game = world.all_streamers()[0].games[0]
    by_game = await helix.get("/helix/clips", params={"game_id": game, "started_at": to_rfc3339(NOW - 3600)})
    assert by_game.status_code == 200
    assert by_game.json()["data"] and all(c["game_id"] == game for c in by_game.json()["data"])


async def test_rate_limit_bucket(helix: httpx.AsyncClient, app: Starlette, clock: VirtualClock) -> None:
    params = {"id": "x"}
    first = await helix.get("/helix/clips", params=params)
    reset = int(first.headers["Ratelimit-Reset"])
    assert first.headers["Ratelimit-Limit"] == "800" and first.headers["Ratelimit-Remaining"] == "799"
    assert NOW + 59 <= reset <= NOW + 61
    for _ in range(799):
        last = await helix.get("/helix/clips", params=params)
    assert last.status_code == 200 and last.headers["Ratelimit-Remaining"] == "0"
    limited = await helix.get("/helix/clips", params=params)
    assert limited.status_code == 429
    assert limited.json()["error"] == "Too Many Requests"
    assert limited.headers["Ratelimit-Remaining"] == "0"
    assert limited.headers["Ratelimit-Reset"] == str(reset)
    clock.advance(reset - clock.now() - 1)
    assert (await helix.get("/helix/clips", params=params)).status_code == 429
    clock.advance(1)
    refilled = await helix.get("/helix/clips", params=params)
    assert refilled.status_code == 200 and refilled.headers["Ratelimit-Remaining"] == "799"
    assert int(refilled.headers["Ratelimit-Reset"]) == reset + 60
    assert emulator(app).statuses[429] == 2
    assert emulator(app).requests["/helix/clips"] == 803


async def test_view_counts_grow_between_calls(
    helix: httpx.AsyncClient, world: HelixWorld, clock: VirtualClock
) -> None:
    clip_ids = [c["id"] for c in world.clips(world.all_streamers()[0].id, NOW - DAY_S, NOW)[:20]]
    before = (await helix.get("/helix/clips", params={"id": clip_ids})).json()["data"]
    clock.advance(3600)
    after = (await helix.get("/helix/clips", params={"id": clip_ids})).json()["data"]
    assert [c["id"] for c in after] == clip_ids
    assert all(a["view_count"] >= b["view_count"] for a, b in zip(after, before, strict=True))
    assert sum(a["view_count"] > b["view_count"] for a, b in zip(after, before, strict=True)) >= 15


async def test_latency_uses_the_world_clock(world: HelixWorld, clock: VirtualClock) -> None:
    app = create_emulator_app(world, EmulatorConfig(latency_s=2.0, latency_jitter_s=0.5))
    async with connect(app) as client:
        await client.get("/oauth2/validate")
        await client.get("/oauth2/validate")
    assert 3.0 <= clock.now() - NOW <= 5.0


async def test_counters(helix: httpx.AsyncClient, app: Starlette) -> None:
    await helix.get("/helix/users", params={"login": "streamer00000"})
    await helix.get("/helix/nothing")
    state = emulator(app)
    assert state.tokens_minted == 1
    assert state.requests == {"/oauth2/token": 1, "/helix/users": 1, "/helix/nothing": 1}
    assert state.statuses == {200: 2, 404: 1}


async def test_wrap_replaces_handlers(world: HelixWorld) -> None:
    seen: list[str] = []

    def wrap(name: str, handler: Handler) -> Handler:
        async def wrapped(request: Any) -> Reply:
            seen.append(name)
            if name == "clips":
                return Reply(503, {"error": "Service Unavailable", "status": 503, "message": ""})
            return await handler(request)

        return wrapped

    app = create_emulator_app(world, wrap=wrap)
    async with connect(app) as client:
        assert (await client.get("/helix/clips")).status_code == 503
        assert (await client.get("/oauth2/validate")).status_code == 401
    assert seen == ["clips", "validate"]
    assert emulator(app).statuses == {503: 1, 401: 1}
