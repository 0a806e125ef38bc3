"""The runs API: kick (limited, backfilled, never twice), list, show, jobs, retry-failed."""

from __future__ import annotations

from typing import Any

from shared.timefmt import to_rfc3339
from tests import api_support
from tests.api_support import ApiFactory

DAY = 86_400

make_api = api_support.make_api  # the fixture, shared by the API, dashboard and notification tests


async def streamer_ids(api: Any) -> list[str]:
    return [r["id"] for r in await api.stack.db.all("SELECT id FROM streamers ORDER BY id")]


async def test_a_kick_opens_a_run_of_every_active_streamer_and_the_run_shows_it(make_api: ApiFactory) -> None:
    api = await make_api(4)
    response = await api.post("/runs")
    assert response.status_code == 202
    kicked = response.json()
    assert kicked["jobs"] == 4 and kicked["finished"] is False and kicked["status"] == "running"
    assert response.headers["location"] == f"/runs/{kicked['run_id']}"
    assert api.stack.runner.queue.pending() == 4
    await api.stack.runner.drain()
    shown = (await api.get(f"/runs/{kicked['run_id']}")).json()
    row = await api.run(kicked["run_id"])
    assert shown["status"] == "finished" and shown["finished_at"] == row["finished_at"]
    assert shown["jobs"] == {"total": 4, "done": 4, "failed": 0, "pending": 0}
    assert shown["clips"] == {k: row[f"clips_{k}"] for k in ("seen", "new", "updated", "skipped")}
    assert shown["calls"] == {"helix": row["helix_calls"], "d1": row["d1_calls"], "queue": row["queue_sends"]}
    assert shown["failure_rate"] == 0 and shown["duration_s"] == 0  # the virtual clock did not move
    assert shown["jobs_by_status"] == {"queued": 0, "running": 0, "done": 4, "failed": 0}
    assert shown["stop_reasons"] == {"complete": 4}


async def test_a_kick_can_be_limited_to_some_streamers(make_api: ApiFactory) -> None:
    api = await make_api(4)
    ids = await streamer_ids(api)
    response = await api.post("/runs", json={"streamers": [ids[1], ids[3], ids[1]]})
    assert response.status_code == 202 and response.json()["jobs"] == 2
    jobs = await api.stack.db.all(
        "SELECT streamer_id FROM jobs WHERE run_id = ? ORDER BY streamer_id", response.json()["run_id"]
    )
    assert [j["streamer_id"] for j in jobs] == [ids[1], ids[3]]


async def test_a_kick_while_a_run_holds_the_streamers_enqueues_them_once(make_api: ApiFactory) -> None:
    api = await make_api(3)
    ids = await streamer_ids(api)
    first = (await api.post("/runs")).json()
    again = (await api.post("/runs")).json()
    limited = (await api.post("/runs", json={"streamers": ids[:2]})).json()
    assert first["jobs"] == 3 and again["jobs"] == 0 and limited["jobs"] == 0
    assert again["finished"] is True and again["status"] == "finished"  # nothing left to crawl
    assert api.stack.runner.queue.pending() == 3
    unfinished = await api.stack.db.all(
        "SELECT streamer_id, count(*) AS n FROM jobs "
        "WHERE status IN ('queued', 'running') GROUP BY streamer_id"
    )
    assert sorted(r["streamer_id"] for r in unfinished) == ids and {r["n"] for r in unfinished} == {1}
    await api.stack.runner.drain()
    after = (await api.post("/runs", json={"streamers": ids[:1]})).json()
    assert after["jobs"] == 1  # once the first run is done, the streamer can be crawled again


async def test_a_kick_refuses_streamers_that_are_unknown_or_deactivated(make_api: ApiFactory) -> None:
    api = await make_api(3)
    ids = await streamer_ids(api)
    unknown = await api.post("/runs", json={"streamers": [ids[0], "999"]})
    assert unknown.status_code == 422 and unknown.json()["field"] == "streamers[1]"
    assert "'999'" in unknown.json()["message"]
    await api.delete(f"/streamers/{ids[2]}")
    inactive = await api.post("/runs", json={"streamers": [ids[2]]})
    assert inactive.status_code == 422 and "deactivated" in inactive.json()["message"]
    for bad, field in (
        ([], "streamers"),
        ("x", "streamers"),
        ([1], "streamers[0]"),
        ([""], "streamers[0]"),
        (["1"] * 1001, "streamers"),
    ):
        response = await api.post("/runs", json={"streamers": bad})
        assert (response.status_code, response.json()["field"]) == (422, field), bad
    assert await api.stack.db.first("SELECT count(*) AS n FROM runs") == {"n": 0}


