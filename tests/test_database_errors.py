"""One DatabaseError from every adapter; the core tells "the database failed" from a bug only in its logs."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import pytest

from consumer.core import handle_dead_letter
from local.d1_meter import D1BridgeError
from local.queue import QueueLimitError
from local.sqlite_db import D1Error, SqliteDatabase, SqliteError
from producer import queries
from producer.app import create_app
from producer.context import AppContext
from shared.errors import ClipCrawlerError, DatabaseError, QueueError
from shared.logs import BUG_EVENT
from shared.ports import Database, Ports, Result, Row, Statement
from tests import api_support
from tests.api_support import ApiFactory
from tests.scripted_helix import make_clip
from tests.test_consumer_core import SETTINGS, Env


class FailingOn:
    """A Database that raises `error` for any batch touching `table`, and passes the rest through."""

    def __init__(self, db: Database, table: str, error: Exception) -> None:
        self.db, self.table, self.error = db, table, error

    async def batch(self, statements: Sequence[Statement]) -> list[Result]:
        if any(self.table in s.sql for s in statements):
            raise self.error
        return await self.db.batch(statements)

    async def all(self, sql: str, *params: Any) -> list[Row]:
        return (await self.run(sql, *params)).rows

    async def first(self, sql: str, *params: Any) -> Row | None:
        rows = (await self.run(sql, *params)).rows
        return rows[0] if rows else None

    async def run(self, sql: str, *params: Any) -> Result:
        return (await self.batch([Statement(sql, tuple(params))]))[0]


make_api = api_support.make_api

FAILURES = {
    "d1": DatabaseError("D1_ERROR: disk full"),
    "bug": TypeError("unsupported operand type(s) for +: 'int' and 'str'"),
}


def bug_events(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    events = [json.loads(r.getMessage()) for r in caplog.records if r.name == "clipcrawler.events"]
    return [e for e in events if e["event"] == BUG_EVENT]


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    db = await SqliteDatabase.open()
    yield Env(db)
    await db.close()


def test_every_local_adapter_raises_a_database_error() -> None:
    for error in (D1Error, SqliteError, D1BridgeError):
        assert issubclass(error, DatabaseError) and issubclass(error, ClipCrawlerError)
    assert issubclass(QueueLimitError, QueueError) and not issubclass(QueueLimitError, DatabaseError)


async def test_local_sqlite_refusing_a_statement_is_a_database_error() -> None:
    db = await SqliteDatabase.open()
    try:
        with pytest.raises(DatabaseError, match="no such table: nope"):
            await db.all("SELECT * FROM nope")
    finally:
        await db.close()


@pytest.mark.parametrize("failure", FAILURES)
async def test_a_crawl_whose_page_write_fails_is_handed_back_and_retried_either_way(
    env: Env, caplog: pytest.LogCaptureFixture, failure: str
) -> None:
    caplog.set_level(logging.INFO)
    env.helix.pages = {None: ([make_clip("a")], None)}
    body = await env.job_message()
    env.db = FailingOn(env.db, "INSERT INTO clips", FAILURES[failure])  # type: ignore[assignment]
    verdict = await env.handle(body)
    assert not verdict.ack and verdict.outcome == "transient"
    assert type(FAILURES[failure]).__name__ in verdict.detail
    job = await env.job()
    assert job["status"] == "queued" and job["pages"] == 0  # handed back, nothing half-applied
    bugs = bug_events(caplog)
    if failure == "bug":
        assert [(b["where"], b["error_type"]) for b in bugs] == [("consumer.crawl", "TypeError")]
        assert bugs[0]["job_id"] == body["job_id"] and "unsupported operand" in bugs[0]["error"]
    else:
        assert bugs == []


@pytest.mark.parametrize("failure", FAILURES)
async def test_a_crawl_failing_on_its_last_delivery_fails_its_job_either_way(
    env: Env, caplog: pytest.LogCaptureFixture, failure: str
) -> None:
    caplog.set_level(logging.INFO)
    env.helix.pages = {None: ([make_clip("a")], None)}
    body = await env.job_message()
    real = env.db
    env.db = FailingOn(real, "INSERT INTO clips", FAILURES[failure])  # type: ignore[assignment]
    verdict = await env.handle(body, attempts=SETTINGS.max_retries + 1)
    assert verdict.ack and verdict.outcome == "transient"
    job = await real.first("SELECT status, error FROM jobs")
    assert job is not None and job["status"] == "failed"
    assert type(FAILURES[failure]).__name__ in job["error"]
    assert len(bug_events(caplog)) == (1 if failure == "bug" else 0)


@pytest.mark.parametrize("failure", FAILURES)
async def test_a_dead_letter_that_cannot_be_recorded_is_delivered_again_either_way(
    env: Env, caplog: pytest.LogCaptureFixture, failure: str
) -> None:
    caplog.set_level(logging.INFO)
    body = await env.job_message()
    broken = FailingOn(env.db, "", FAILURES[failure])  # every statement
    async with httpx.AsyncClient(transport=httpx.MockTransport(env.helix)) as http:
        ports = Ports(db=broken, queue=env.queue, clock=env.clock, http=http)
        verdict = await handle_dead_letter(body, ports, SETTINGS)
    assert not verdict.ack and verdict.outcome == "transient"
    assert verdict.delay_seconds == SETTINGS.retry_delay_seconds
    bugs = bug_events(caplog)
    assert [b["where"] for b in bugs] == (["consumer.handle_dead_letter"] if failure == "bug" else [])
    assert (await env.job())["status"] == "queued"  # nothing recorded: the next delivery does it


@pytest.mark.parametrize("failure", FAILURES)
async def test_an_api_request_whose_query_fails_answers_500_either_way(
    make_api: ApiFactory, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, failure: str
) -> None:
    caplog.set_level(logging.INFO)
    api = await make_api(1)

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise FAILURES[failure]

    monkeypatch.setattr(queries, "runs_page", broken)

    async def context(request: object) -> AppContext:
        return api.context

    transport = httpx.ASGITransport(app=create_app(context), raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://testserver",
        headers={"Authorization": "Bearer " + api.context.api_token},
    ) as client:
        listing = await client.get("/runs")
    name = type(FAILURES[failure]).__name__
    assert listing.status_code == 500 and listing.json()["error"] == "internal_server_error"
    assert f"internal error ({name})" in listing.json()["message"]
    events = [json.loads(r.getMessage())["event"] for r in caplog.records if r.name == "clipcrawler.events"]
    expected = (True, False) if failure == "bug" else (False, True)
    assert ("bug" in events, "request_failed" in events) == expected
