"""Issue 17, findings 1-3: a message acts only on the job it names, and none is dropped without a record."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from consumer.core import Verdict, handle_dead_letter
from local.sqlite_db import SqliteDatabase
from shared.ports import Ports
from tests.scripted_helix import make_clip
from tests.test_consumer_core import SETTINGS, Env

Body = dict[str, Any]


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    db = await SqliteDatabase.open()
    yield Env(db)
    await db.close()


async def dead_letter(env: Env, body: object) -> Verdict:
    async with httpx.AsyncClient(transport=httpx.MockTransport(env.helix)) as http:
        ports = Ports(db=env.db, queue=env.queue, clock=env.clock, http=http)
        return await handle_dead_letter(body, ports, SETTINGS)


async def two_runs(env: Env) -> tuple[Body, Body]:
    """Run 1 crawled streamer 42 to the end; run 2 has just queued job 2 for it."""
    env.helix.pages = {None: ([make_clip("a")], None)}
    first = await env.job_message("42")
    assert (await env.handle(first)).outcome == "done"
    second = await env.job_message("42")
    assert (first["run_id"], first["job_id"], second["run_id"], second["job_id"]) == (1, 1, 2, 2)
    return first, second


async def tables(env: Env) -> dict[str, list[dict[str, Any]]]:
    return {
        t: await env.db.all(f"SELECT * FROM {t} ORDER BY 1") for t in ("runs", "jobs", "streamers", "clips")
    }


async def letters(env: Env) -> list[dict[str, Any]]:
    return await env.db.all("SELECT * FROM dead_letters ORDER BY id")


# --- finding 1: the wrong job failed ----------------------------------------------------------------


async def test_a_dead_letter_naming_another_runs_job_fails_nothing_and_is_recorded(env: Env) -> None:
    _, second = await two_runs(env)
    before = await tables(env)
    stray = {**second, "run_id": 1}  # job 2, but of run 1: a message no job matches
    verdict = await dead_letter(env, stray)
    assert verdict.ack
    assert await tables(env) == before  # job 2 still queued, run 1 not given a failure, run 2 still running
    [letter] = await letters(env)
    assert letter["source"] == "dlq" and json.loads(letter["body"]) == stray
    assert "no job 2 of run 1 for streamer '42' exists" in letter["reason"]
    # The right message still crawls job 2 and closes run 2.
    assert (await env.handle(second)).outcome == "done"
    assert (await env.db.first("SELECT status, jobs_failed FROM runs WHERE id = 2")) == {
        "status": "finished",
        "jobs_failed": 0,
    }


@pytest.mark.parametrize("wrong", [{"run_id": 1}, {"streamer_id": "43"}, {"run_id": 7, "streamer_id": "43"}])
async def test_a_crawl_message_naming_a_job_of_another_run_or_streamer_is_dead_lettered(
    env: Env, wrong: Body
) -> None:
    _, second = await two_runs(env)
    before = await tables(env)
    sent = len(env.queue.sent)
    stray = {**second, **wrong}
    verdict = await env.handle(stray)
    assert verdict.ack and verdict.outcome == "permanent"
    assert len(env.queue.sent) == sent  # not re-sent as "busy"
    assert await tables(env) == before
    [letter] = await letters(env)
    assert letter["source"] == "consumer" and json.loads(letter["body"]) == stray
    assert (
        "message names job 2" in letter["reason"] and "belongs to run 2 and streamer '42'" in letter["reason"]
    )


async def test_a_retried_out_crawl_message_fails_only_the_job_it_names(env: Env) -> None:
    """Transient errors until the retries run out: a misnamed message must not fail the job of its id."""
    _, second = await two_runs(env)
    await env.db.run("CREATE TRIGGER boom BEFORE UPDATE ON jobs BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    stray = {**second, "run_id": 1}
    verdict = await env.handle(stray, attempts=SETTINGS.max_retries + 1)
    await env.db.run("DROP TRIGGER boom")
    assert verdict.ack
    assert (await env.db.first("SELECT status FROM jobs WHERE id = 2"))["status"] == "queued"
    assert (await env.db.first("SELECT jobs_failed FROM runs WHERE id = 1"))["jobs_failed"] == 0
    assert len(await letters(env)) == 1


# --- finding 2: mismatched and busy messages loop -----------------------------------------------------


async def follow(env: Env, body: Body, deliveries: int) -> list[Verdict]:
    """Deliver `body`, then each message the consumer sends on for it, up to `deliveries` times."""
    verdicts = []
    for _ in range(deliveries):
        sent = len(env.queue.sent)
        verdicts.append(await env.handle(body))
        if len(env.queue.sent) == sent:
            break
        body = env.queue.sent[-1].body
        env.clock.advance(env.queue.sent[-1].delay_seconds)
    return verdicts


async def test_a_mismatched_message_ends_on_its_first_delivery_not_forty(env: Env) -> None:
    _, second = await two_runs(env)
    verdicts = await follow(env, {**second, "streamer_id": "43"}, 40)
    assert [v.outcome for v in verdicts] == ["permanent"]
    assert len(await letters(env)) == 1


async def test_a_message_that_stays_busy_is_dead_lettered_after_the_lease_and_its_retries(env: Env) -> None:
    body = await env.job_message()
    # A holder that keeps its lease alive (it renews it on every continuation): always an hour from now.
    await env.db.run("UPDATE jobs SET status = 'running', lease_token = 'holder'")
    verdicts: list[Verdict] = []
    for _ in range(40):
        await env.db.run(
            "UPDATE jobs SET lease_expires_at = strftime('%Y-%m-%dT%H:%M:%SZ', ?, 'unixepoch')",
            env.clock.now() + 3600,
        )
        sent = len(env.queue.sent)
        verdicts.append(await env.handle(body))
        if len(env.queue.sent) == sent:
            break
        body = env.queue.sent[-1].body
        env.clock.advance(env.queue.sent[-1].delay_seconds)
    # The first answer waits for the lease; then max_retries more; then this copy gives up.
    assert [v.outcome for v in verdicts] == ["busy"] * (SETTINGS.max_retries + 2)
    assert all(v.ack for v in verdicts)
    [letter] = await letters(env)
    assert letter["job_id"] == body["job_id"] and body["busy"] == SETTINGS.max_retries + 1
    assert "leased by another consumer" in letter["reason"] and "the holder carries on" in letter["reason"]
    job = await env.job()
    assert (job["status"], job["lease_token"], job["error"]) == (
        "running",
        "holder",
        None,
    )  # still the holder's


async def test_a_busy_message_that_finds_the_lease_over_crawls_and_resets_its_count(env: Env) -> None:
    env.helix.pages = {None: ([make_clip("a")], None)}
    body = await env.job_message()
    await env.db.run(
        "UPDATE jobs SET status = 'running', lease_token = 'holder', lease_expires_at = ?",
        "2026-09-21T14:30:00Z",
    )
    assert (await env.handle(body)).outcome == "busy"
    again = env.queue.sent[-1]
    assert again.body["busy"] == 1
    env.clock.advance(again.delay_seconds)
    assert (await env.handle(again.body)).outcome == "done"


async def test_a_running_job_without_a_lease_is_claimed_not_busy_for_ever(env: Env) -> None:
    env.helix.pages = {None: ([make_clip("a")], None)}
    body = await env.job_message()
    await env.db.run("UPDATE jobs SET status = 'running', lease_token = 'lost', lease_expires_at = NULL")
    assert (await env.handle(body)).outcome == "done"


# --- finding 3: dropped without a record ---------------------------------------------------------------


def nested(levels: int) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for _ in range(levels - 1):
        body = {"x": body}
    return body


HOSTILE: dict[str, object] = {
    "integer beyond SQLite": {"v": 1, "type": "crawl", "run_id": 1, "job_id": 10**20, "streamer_id": "42"},
    "integer beyond JS": {"v": 1, "type": "crawl", "run_id": 1, "job_id": 2**53, "streamer_id": "42"},
    "JSON 30,000 deep": "[" * 30_000 + "]" * 30_000,
    "dict 5,000 deep": nested(5_000),
    "lone surrogate": {"v": 1, "type": "crawl", "run_id": 1, "job_id": 1, "streamer_id": "\ud800"},
    "lone surrogate as JSON": '{"v":1,"type":"crawl","run_id":1,"job_id":1,"streamer_id":"\\ud800"}',
    "v true": {"v": True, "type": "crawl", "run_id": 1, "job_id": 1, "streamer_id": "42"},
    "v 1.0": {"v": 1.0, "type": "crawl", "run_id": 1, "job_id": 1, "streamer_id": "42"},
    "not UTF-8": b"\xff\xfe{",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
async def test_a_hostile_body_is_dead_lettered_and_acked_on_its_first_delivery(env: Env, name: str) -> None:
    await env.job_message("42")  # a real job 1 of run 1 for streamer 42, which none of them may touch
    before = await tables(env)
    verdict = await env.handle(HOSTILE[name])
    assert verdict.ack and verdict.outcome == "malformed"
    assert await tables(env) == before
    [letter] = await letters(env)
    assert letter["source"] == "consumer" and letter["reason"] and letter["body"]
    letter["body"].encode("utf-8")


@pytest.mark.parametrize("name", sorted(HOSTILE))
async def test_a_hostile_body_from_the_dead_letter_queue_is_recorded_and_fails_nothing(
    env: Env, name: str
) -> None:
    await env.job_message("42")
    before = await tables(env)
    verdict = await dead_letter(env, HOSTILE[name])
    assert verdict.ack
    assert await tables(env) == before  # the surrogate case used to fail job 1 and bump the streak
    [letter] = await letters(env)
    assert letter["source"] == "dlq" and letter["reason"].startswith("dead-lettered and malformed")


async def test_recording_a_dead_letter_that_d1_refuses_retries_instead_of_raising(env: Env) -> None:
    await env.db.run(
        "CREATE TRIGGER boom BEFORE INSERT ON dead_letters BEGIN SELECT RAISE(ABORT, 'D1 down'); END"
    )
    verdict = await env.handle({"v": 1, "type": "paint"})
    assert not verdict.ack and verdict.delay_seconds > 0 and "D1 down" in verdict.detail
    verdict = await dead_letter(env, {"v": 1, "type": "paint"})
    assert not verdict.ack
    await env.db.run("DROP TRIGGER boom")
    assert (await env.handle({"v": 1, "type": "paint"}, attempts=2)).ack
    assert len(await letters(env)) == 1


async def test_a_fan_out_for_a_run_that_does_not_exist_is_recorded(env: Env) -> None:
    verdict = await env.handle({"v": 1, "type": "fanout", "run_id": 99, "after": ""})
    assert verdict.ack
    [letter] = await letters(env)
    assert "run 99, which does not exist" in letter["reason"]


async def test_page_writes_and_releases_change_nothing_unless_job_run_and_streamer_all_match(
    env: Env,
) -> None:
    """The lease token alone is not trusted: every statement on `jobs` also names the job's run and
    streamer.
    """
    from shared import store

    await env.job_message("42")
    await env.db.run("UPDATE jobs SET status = 'running', lease_token = 'mine'")
    before = await tables(env)
    for run_id, streamer_id in ((2, "42"), (1, "43")):
        page = store.PageWrite(
            job_id=1,
            run_id=run_id,
            streamer_id=streamer_id,
            lease_token="mine",
            now="2026-09-21T14:13:20Z",
            clips=[{**make_clip("z"), "is_featured": 0}],
            skipped=0,
            calls=store.Calls(helix=1),
            crawl_from="2026-09-20T14:00:00Z",
            crawl_to="2026-09-21T14:20:00Z",
            window_start=None,
            window_end=None,
            cursor=None,
            cursor_at=None,
            window_pages=0,
            pages=1,
            stop_reason="complete",
            counted=(0, 0),
        )
        assert (await store.write_page(page).run(env.db)).changes("job") == 0
        released = store.release_job(
            1,
            run_id,
            streamer_id,
            "mine",
            "2026-09-21T14:13:20Z",
            "2026-09-21T14:13:20Z",
            store.Calls(d1=1),
            "error",
            "boom",
        )
        results = await released.run(env.db)
        assert [results.changes("job"), results.changes("run")] == [0, 0]
        failed = store.fail_job(
            1, run_id, streamer_id, "token", "2026-09-21T14:13:20Z", store.Calls(), "failed", "boom"
        )
        assert (await failed.run(env.db)).changes("job") == 0
    assert await tables(env) == before
