"""Clip deletion over time: from its simulated instant on, a deleted clip is gone from Get Clips' answers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from local.clock import VirtualClock
from local.emulator import EmulatorConfig, HelixWorld, create_emulator_app
from local.emulator.deletions import DAY_S, ClipDeletions
from shared.timefmt import parse_rfc3339, to_rfc3339

START = parse_rfc3339("2026-07-01T00:00:00Z")
CONFIG = EmulatorConfig(token_lifetime_s=10**9)  # one token for all the simulated months


def make_world(deletions: ClipDeletions | None = None, seed: int = 4) -> tuple[HelixWorld, VirtualClock]:
    clock = VirtualClock(START)
    return HelixWorld(seed=seed, streamers=40, clock=clock, deletions=deletions), clock


@pytest.fixture
def tenth() -> ClipDeletions:
    return ClipDeletions(rate=0.1, after_s=(0.0, 60 * DAY_S), seed=9)


@asynccontextmanager
async def connect(world: HelixWorld) -> AsyncIterator[httpx.AsyncClient]:
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


World = tuple[HelixWorld, VirtualClock, httpx.AsyncClient]


@pytest.fixture
async def world_and_helix(tenth: ClipDeletions) -> AsyncIterator[World]:
    world, clock = make_world(tenth)
    async with connect(world) as helix:
        yield world, clock, helix


async def by_broadcaster(helix: httpx.AsyncClient, broadcaster_id: str, start: float, end: float) -> set[str]:
    params: dict[str, Any] = {
        "broadcaster_id": broadcaster_id,
        "first": 100,
        "started_at": to_rfc3339(start),
        "ended_at": to_rfc3339(end),
    }
    ids: set[str] = set()
    while True:
        body = (await helix.get("/helix/clips", params=params)).json()
        ids |= {c["id"] for c in body["data"]}
        if not (cursor := body["pagination"].get("cursor")):
            return ids
        params["after"] = cursor


async def by_id(helix: httpx.AsyncClient, clip_ids: list[str]) -> list[str]:
    found: list[str] = []
    for at in range(0, len(clip_ids), 100):
        body = (await helix.get("/helix/clips", params={"id": clip_ids[at : at + 100]})).json()
        found += [c["id"] for c in body["data"]]
    return found


async def test_a_tenth_of_clips_go_over_sixty_days_and_stay_gone(
    world_and_helix: World,
) -> None:
    world, clock, helix = world_and_helix
    window = (START - 2 * DAY_S, START)
    everyone = {s.id: [c["id"] for c in world.clips(s.id, *window)] for s in world.all_streamers()[:10]}
    all_ids = [i for ids in everyone.values() for i in ids]
    fates = {i: world.deletion(i) for i in all_ids}
    doomed = {i for i, fate in fates.items() if fate is not None}
    assert 0.07 < len(doomed) / len(all_ids) < 0.13
    assert all(fates[i][1] is None for i in doomed)  # type: ignore[index]  # rate deletions are for good
    for day in (0, 1, 7, 30, 61):
        clock.set(START + day * DAY_S)
        gone = {i for i in doomed if fates[i][0] <= clock.now()}  # type: ignore[index]
        assert await by_id(helix, all_ids) == [i for i in all_ids if i not in gone]
        for broadcaster, ids in everyone.items():
            assert await by_broadcaster(helix, broadcaster, *window) == set(ids) - gone
    assert gone == doomed


async def test_a_clip_is_served_up_to_its_instant_and_not_after(
    world_and_helix: World,
) -> None:
    world, clock, helix = world_and_helix
    streamer, clip = next(
        (s, c)
        for s in world.all_streamers()
        for c in world.clips(s.id, START - DAY_S, START)
        if (fate := world.deletion(c["id"])) and START < fate[0] < START + 10 * DAY_S
    )
    gone_at = world.deletion(clip["id"])[0]  # type: ignore[index]
    clock.set(gone_at - 1)
    assert await by_id(helix, [clip["id"]]) == [clip["id"]]
    game = (
        await helix.get(
            "/helix/clips",
            params={"game_id": clip["game_id"], "first": 100, "started_at": to_rfc3339(START - DAY_S)},
        )
    ).json()
    clock.set(gone_at)
    assert await by_id(helix, [clip["id"], clip["id"]]) == []
    assert clip["id"] not in await by_broadcaster(helix, streamer.id, START - DAY_S, START)
    assert world.clip(clip["id"]) is None
    kept = world.clips(streamer.id, START - DAY_S, START, include_deleted=True)
    assert clip["id"] in {c["id"] for c in kept}
    again = (
        await helix.get(
            "/helix/clips",
            params={"game_id": clip["game_id"], "first": 100, "started_at": to_rfc3339(START - DAY_S)},
        )
    ).json()
    assert clip["id"] in {c["id"] for c in game["data"]}
    assert clip["id"] not in {c["id"] for c in again["data"]}


async def test_pinned_deletions_and_a_clip_that_comes_back() -> None:
    world, clock = make_world()
    streamer = world.all_streamers()[1]
    first, second = (c["id"] for c in world.clips(streamer.id, START - DAY_S, START)[:2])
    world.delete_clip(first)  # now, for good
    world.delete_clip(second, at=START + 3600, until=START + 7200)
    async with connect(world) as helix:
        assert await by_id(helix, [first, second]) == [second]
        clock.set(START + 3600)
        assert await by_id(helix, [first, second]) == []
        clock.set(START + 7200)
        assert await by_id(helix, [first, second]) == [second]
    assert world.deletion(first) == (START, None) and world.deletion(second) == (START + 3600, START + 7200)
    assert world.deletion("NoSuchClip-0000000000000000") is None
    with pytest.raises(ValueError, match="would come back"):
        world.delete_clip(first, at=START, until=START)


def test_deletions_are_the_same_whatever_the_order_of_questions(tenth: ClipDeletions) -> None:
    one, clock_one = make_world(tenth)
    two, clock_two = make_world(tenth)
    streamers = [s.id for s in one.all_streamers()[:8]]
    clock_one.set(START + 20 * DAY_S)
    late_first = {b: [c["id"] for c in one.clips(b, START - DAY_S, START)] for b in reversed(streamers)}
    for day in range(1, 21):  # the other world is asked every day on the way there
        clock_two.set(START + day * DAY_S)
        for b in streamers:
            two.clips(b, START - DAY_S, START)
    assert {b: [c["id"] for c in two.clips(b, START - DAY_S, START)] for b in streamers} == late_first
    other_seed, _ = make_world(ClipDeletions(rate=0.1, after_s=(0.0, 60 * DAY_S), seed=10))
    ids = [c["id"] for b in streamers for c in one.clips(b, START - DAY_S, START, include_deleted=True)]
    assert [one.deletion(i) for i in ids] != [other_seed.deletion(i) for i in ids]


def test_no_deletions_by_default_and_bad_settings_are_refused() -> None:
    world, clock = make_world()
    ids = [c["id"] for s in world.all_streamers() for c in world.clips(s.id, START - DAY_S, START)]
    clock.advance(365 * DAY_S)
    assert all(world.deletion(i) is None and world.clip(i) is not None for i in ids)
    for bad in (
        {"rate": 1.5},
        {"after_s": (10.0, 5.0)},
        {"after_s": (-1.0, 5.0)},
        {"schedule": {"x": (10.0, 5.0)}},
    ):
        with pytest.raises(ValueError):
            ClipDeletions(**bad)  # type: ignore[arg-type]