async def test_a_backfill_crawls_the_fixed_window(make_api: ApiFactory) -> None:
    api = await make_api(2)
    now = api.stack.clock.now()
    window = {"from": to_rfc3339(now - 3 * DAY), "to": to_rfc3339(now - 2 * DAY)}
    response = await api.post("/runs", json={"backfill": window})
    assert response.status_code == 202
    run_id = response.json()["run_id"]
    await api.stack.runner.drain()
    jobs = (await api.get(f"/runs/{run_id}/jobs")).json()["jobs"]
    assert [(j["crawl_from"], j["crawl_to"]) for j in jobs] == [(window["from"], window["to"])] * 2
    assert all(j["status"] == "done" for j in jobs)


async def test_a_backfill_window_is_bounded_and_checked(make_api: ApiFactory) -> None:
    api = await make_api(2)
    now = api.stack.clock.now()
    t = to_rfc3339
    cases = [
        ({"from": t(now - DAY), "to": t(now - 2 * DAY)}, "backfill.to", "not after"),
        ({"from": t(now - DAY), "to": t(now - DAY)}, "backfill.to", "not after"),
        ({"from": t(now - DAY), "to": t(now + 3600)}, "backfill.to", "future"),
        ({"from": "2009-01-01T00:00:00Z", "to": t(now)}, "backfill.from", "before Twitch existed"),
        ({"from": "yesterday", "to": t(now)}, "backfill.from", "RFC 3339"),
        ({"from": "2026-09-01T00:00:00", "to": t(now)}, "backfill.from", "time zone"),
        ({"from": 1, "to": t(now)}, "backfill.from", "string"),
        ({"to": t(now)}, "backfill.from", "required"),
        ("last week", "backfill", "object"),
    ]
    for body, field, words in cases:
        response = await api.post("/runs", json={"backfill": body})
        assert response.status_code == 422, body
        assert response.json()["field"] == field and words in response.json()["message"], response.json()
    assert await api.stack.db.first("SELECT count(*) AS n FROM runs") == {"n": 0}


async def test_runs_are_listed_newest_first_in_pages(make_api: ApiFactory) -> None:
    api = await make_api(2)
    for _ in range(3):
        await api.stack.runner.crawl()
    first = (await api.get("/runs", params={"limit": 2})).json()
    assert [r["id"] for r in first["runs"]] == [3, 2] and first["next_before"] == 2
    rest = (await api.get("/runs", params={"limit": 2, "before": first["next_before"]})).json()
    assert [r["id"] for r in rest["runs"]] == [1] and rest["next_before"] is None
    everything = (await api.get("/runs")).json()
    assert [r["id"] for r in everything["runs"]] == [3, 2, 1]
    for params, field in (
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "x"}, "limit"),
        ({"before": -1}, "before"),
        ({"before": "1.5"}, "before"),
    ):
        response = await api.get("/runs", params=params)
        assert (response.status_code, response.json()["field"]) == (422, field)


async def test_an_unknown_run_answers_404(make_api: ApiFactory) -> None:
    api = await make_api(1)
    for path in ("/runs/7", "/runs/abc", "/runs/7/jobs", "/runs/0x1/jobs"):
        response = await api.get(path)
        assert response.status_code == 404 and response.json()["error"] == "not_found", path
    retry = await api.post("/runs/7/retry-failed")
    assert retry.status_code == 404 and retry.json()["message"] == "no run 7"


