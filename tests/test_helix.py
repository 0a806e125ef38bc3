from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from local.clock import VirtualClock
from shared.budget import Budget
from shared.config import Settings
from shared.errors import AuthFailed, BudgetExhausted, HelixError, RateLimited, TransientHelixError
from shared.helix import AppToken, HelixClient, check_logins
from shared.windows import Window

SETTINGS = Settings(
    twitch_api_url="http://helix.test/helix",
    twitch_auth_url="http://id.test/oauth2",
    twitch_client_id="cid",
    twitch_client_secret="csecret",
    http_backoff_seconds=0,
)
NOW = 1_790_000_000.0


TOKEN = AppToken("tok", NOW + 86_400)


def client(
    handler: Callable[[httpx.Request], httpx.Response],
    *,
    budget: Budget | None = None,
    token: AppToken | None = TOKEN,
) -> HelixClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return HelixClient(http, SETTINGS, budget or Budget(50, 50), VirtualClock(NOW), token)


def clips_reply(data: list, cursor: str | None = None, status: int = 200, **headers: str) -> httpx.Response:
    body = {"data": data, "pagination": {"cursor": cursor} if cursor else {}}
    return httpx.Response(
        status,
        json=body,
        headers={
            "Ratelimit-Limit": "800",
            "Ratelimit-Remaining": "799",
            "Ratelimit-Reset": str(int(NOW) + 60),
            **headers,
        },
    )


async def test_get_clips_sends_window_page_size_and_cursor() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return clips_reply([{"id": "a"}], cursor="next")

    page = await client(handler).get_clips("42", Window(NOW - 3600, NOW), "prev")
    params = dict(seen[0].url.params)
    assert params == {
        "broadcaster_id": "42",
        "started_at": "2026-09-21T13:13:20Z",
        "ended_at": "2026-09-21T14:13:20Z",
        "first": "100",
        "after": "prev",
    }
    assert seen[0].headers["authorization"] == "Bearer tok" and seen[0].headers["client-id"] == "cid"
    assert page.cursor == "next" and page.data == [{"id": "a"}]


async def test_requests_are_sent_as_built_with_their_query_headers_and_timeout() -> None:
    # HelixClient builds each request itself (not through AsyncClient.request): what the client's defaults
    # used to add must still be there, and a cursor's reserved characters must survive the query.
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return clips_reply([])

    cursor = "eyJiIjp7IkN1cnNvciI6IjEwMCJ9fQ==+/&x=y"
    await client(handler).get_clips("42", Window(NOW - 60, NOW), cursor)
    await client(handler).get_clips_by_id(["a b", "c&d"])
    by_window, by_id = seen
    assert by_window.url.host == "helix.test" and by_window.url.path == "/helix/clips"
    assert (
        by_window.url.params["after"] == cursor
        and by_window.url.params["started_at"] == "2026-09-21T14:12:20Z"
    )
    assert by_id.url.params.get_list("id") == ["a b", "c&d"]
    for request in seen:
        assert request.headers["user-agent"] == "clipcrawler" and request.headers["client-id"] == "cid"
        assert request.extensions["timeout"]["read"] == SETTINGS.http_timeout_seconds


async def test_empty_pagination_means_no_cursor() -> None:
    page = await client(lambda r: clips_reply([])).get_clips("42", Window(0, 1), None)
    assert page.cursor is None


async def test_rate_limit_headers_are_parsed() -> None:
    helix = client(lambda r: clips_reply([], **{"Ratelimit-Remaining": "12"}))
    await helix.get_clips("42", Window(0, 1), None)
    assert (helix.rate_limit.limit, helix.rate_limit.remaining, helix.rate_limit.reset_at) == (
        800,
        12,
        NOW + 60,
    )


async def test_429_raises_with_the_reset_time() -> None:
    helix = client(lambda r: clips_reply([], status=429, **{"Ratelimit-Remaining": "0"}))
    with pytest.raises(RateLimited) as raised:
        await helix.get_clips("42", Window(0, 1), None)
    assert raised.value.reset_at == NOW + 60


