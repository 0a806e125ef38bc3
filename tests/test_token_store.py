"""The stored app token: re-read before minting, and one claim to mint at a time (shared/token_store.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from local.clock import VirtualClock
from local.sqlite_db import SqliteDatabase
from shared import store
from shared.budget import Budget
from shared.config import Settings
from shared.helix import AppToken, HelixClient
from shared.timefmt import to_rfc3339
from shared.token_store import CLAIM_SECONDS, StoredToken

NOW = 1_790_000_000.0
SETTINGS = Settings(
    twitch_api_url="http://h/helix",
    twitch_auth_url="http://h/oauth2",
    twitch_client_id="cid",
    twitch_client_secret="secret",
    http_backoff_seconds=0,
)
OLD = AppToken("old", NOW + 86_400 * 30)


@pytest.fixture
async def db() -> AsyncIterator[SqliteDatabase]:
    database = await SqliteDatabase.open()
    await database.batch(
        [store.store_token("cid", OLD.access_token, to_rfc3339(OLD.expires_at), to_rfc3339(NOW))]
    )
    yield database
    await database.close()


async def test_only_one_of_two_claims_on_the_same_stale_token_wins(db: SqliteDatabase) -> None:
    clock = VirtualClock(NOW)
    first, second = StoredToken(db, clock, "cid", 1), StoredToken(db, clock, "cid", 1)
    won, lost = await first.claim(OLD), await second.claim(OLD)
    assert (won.may_mint, lost.may_mint) == (True, False)
    assert lost.stored == OLD  # nothing new yet: the loser waits
    await first.store(AppToken("new", NOW + 5_000_000))
    after = await second.claim(OLD)
    assert not after.may_mint and after.stored is not None and after.stored.access_token == "new"


async def test_a_claimant_that_went_silent_is_taken_over(db: SqliteDatabase) -> None:
    clock = VirtualClock(NOW)
    assert (await StoredToken(db, clock, "cid", 1).claim(OLD)).may_mint
    clock.advance(CLAIM_SECONDS - 1)
    assert not (await StoredToken(db, clock, "cid", 1).claim(OLD)).may_mint
    clock.advance(2)
    assert (await StoredToken(db, clock, "cid", 1).claim(OLD)).may_mint


async def test_with_no_stored_token_the_first_claim_wins() -> None:
    database = await SqliteDatabase.open()
    try:
        clock = VirtualClock(NOW)
        won, lost = (
            await StoredToken(database, clock, "cid", 1).claim(None),
            await StoredToken(database, clock, "cid", 1).claim(None),
        )
        assert (won.may_mint, lost.may_mint) == (True, False)
        assert won.stored is not None and not won.stored.usable(NOW)  # the claim's placeholder is never used
    finally:
        await database.close()


async def test_concurrent_clients_refused_the_same_token_mint_once(db: SqliteDatabase) -> None:
    minted: list[str] = []

    def twitch(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token"):
            minted.append(f"t{len(minted)}")
            return httpx.Response(200, json={"access_token": minted[-1], "expires_in": 5_000_000})
        good = minted and request.headers["authorization"] == f"Bearer {minted[-1]}"
        return httpx.Response(200 if good else 401, json={"data": [], "pagination": {}})

    clock = VirtualClock(NOW)
    async with httpx.AsyncClient(transport=httpx.MockTransport(twitch)) as http:
        clients = [
            HelixClient(http, SETTINGS, Budget(50, 50), clock, OLD, tokens=StoredToken(db, clock, "cid", 1))
            for _ in range(8)
        ]
        await asyncio.gather(*(c.get_users(ids=["1"]) for c in clients))
    assert minted == ["t0"]
    assert {c.token.access_token for c in clients if c.token} == {"t0"}
    row = await db.first("SELECT access_token, minting_until FROM app_tokens")
    assert row == {"access_token": "t0", "minting_until": None}


async def test_a_token_near_expiry_is_replaced_once_across_concurrent_clients() -> None:
    database = await SqliteDatabase.open()
    minted: list[str] = []

    def twitch(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token"):
            minted.append(f"t{len(minted)}")
            return httpx.Response(200, json={"access_token": minted[-1], "expires_in": 5_000_000})
        return httpx.Response(200, json={"data": []})

    try:
        clock = VirtualClock(NOW)
        expiring = AppToken("old", NOW + 60)  # inside the margin: not used for another request
        await database.batch(
            [store.store_token("cid", "old", to_rfc3339(expiring.expires_at), to_rfc3339(NOW))]
        )
        async with httpx.AsyncClient(transport=httpx.MockTransport(twitch)) as http:
            clients = [
                HelixClient(
                    http,
                    SETTINGS,
                    Budget(50, 50),
                    clock,
                    expiring,
                    tokens=StoredToken(database, clock, "cid", 1),
                )
                for _ in range(5)
            ]
            await asyncio.gather(*(c.get_users(ids=["1"]) for c in clients))
        assert minted == ["t0"]
    finally:
        await database.close()


async def test_refused_credentials_fail_every_waiting_client_as_auth_not_as_a_retry(
    db: SqliteDatabase,
) -> None:
    """A wrong client secret: the claimant's mint fails, and the clients that waited on its claim must learn
    that too (AuthFailed, permanent), not time out into a transient retry: `clipcrawler crawl` with a typo'd
    secret otherwise re-queued every job for minutes, one mint attempt per 20 s claim."""
    calls: list[str] = []

    def twitch(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if request.url.path.endswith("/token"):
            return httpx.Response(400, json={"status": 400, "message": "invalid client secret"})
        return httpx.Response(401, json={"status": 401, "message": "invalid oauth token"})

    clock = VirtualClock(NOW)
    async with httpx.AsyncClient(transport=httpx.MockTransport(twitch)) as http:
        clients = [
            HelixClient(http, SETTINGS, Budget(50, 50), clock, OLD, tokens=StoredToken(db, clock, "cid", 1))
            for _ in range(5)
        ]
        outcomes = await asyncio.gather(*(c.get_users(ids=["1"]) for c in clients), return_exceptions=True)
    assert [type(o).__name__ for o in outcomes] == ["AuthFailed"] * 5, outcomes
    row = await db.first("SELECT minting_until FROM app_tokens")
    assert row == {"minting_until": None}  # the failed claimant released its claim