async def test_a_run_shows_its_failures_their_rate_and_the_errors(make_api: ApiFactory) -> None:
    api = await make_api(4)
    ids = await streamer_ids(api)
    run_id = await api.fail_streamer(ids[2])
    shown = (await api.get(f"/runs/{run_id}")).json()
    assert shown["status"] == "finished"
    assert shown["jobs"] == {"total": 4, "done": 3, "failed": 1, "pending": 0}
    assert shown["failure_rate"] == 0.25
    assert shown["stop_reasons"] == {"complete": 3, "failed": 1}
    failed = (await api.get(f"/runs/{run_id}/jobs", params={"status": "failed"})).json()
    assert [j["streamer_id"] for j in failed["jobs"]] == [ids[2]]
    job = failed["jobs"][0]
    assert job["status"] == "failed" and "500" in job["error"] and job["login"] == "streamer00002"
    done = (await api.get(f"/runs/{run_id}/jobs", params={"status": "done"})).json()["jobs"]
    assert sorted(j["streamer_id"] for j in done) == sorted(ids[:2] + ids[3:])
    bad = await api.get(f"/runs/{run_id}/jobs", params={"status": "broken"})
    assert bad.status_code == 422 and bad.json()["field"] == "status"


async def test_jobs_are_paged_in_id_order(make_api: ApiFactory) -> None:
    api = await make_api(5)
    run_id = (await api.stack.runner.crawl()).run_id
    seen: list[int] = []
    after = 0
    while True:
        page = (await api.get(f"/runs/{run_id}/jobs", params={"limit": 2, "after": after})).json()
        seen += [j["id"] for j in page["jobs"]]
        if page["next_after"] is None:
            break
        after = page["next_after"]
    assert seen == sorted(seen) and len(seen) == 5


async def test_retrying_failed_jobs_reopens_them_and_keeps_the_counters_true(make_api: ApiFactory) -> None:
    api = await make_api(3)
    ids = await streamer_ids(api)
    run_id = await api.fail_streamer(ids[0])
    before = await api.run(run_id)
    assert before["status"] == "finished" and before["jobs_failed"] == 1
    notified = len(api.webhook.posts)
    response = await api.post(f"/runs/{run_id}/retry-failed")
    assert response.status_code == 202
    body = response.json()
    assert body["requeued"] == 1 and body["skipped"] == [] and body["status"] == "running"
    assert body["jobs"] == [{"job_id": body["jobs"][0]["job_id"], "streamer_id": ids[0]}]
    reopened = await api.run(run_id)
    assert (reopened["status"], reopened["finished_at"], reopened["jobs_failed"]) == ("running", None, 0)
    job = await api.stack.db.first("SELECT * FROM jobs WHERE run_id = ? AND streamer_id = ?", run_id, ids[0])
    assert (job["status"], job["error"], job["attempts"], job["finished_at"]) == ("queued", None, 0, None)
    assert api.stack.runner.queue.messages_waiting() == [
        {"v": 1, "type": "crawl", "run_id": run_id, "job_id": job["id"], "streamer_id": ids[0], "seq": 0}
    ]
    await api.stack.runner.drain()
    after = await api.run(run_id)
    assert (after["status"], after["jobs_done"], after["jobs_failed"]) == ("finished", 3, 0)
    assert len(api.webhook.posts) == notified + 1  # finished again, announced again
    again = await api.post(f"/runs/{run_id}/retry-failed")
    assert again.status_code == 409 and "no failed jobs" in again.json()["message"]


async def test_retry_skips_a_streamer_another_run_holds(make_api: ApiFactory) -> None:
    api = await make_api(2)
    ids = await streamer_ids(api)
    run_id = await api.fail_streamer(ids[0])
    await api.post("/runs")  # a new run now holds both streamers, not yet crawled
    response = await api.post(f"/runs/{run_id}/retry-failed")
    assert response.status_code == 409
    assert "another run holds an unfinished job" in response.json()["message"]
    assert (await api.run(run_id))["jobs_failed"] == 1


async def test_retry_waits_for_a_run_that_is_still_enqueuing(make_api: ApiFactory) -> None:
    api = await make_api(2)
    ids = await streamer_ids(api)
    run_id = await api.fail_streamer(ids[0])
    await api.stack.db.run("UPDATE runs SET status = 'enqueuing' WHERE id = ?", run_id)
    response = await api.post(f"/runs/{run_id}/retry-failed")
    assert response.status_code == 409 and "still enqueuing" in response.json()["message"]
    assert (
        await api.stack.db.first(
            "SELECT status FROM jobs WHERE run_id = ? AND streamer_id = ?", run_id, ids[0]
        )
    )["status"] == "failed"
