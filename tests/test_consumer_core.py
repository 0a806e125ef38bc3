from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from consumer.core import handle_message
from local.clock import VirtualClock
from local.sqlite_db import SqliteDatabase
from producer.core import start_run
from shared.config import Settings
from shared.ports import Ports
from tests.scripted_helix import RecordingQueue, ScriptedHelix, make_clip

NOW = 1_790_000_000.0
SETTINGS = Settings(
    twitch_api_url="http://h/helix",
    twitch_auth_url="http://h/oauth2",
    twitch_client_id="cid",
    twitch_client_secret="secret",
    http_backoff_seconds=0,
)


class Env:
    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db
        self.clock = VirtualClock(NOW)
        self.queue = RecordingQueue()
        self.helix = ScriptedHelix({})

    async def job_message(self, streamer_id: str = "42") -> dict[str, Any]:
        await self.db.run(
            "INSERT OR IGNORE INTO streamers (id, login, added_at) VALUES (?, ?, ?)",
            streamer_id,
            f"s{streamer_id}",
            "2026-01-01T00:00:00Z",
        )
        # The producer normally mints the app token before fanning out.
        await self.db.run(
            "INSERT OR IGNORE INTO app_tokens (client_id, access_token, expires_at, minted_at) VALUES "
            "('cid', 'tok', '2026-12-31T00:00:00Z', ?)",
            "2026-09-21T00:00:00Z",
        )
        # make_clip's game, named already: these tests count the crawl's own subrequests (games:
        # test_upkeep.py).
        await self.db.run(
            "INSERT OR IGNORE INTO games (id, name, fetched_at) VALUES ('509658', 'Just Chatting', ?)",
            "2026-09-21T00:00:00Z",
        )
        before = len(self.queue.sent)
        ports = Ports(db=self.db, queue=self.queue, clock=self.clock)
        await start_run(ports, SETTINGS, streamer_ids=[streamer_id])
        return self.queue.sent[before].body

    async def handle(self, body: Any, attempts: int = 1, settings: Settings = SETTINGS) -> Any:
        http = httpx.AsyncClient(transport=httpx.MockTransport(self.helix))
        async with http:
            ports = Ports(db=self.db, queue=self.queue, clock=self.clock, http=http)
            return await handle_message(body, attempts, ports, settings)

    async def job(self) -> dict[str, Any]:
        row = await self.db.first("SELECT * FROM jobs ORDER BY id DESC LIMIT 1")
        assert row is not None
        return row


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    db = await SqliteDatabase.open()
    yield Env(db)
    await db.close()


async def test_small_crawl_finishes_in_three_subrequests(env: Env) -> None:
    env.helix.pages = {None: ([make_clip(f"c{i}") for i in range(100)], None)}
    verdict = await env.handle(await env.job_message())
    assert verdict.ack and verdict.outcome == "done" and verdict.run_finished
    assert verdict.subrequests == 3  # claim (with token and streamer), one Helix page, one write
    job = await env.job()
    assert (job["status"], job["clips_new"], job["pages"], job["max_subrequests"]) == ("done", 100, 1, 3)
    run = await env.db.first("SELECT * FROM runs")
    assert run["status"] == "finished" and run["jobs_done"] == 1 and run["clips_new"] == 100


async def test_empty_page_with_a_cursor_ends_the_window(env: Env) -> None:
    env.helix.pages = {None: ([make_clip("a")], "c1"), "c1": ([], "c2"), "c2": ([make_clip("never")], None)}
    verdict = await env.handle(await env.job_message())
    assert verdict.outcome == "done" and env.helix.clip_calls == 2
    assert (await env.job())["stop_reason"] == "complete"


ONE_HOUR = SETTINGS.with_(lookback_hours=1, backfill_hours=1, max_window_hours=1)


async def test_a_cursor_that_loops_once_is_followed_while_its_pages_add_clips(env: Env) -> None:
    scripted = env.helix
    scripted.pages = {None: ([make_clip("a")], "c1"), "c1": ([make_clip("b")], "c1")}

    def loop_once(request: httpx.Request) -> httpx.Response:
        response = scripted(request)
        if request.url.params.get("after") == "c1":
            scripted.pages["c1"] = ([make_clip("b")], "c2")  # the next walk gets past it
            scripted.pages["c2"] = ([make_clip("c")], None)
        return response

    env.helix = loop_once  # type: ignore[assignment]
    verdict = await env.handle(await env.job_message())
    assert verdict.outcome == "done"
    assert {r["id"] for r in await env.db.all("SELECT id FROM clips")} == {"a", "b", "c"}
    # The page that repeated its cursor added "b", so the walk went on; nothing was re-read in halves.
    assert [r.url.params.get("after") for r in scripted.requests if r.url.path.endswith("/clips")] == [
        None,
        "c1",
        "c1",
        "c2",
    ]
    assert {r.url.params.get("started_at") for r in scripted.requests if r.url.path.endswith("/clips")} == {
        "2026-09-20T14:10:00Z"
    }


