from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import httpx
import pytest

from local.clock import VirtualClock
from local.emulator import EmulatorConfig, HelixWorld, create_emulator_app
from local.emulator.app import decode_cursor
from local.emulator.faults import BAD_TEXT, MALFORMATIONS, FaultyTransport, HelixFaultInjector, HelixFaults
from shared.clips import MAX_TEXT, parse_clip
from shared.errors import InvalidInput
from shared.timefmt import to_rfc3339

NOW = 1_790_000_000.0
CONFIG = EmulatorConfig()


class Twitch:
    """An emulator with faults, a client holding a valid token, and the injector's counters."""

    def __init__(self, faults: HelixFaults, *, streamers: int = 5, clock_transport: bool = False) -> None:
        self.clock = VirtualClock(NOW)
        self.world = HelixWorld(seed=4, streamers=streamers, clock=self.clock)
        self.injector = HelixFaultInjector(faults)
        self.app = create_emulator_app(self.world, CONFIG, wrap=self.injector.wrap)
        transport = self.injector.transport(
            httpx.ASGITransport(app=self.app), clock=self.clock if clock_transport else None
        )
        self.http = httpx.AsyncClient(transport=transport, base_url="http://twitch")

    @property
    def emulator(self) -> Any:
        return self.app.state.emulator

    async def login(self) -> None:
        form = {
            "client_id": CONFIG.client_id,
            "client_secret": CONFIG.client_secret,
            "grant_type": "client_credentials",
        }
        token = (await self.http.post("/oauth2/token", data=form)).json()["access_token"]
        self.http.headers.update({"Authorization": f"Bearer {token}", "Client-Id": CONFIG.client_id})

    def streamer(self, index: int = 0) -> str:
        return self.world.all_streamers()[index].id

    async def clips(self, broadcaster_id: str, **params: str) -> httpx.Response:
        window = {"started_at": to_rfc3339(NOW - 86_400), "ended_at": to_rfc3339(NOW + 600), "first": "100"}
        query = {"broadcaster_id": broadcaster_id, **window, **params}
        return await self.http.get("/helix/clips", params=query)


@pytest.fixture
async def twitch_factory() -> AsyncIterator[Callable[..., Any]]:
    made: list[Twitch] = []

    async def make(faults: HelixFaults, *, login: bool = True, **options: Any) -> Twitch:
        twitch = Twitch(faults, **options)
        made.append(twitch)
        if login:
            await twitch.login()
        return twitch

    yield make
    for twitch in made:
        await twitch.http.aclose()


async def statuses(twitch: Twitch, count: int) -> list[int]:
    return [(await twitch.clips(twitch.streamer())).status_code for _ in range(count)]


async def test_server_errors_are_500_or_503_on_helix_routes_only(twitch_factory: Any) -> None:
    twitch = await twitch_factory(HelixFaults(server_error_rate=1.0))
    answers = await statuses(twitch, 20)
    assert set(answers) == {500, 503}
    assert (await twitch.http.get("/oauth2/validate")).status_code == 200  # not in `routes`
    injected = twitch.injector.injected
    assert injected["server_error_500"] + injected["server_error_503"] == 20
    assert injected["server_error_503"] == answers.count(503)


async def test_token_route_can_fail_too(twitch_factory: Any) -> None:
    faults = HelixFaults(server_error_rate=1.0, routes=frozenset({"token"}))
    twitch = await twitch_factory(faults, login=False)
    answer = await twitch.http.post("/oauth2/token", data={"grant_type": "client_credentials"})
    assert answer.status_code in (500, 503)
    assert (await twitch.clips(twitch.streamer())).status_code == 401  # no token, but no 5xx either


async def test_rates_apply_roughly_and_the_seed_fixes_the_schedule(twitch_factory: Any) -> None:
    first = await statuses(await twitch_factory(HelixFaults(seed=7, server_error_rate=0.3)), 200)
    again = await statuses(await twitch_factory(HelixFaults(seed=7, server_error_rate=0.3)), 200)
    other = await statuses(await twitch_factory(HelixFaults(seed=8, server_error_rate=0.3)), 200)
    assert first == again
    assert first != other
    assert 30 <= sum(s >= 500 for s in first) <= 90