async def test_5xx_and_timeouts_are_retried_briefly_and_each_try_is_charged() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise httpx.ReadTimeout("slow", request=request)
        if calls == 2:
            return httpx.Response(503)
        return clips_reply([])

    budget = Budget(50, 50)
    await client(handler, budget=budget).get_clips("42", Window(0, 1), None)
    assert calls == 3 and budget.calls["helix"] == 3


async def test_persistent_5xx_gives_up_after_the_configured_tries() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(500)

    with pytest.raises(TransientHelixError, match="answered 500"):
        await client(handler).get_clips("42", Window(0, 1), None)
    assert calls == SETTINGS.http_attempts


async def test_retries_stop_when_the_budget_is_spent() -> None:
    with pytest.raises(BudgetExhausted):
        await client(lambda r: httpx.Response(500), budget=Budget(2, 50)).get_clips("42", Window(0, 1), None)


async def test_401_mints_a_new_token_once_and_retries() -> None:
    minted = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal minted
        if request.url.path == "/oauth2/token":
            minted += 1
            assert b"client_secret=csecret" in request.content
            return httpx.Response(
                200, json={"access_token": "fresh", "expires_in": 5000000, "token_type": "bearer"}
            )
        if request.headers["authorization"] != "Bearer fresh":
            return httpx.Response(401, json={"status": 401, "message": "Invalid OAuth token"})
        return clips_reply([])

    helix = client(handler)
    await helix.get_clips("42", Window(0, 1), None)
    assert minted == 1 and helix.minted is not None and helix.minted.access_token == "fresh"


async def test_401_after_a_fresh_token_is_an_auth_failure() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth2/token":
            return httpx.Response(200, json={"access_token": "fresh", "expires_in": 5000000})
        return httpx.Response(401, json={"status": 401, "message": "Invalid OAuth token"})

    with pytest.raises(AuthFailed, match="freshly minted"):
        await client(handler).get_clips("42", Window(0, 1), None)


async def test_refused_credentials_never_echo_the_secret() -> None:
    helix = client(
        lambda r: httpx.Response(403, json={"status": 403, "message": "invalid client secret"}), token=None
    )
    with pytest.raises(AuthFailed) as raised:
        await helix.get_clips("42", Window(0, 1), None)
    assert "csecret" not in str(raised.value) and "403" in str(raised.value)


async def test_expiring_token_is_minted_before_use() -> None:
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        if request.url.path == "/oauth2/token":
            return httpx.Response(200, json={"access_token": "fresh", "expires_in": 5000000})
        return clips_reply([])

    await client(handler, token=AppToken("old", NOW + 60)).get_clips("42", Window(0, 1), None)
    assert paths == ["/oauth2/token", "/helix/clips"]


async def test_get_users_batches_by_100() -> None:
    batches: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        logins = request.url.params.get_list("login")
        batches.append(len(logins))
        return httpx.Response(
            200, json={"data": [{"id": str(i), "login": name} for i, name in enumerate(logins)]}
        )

    users = await client(handler).get_users(logins=[f"user{i}" for i in range(250)])
    assert batches == [100, 100, 50] and len(users) == 250


async def test_bad_json_and_bad_cursor_types_are_errors() -> None:
    with pytest.raises(TransientHelixError, match="not JSON"):
        await client(lambda r: httpx.Response(200, content=b"<html>")).get_clips("42", Window(0, 1), None)
    bad_cursor = httpx.Response(200, content=json.dumps({"data": [], "pagination": {"cursor": 5}}).encode())
    with pytest.raises(HelixError, match="non-string cursor"):
        await client(lambda r: bad_cursor).get_clips("42", Window(0, 1), None)


def test_logins_are_normalised_and_checked() -> None:
    assert check_logins([" Foo_1 ", "foo_1", "bar"]) == ["foo_1", "bar"]
    with pytest.raises(ValueError, match="not a Twitch login: 'no spaces'"):
        check_logins(["no spaces"])