async def test_a_cursor_that_always_loops_ends_the_window_once_a_page_adds_nothing(env: Env) -> None:
    env.helix.pages = {None: ([make_clip("a")], "c1"), "c1": ([make_clip("b")], "c1")}
    verdict = await env.handle(await env.job_message())
    # "b" was new, so its repeated cursor was followed; the same page again added nothing: the window ends,
    # keeping what was read, and the anomaly is recorded. The day is not split and re-read.
    assert verdict.outcome == "done" and env.helix.clip_calls == 3
    job = await env.job()
    assert job["stop_reason"] == "repeated_cursor" and job["clips_new"] == 2


async def test_page_cap_stops_a_cursor_that_never_ends(env: Env) -> None:
    env.helix.pages = {None: ([make_clip("p0")], "c1")}
    env.helix.pages.update({f"c{i}": ([make_clip(f"p{i}")], f"c{i + 1}") for i in range(1, 40)})
    verdict = await env.handle(await env.job_message(), settings=ONE_HOUR.with_(page_cap=5))
    assert verdict.outcome == "done" and env.helix.clip_calls == 5
    assert (await env.job())["stop_reason"] == "page_cap"


async def test_a_resumed_walk_with_an_old_cursor_starts_its_window_again(env: Env) -> None:
    env.helix.pages = {None: ([make_clip("a")], "c1"), "c1": ([make_clip("b")], None)}
    body = await env.job_message()
    job = await env.job()
    await env.db.run(
        "UPDATE jobs SET crawl_from = ?, crawl_to = ?, window_start = ?, window_end = ?, "
        "cursor = 'c1', cursor_at = ?, window_pages = 1 WHERE id = ?",
        "2026-09-21T13:00:00Z",
        "2026-09-21T14:20:00Z",
        "2026-09-21T13:00:00Z",
        "2026-09-21T14:20:00Z",
        "2026-09-21T13:00:00Z",
        job["id"],
    )
    await env.handle(body)
    assert [r.url.params.get("after") for r in env.helix.requests if r.url.path.endswith("/clips")] == [
        None,
        "c1",
    ]


async def test_a_job_abandoned_by_every_holder_is_failed_not_fed_forever(env: Env) -> None:
    body = await env.job_message()
    await env.db.run(
        "UPDATE jobs SET status = 'running', lease_token = 'dead', lease_expires_at = ?, reclaims = ?",
        "2026-09-21T14:00:00Z",
        SETTINGS.max_retries,
    )
    verdict = await env.handle(body)
    assert verdict.ack and verdict.outcome == "permanent"
    job = await env.job()
    assert job["status"] == "failed" and "abandoned by 6 consumers" in job["error"]


async def test_a_dead_letter_for_a_finished_job_records_nothing(env: Env) -> None:
    from consumer.core import handle_dead_letter

    env.helix.pages = {None: ([make_clip("a")], None)}
    body = await env.job_message()
    await env.handle(body)
    async with httpx.AsyncClient() as http:
        ports = Ports(db=env.db, queue=env.queue, clock=env.clock, http=http)
        verdict = await handle_dead_letter(body, ports, SETTINGS)
    assert verdict.ack
    assert await env.db.all("SELECT * FROM dead_letters") == []
    assert (await env.job())["status"] == "done"


async def test_a_dead_letter_fails_its_job_once_and_records_it_once(env: Env) -> None:
    from consumer.core import handle_dead_letter

    body = await env.job_message()
    async with httpx.AsyncClient() as http:
        ports = Ports(db=env.db, queue=env.queue, clock=env.clock, http=http)
        await handle_dead_letter(body, ports, SETTINGS)
        await handle_dead_letter(body, ports, SETTINGS)  # redelivered after a crash
    letters = await env.db.all("SELECT * FROM dead_letters")
    assert len(letters) == 1 and letters[0]["source"] == "dlq" and letters[0]["job_id"] == body["job_id"]
    job = await env.job()
    assert job["status"] == "failed" and "dead-lettered" in job["error"]
    assert (await env.db.first("SELECT jobs_failed, status FROM runs")) == {
        "jobs_failed": 1,
        "status": "finished",
    }