async def test_one_rate_does_not_reshuffle_another(twitch_factory: Any) -> None:
    alone = await twitch_factory(HelixFaults(seed=3, server_error_rate=0.2))
    with_slow = await twitch_factory(HelixFaults(seed=3, server_error_rate=0.2, slow_rate=0.5, slow_s=1))
    assert await statuses(alone, 100) == await statuses(with_slow, 100)
    assert with_slow.injector.injected["slow"] > 0


async def test_a_429_burst_lasts_until_its_ratelimit_reset(twitch_factory: Any) -> None:
    twitch = await twitch_factory(HelixFaults(rate_limit_rate=1.0, rate_limit_burst_s=(30, 30)))
    first = await twitch.clips(twitch.streamer())
    assert first.status_code == 429
    reset = int(first.headers["Ratelimit-Reset"])
    assert reset == NOW + 30
    assert first.headers["Ratelimit-Remaining"] == "0"
    assert first.headers["Ratelimit-Limit"] == str(CONFIG.rate_limit_points)
    assert first.json()["status"] == 429
    twitch.injector.faults = replace(twitch.injector.faults, rate_limit_rate=0.0)  # no new bursts
    twitch.clock.set(reset - 1)
    still = await twitch.clips(twitch.streamer())
    assert (still.status_code, still.headers["Ratelimit-Reset"]) == (429, str(reset))
    twitch.clock.set(reset)
    assert (await twitch.clips(twitch.streamer())).status_code == 200
    assert twitch.injector.injected["rate_limit_burst"] == 1
    assert twitch.injector.injected["rate_limited"] == 2


async def test_tokens_expire_before_the_chosen_request(twitch_factory: Any) -> None:
    twitch = await twitch_factory(HelixFaults(expire_tokens_at=(3,)))
    assert await statuses(twitch, 4) == [200, 200, 401, 401]
    assert twitch.injector.injected["token_expiry"] == 1
    await twitch.login()  # a fresh token works again
    assert await statuses(twitch, 2) == [200, 200]


async def test_a_slow_answer_times_out_on_the_emulator_clock(twitch_factory: Any) -> None:
    twitch = await twitch_factory(HelixFaults(slow_rate=1.0, slow_s=30), clock_transport=True)
    with pytest.raises(httpx.ReadTimeout, match="10.0 s read timeout"):
        await twitch.http.get("/helix/users", params={"login": "streamer00000"}, timeout=10.0)
    assert twitch.clock.now() == NOW + 30
    assert twitch.injector.injected == {"slow": 1, "late_answer": 1}
    answer = await twitch.http.get("/helix/users", params={"login": "streamer00000"}, timeout=60.0)
    assert answer.status_code == 200  # slow, but within a longer timeout


async def test_without_a_clock_a_slow_answer_still_arrives(twitch_factory: Any) -> None:
    twitch = await twitch_factory(HelixFaults(slow_rate=1.0, slow_s=30))
    answer = await twitch.http.get("/helix/users", params={"login": "streamer00000"}, timeout=1.0)
    assert answer.status_code == 200


async def test_connect_errors_never_reach_twitch(twitch_factory: Any) -> None:
    twitch = await twitch_factory(HelixFaults())
    twitch.http._transport = FaultyTransport(twitch.http._transport, connect_error_rate=1.0)
    with pytest.raises(httpx.ConnectError, match="injected"):
        await twitch.clips(twitch.streamer())
    assert twitch.emulator.requests["/helix/clips"] == 0