async def test_null_vod_offset_and_empty_video_id_are_stored_as_such(env: Env) -> None:
    env.helix.pages = {None: ([make_clip("a", video_id="", vod_offset=None)], None)}
    await env.handle(await env.job_message())
    row = await env.db.first("SELECT video_id, vod_offset FROM clips WHERE id = 'a'")
    assert row == {"video_id": "", "vod_offset": None}


async def test_late_video_id_and_views_are_overwritten_and_counted_as_updates(env: Env) -> None:
    env.helix.pages = {
        None: ([make_clip("a", video_id="", vod_offset=None, view_count=1), make_clip("b")], None)
    }
    await env.handle(await env.job_message())
    env.clock.advance(3600)
    env.helix.pages = {
        None: ([make_clip("a", video_id="99", vod_offset=12, view_count=5), make_clip("b")], None)
    }
    await env.handle(await env.job_message())
    row = await env.db.first(
        "SELECT video_id, vod_offset, view_count, first_seen_at, last_seen_at FROM clips WHERE id = 'a'"
    )
    assert row["video_id"] == "99" and row["vod_offset"] == 12 and row["view_count"] == 5
    assert row["first_seen_at"] < row["last_seen_at"]
    job = await env.job()
    assert (job["clips_new"], job["clips_updated"], job["clips_seen"]) == (0, 1, 2)
    unchanged = await env.db.first("SELECT first_seen_at = last_seen_at AS same FROM clips WHERE id = 'b'")
    assert unchanged["same"] == 1  # nothing changed, nothing rewritten


async def test_a_clip_missing_a_field_is_skipped_and_counted_not_fatal(env: Env) -> None:
    broken = make_clip("bad")
    del broken["created_at"]
    env.helix.pages = {None: ([make_clip("a"), broken, make_clip("b", view_count="many")], None)}
    verdict = await env.handle(await env.job_message())
    assert verdict.outcome == "done"
    job = await env.job()
    assert (job["clips_seen"], job["clips_skipped"]) == (1, 2)
    assert (await env.db.first("SELECT clips_skipped FROM runs"))["clips_skipped"] == 2


async def test_malformed_message_is_acked_and_recorded_not_retried(env: Env) -> None:
    verdict = await env.handle({"v": 1, "type": "crawl", "job_id": "x"})
    assert verdict.ack and verdict.outcome == "malformed"
    letter = await env.db.first("SELECT * FROM dead_letters")
    assert (
        letter["source"] == "consumer" and "run_id" in letter["reason"] and '"job_id": "x"' in letter["body"]
    )
    assert env.helix.requests == []


async def test_unknown_job_is_recorded_and_acked(env: Env) -> None:
    verdict = await env.handle({"v": 1, "type": "crawl", "run_id": 5, "job_id": 77, "streamer_id": "42"})
    assert verdict.ack
    assert "job 77 does not exist" in (await env.db.first("SELECT reason FROM dead_letters"))["reason"]


async def test_duplicate_delivery_of_a_finished_job_is_acked_without_calling_twitch(env: Env) -> None:
    env.helix.pages = {None: ([make_clip("a")], None)}
    body = await env.job_message()
    await env.handle(body)
    calls = len(env.helix.requests)
    verdict = await env.handle(body, attempts=2)
    assert verdict.ack and verdict.outcome == "duplicate" and len(env.helix.requests) == calls
    assert (await env.db.first("SELECT jobs_done, clips_new FROM runs")) == {"jobs_done": 1, "clips_new": 1}


async def test_a_job_leased_by_a_live_consumer_is_retried_after_the_lease(env: Env) -> None:
    body = await env.job_message()
    expires = "2026-09-21T14:30:00Z"
    await env.db.run(
        "UPDATE jobs SET status = 'running', lease_token = 'other', lease_expires_at = ?", expires
    )
    verdict = await env.handle(body)
    assert verdict.ack and verdict.outcome == "busy"  # acked, and a fresh message comes back later
    (again,) = env.queue.sent[-1:]
    assert (
        again.body["job_id"] == body["job_id"] and 1000 <= again.delay_seconds <= 1020
    )  # 14:30:00 + a little