async def test_a_read_timeout_loses_an_answer_twitch_gave(twitch_factory: Any) -> None:
    twitch = await twitch_factory(HelixFaults(read_timeout_rate=1.0), login=False)
    minted = twitch.emulator.tokens_minted
    with pytest.raises(httpx.ReadTimeout):
        await twitch.http.post(
            "/oauth2/token",
            data={
                "client_id": CONFIG.client_id,
                "client_secret": CONFIG.client_secret,
                "grant_type": "client_credentials",
            },
        )
    assert twitch.emulator.tokens_minted == minted + 1  # the work was done, the answer lost
    assert twitch.injector.injected["read_timeout"] == 1


async def test_transport_faults_follow_their_seed() -> None:
    async def outcomes(seed: int) -> list[str]:
        transport = FaultyTransport(
            httpx.MockTransport(lambda r: httpx.Response(200)),
            seed=seed,
            connect_error_rate=0.2,
            read_timeout_rate=0.2,
        )
        seen = []
        for _ in range(100):
            try:
                await transport.handle_async_request(httpx.Request("GET", "http://twitch/helix/clips"))
            except httpx.TransportError as exc:
                seen.append(type(exc).__name__)
            else:
                seen.append("ok")
        return seen

    first = await outcomes(1)
    assert first == await outcomes(1)
    assert first != await outcomes(2)
    assert set(first) == {"ok", "ConnectError", "ReadTimeout"}


@pytest.mark.parametrize("rate", [-0.1, 1.5])
def test_rates_outside_zero_to_one_are_refused(rate: float) -> None:
    with pytest.raises(ValueError, match=f"HelixFaults.server_error_rate is {rate}"):
        HelixFaults(server_error_rate=rate)
    with pytest.raises(ValueError, match="read_timeout_rate"):
        FaultyTransport(httpx.MockTransport(lambda r: httpx.Response(200)), read_timeout_rate=rate)


async def busy_streamer(twitch: Twitch) -> str:
    """A streamer with a few hundred clips in the last day: several pages."""
    streamer = twitch.streamer()
    twitch.world.set_rate(streamer, 400)
    return streamer


async def test_a_repeated_page_comes_back_with_its_own_cursor(twitch_factory: Any) -> None:
    twitch = await twitch_factory(HelixFaults(repeat_page_rate=1.0))
    streamer = await busy_streamer(twitch)
    first = (await twitch.clips(streamer)).json()
    cursor = first["pagination"]["cursor"]
    second = (await twitch.clips(streamer, after=cursor)).json()
    assert second == first  # the same page again, pointing at the same next page
    assert twitch.injector.injected["repeated_page"] == 1