async def test_a_job_whose_consumer_died_is_reclaimed_after_its_lease(env: Env) -> None:
    env.helix.pages = {None: ([make_clip("a")], None)}
    body = await env.job_message()
    await env.db.run(
        "UPDATE jobs SET status = 'running', lease_token = 'dead', lease_expires_at = ?",
        "2026-09-21T14:00:00Z",
    )
    verdict = await env.handle(body)
    assert verdict.outcome == "done"
    job = await env.job()
    assert job["status"] == "done" and job["attempts"] == 1


async def test_a_stale_writer_cannot_touch_a_job_it_lost(env: Env) -> None:
    """Fencing: after a takeover, the old holder's page write changes nothing at all."""
    from shared import store

    body = await env.job_message()
    job = await env.job()
    await env.db.run("UPDATE jobs SET status = 'running', lease_token = 'new-holder'")
    write = store.PageWrite(
        job_id=job["id"],
        run_id=job["run_id"],
        streamer_id=job["streamer_id"],
        lease_token="old-holder",
        now="2026-09-21T14:13:20Z",
        clips=[{**make_clip("z"), "is_featured": 0}],
        skipped=0,
        calls=store.Calls(),
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
    results = await store.write_page(write).run(env.db)
    assert results.changes("job") == 0
    assert await env.db.all("SELECT id FROM clips") == []
    assert (await env.db.first("SELECT jobs_done, pages FROM runs")) == {"jobs_done": 0, "pages": 0}
    assert body["job_id"] == job["id"]


async def test_a_d1_error_mid_batch_rolls_back_and_retries(env: Env) -> None:
    env.helix.pages = {None: ([make_clip("a")], None)}
    body = await env.job_message()
    await env.db.run("CREATE TRIGGER boom BEFORE INSERT ON clips BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    verdict = await env.handle(body)
    assert not verdict.ack and verdict.outcome == "transient" and "disk full" in verdict.detail
    assert await env.db.all("SELECT id FROM clips") == []
    job = await env.job()
    assert job["status"] == "queued" and job["pages"] == 0  # handed back, nothing half-applied
    await env.db.run("DROP TRIGGER boom")
    verdict = await env.handle(body, attempts=2)
    assert verdict.outcome == "done" and (await env.job())["clips_new"] == 1


async def test_transient_failures_fail_the_job_after_max_retries(env: Env) -> None:
    body = await env.job_message()
    env.helix.pages = {}  # every clips request raises KeyError inside the fake: a 500 from MockTransport

    def broken(request: httpx.Request) -> httpx.Response:
        return (
            httpx.Response(503)
            if request.url.path.endswith("/clips")
            else httpx.Response(200, json={"access_token": "t", "expires_in": 5_000_000})
        )

    env.helix = broken  # type: ignore[assignment]
    verdict = await env.handle(body, attempts=SETTINGS.max_retries + 1)
    assert verdict.ack and verdict.outcome == "transient"
    job = await env.job()
    assert job["status"] == "failed" and "503" in job["error"]
    streamer = await env.db.first("SELECT failure_streak, last_error FROM streamers")
    assert streamer["failure_streak"] == 1 and "503" in streamer["last_error"]
    run = await env.db.first("SELECT status, jobs_failed FROM runs")
    assert run == {"status": "finished", "jobs_failed": 1}


async def test_the_secret_is_not_in_any_stored_error(env: Env) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token"):
            return httpx.Response(403, json={"status": 403, "message": "invalid client secret"})
        return httpx.Response(401, json={"status": 401, "message": "Invalid OAuth token"})

    env.helix = refuse  # type: ignore[assignment]
    verdict = await env.handle(await env.job_message())
    assert verdict.ack and verdict.outcome == "permanent"
    job = await env.job()
    assert job["status"] == "failed" and "refused the client credentials" in job["error"]
    dump = str(await env.db.all("SELECT * FROM jobs")) + str(await env.db.all("SELECT * FROM streamers"))
    assert "secret" not in dump.replace("invalid client secret", "")


async def test_a_streamer_deactivated_while_queued_closes_its_job_without_moving_the_watermark(
    env: Env,
) -> None:
    body = await env.job_message()
    await env.db.run("UPDATE streamers SET active = 0, crawled_through = '2026-09-01T00:00:00Z'")
    verdict = await env.handle(body)
    assert verdict.ack and verdict.outcome == "done" and env.helix.requests == []
    job = await env.job()
    assert (job["status"], job["stop_reason"]) == ("done", "streamer_inactive")
    streamer = await env.db.first("SELECT crawled_through, last_success_at FROM streamers")
    assert streamer == {"crawled_through": "2026-09-01T00:00:00Z", "last_success_at": None}