async def test_a_looping_cursor_points_back_to_an_earlier_page(twitch_factory: Any) -> None:
    twitch = await twitch_factory(HelixFaults(loop_cursor_rate=1.0))
    streamer = await busy_streamer(twitch)
    honest = await twitch_factory(HelixFaults())
    honest.world.set_rate(streamer, 400)
    pages = [(await honest.clips(streamer)).json()]
    for _ in range(2):
        pages.append((await honest.clips(streamer, after=pages[-1]["pagination"]["cursor"])).json())
    third = (await twitch.clips(streamer, after=pages[1]["pagination"]["cursor"])).json()
    assert third["data"] == pages[2]["data"]  # this page is right...
    offset = decode_cursor(third["pagination"]["cursor"])
    assert offset in (0, 100, 200)  # ...but its cursor leads back
    looped = (await twitch.clips(streamer, after=third["pagination"]["cursor"])).json()
    assert looped["data"] == pages[offset // 100]["data"]
    assert twitch.injector.injected["looped_cursor"] == 2


async def test_malformed_clips_each_break_a_rule_the_parser_checks(twitch_factory: Any) -> None:
    twitch = await twitch_factory(HelixFaults(malformed_clip_rate=1.0))
    data = (await twitch.clips(await busy_streamer(twitch))).json()["data"]
    assert len(data) == 100
    for clip in data:
        with pytest.raises(InvalidInput):
            parse_clip(clip)
    assert twitch.injector.injected["malformed_clip"] == 100


@pytest.mark.parametrize("kind", list(MALFORMATIONS))
def test_every_malformation_is_refused_by_the_parser(kind: str) -> None:
    world = HelixWorld(seed=4, streamers=1, clips_per_day=(200, 200), clock=VirtualClock(NOW))
    clip = world.clips(world.all_streamers()[0].id, NOW - 86_400, NOW)[0]
    parse_clip(dict(clip))
    MALFORMATIONS[kind](clip)
    with pytest.raises(InvalidInput):
        parse_clip(clip)


async def test_oversized_titles(twitch_factory: Any) -> None:
    twitch = await twitch_factory(HelixFaults(oversized_title_rate=1.0, oversized_title_chars=50_000))
    data = (await twitch.clips(twitch.streamer())).json()["data"]
    assert data and all(len(clip["title"]) == 50_000 for clip in data)
    assert all(len(parse_clip(clip)["title"]) == MAX_TEXT for clip in data)


async def test_bad_text_arrives_as_lone_surrogate_escapes(twitch_factory: Any) -> None:
    twitch = await twitch_factory(HelixFaults(bad_text_rate=1.0))
    answer = await twitch.clips(twitch.streamer())
    assert b"\\udc80" in answer.content
    clip = answer.json()["data"][0]
    assert clip["title"].endswith(BAD_TEXT) and clip["creator_name"].startswith(BAD_TEXT)
    row = parse_clip(clip)
    row["title"].encode("utf-8")  # storable
    assert twitch.injector.injected["bad_text"] == len(answer.json()["data"])


async def test_a_gone_broadcaster_answers_empty_data_after_a_while(twitch_factory: Any) -> None:
    twitch = await twitch_factory(HelixFaults(gone_after_s=60))
    gone, other = twitch.streamer(0), twitch.streamer(1)
    twitch.injector.faults = replace(twitch.injector.faults, gone_broadcasters=frozenset({gone}))
    login = twitch.world.all_streamers()[0].login
    assert (await twitch.clips(gone)).json()["data"]
    twitch.clock.advance(60)
    assert (await twitch.clips(gone)).json() == {"data": [], "pagination": {}}
    assert (await twitch.http.get("/helix/users", params={"login": login})).json()["data"] == []
    assert (await twitch.clips(other)).json()["data"]
    assert twitch.injector.withheld_broadcasters == {gone}
    assert twitch.injector.injected["gone_broadcaster"] == 2


async def test_a_deleted_clip_disappears_after_it_was_served(twitch_factory: Any) -> None:
    twitch = await twitch_factory(HelixFaults(deleted_clip_rate=1.0, deleted_after_s=600))
    streamer = twitch.streamer()
    served = [clip["id"] for clip in (await twitch.clips(streamer)).json()["data"]]
    assert served
    twitch.clock.advance(600)
    assert (await twitch.clips(streamer)).json()["data"] == []
    by_id = await twitch.http.get("/helix/clips", params=[("id", i) for i in served[:3]])
    assert by_id.json()["data"] == []
    assert twitch.injector.withheld_clips == set(served)


async def test_which_clips_are_deleted_depends_on_the_id_not_the_order(twitch_factory: Any) -> None:
    faults = HelixFaults(seed=5, deleted_clip_rate=0.5, deleted_after_s=0)
    one, two = await twitch_factory(faults), await twitch_factory(faults)
    await one.clips(one.streamer(0))
    await one.clips(one.streamer(1))
    await two.clips(two.streamer(1))  # the other order
    await two.clips(two.streamer(0))
    assert one.injector.withheld_clips == two.injector.withheld_clips
    everything = {c["id"] for i in (0, 1) for c in one.world.clips(one.streamer(i), NOW - 86_400, NOW + 600)}
    assert 0 < len(one.injector.withheld_clips) < len(everything)


async def test_an_inactive_injector_lets_everything_through_uncounted(twitch_factory: Any) -> None:
    twitch = await twitch_factory(HelixFaults(server_error_rate=1.0, expire_tokens_at=(1,)))
    twitch.injector.active = False
    assert await statuses(twitch, 3) == [200, 200, 200]
    assert (twitch.injector.requests, twitch.injector.injected) == (0, {})
