"""The Worker entries on real bindings: Pyodide in Node, Miniflare's D1 and Queues, the Helix emulator.

tests/workers_harness/harness.mjs plays the story of tests/workers_harness/scenario.py once (about 30 s):
producer/entry.py and consumer/entry.py, unchanged, in Pyodide, against the D1 database and queues that
wrangler.*.toml declare. The same story is then played in local mode (SQLite, the simulated queue) on the
same world, and the two databases must agree. Skipped only where Node.js is missing.
"""

from __future__ import annotations

import asyncio
import json
import re
import tomllib
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from starlette.routing import Route

from consumer.split_trail import WalkState
from local.clock import VirtualClock
from local.emulated import emulator_client, emulator_settings
from local.emulator import EmulatorConfig
from local.queue import QueueBatch
from local.runner import LocalRunner
from local.sqlite_db import SqliteDatabase
from producer.app import create_app
from producer.context import AppContext
from producer.core import slot_key
from shared.config import Settings
from shared.ports import Ports
from shared.timefmt import parse_rfc3339, to_rfc3339
from tests.workers_harness import launch, routes, scenario

ROOT = launch.ROOT

Rows = list[dict[str, Any]]


def wrangler_config(worker: str) -> dict[str, Any]:
    return tomllib.loads((ROOT / f"wrangler.{worker}.toml").read_text())


JOBS, DEAD_LETTERS = wrangler_config("consumer")["queues"]["consumers"]


# --- the harness run ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What the harness saw: HTTP answers, every delivery and its outcome, the tables read back."""
    try:
        run = launch.run(tmp_path_factory.mktemp("workers-harness"))
    except launch.Unavailable as exc:
        pytest.skip(str(exc))
    except launch.NotReady as exc:
        pytest.fail(str(exc))
    if run.failed:
        pytest.fail(
            f"the harness failed (exit {run.returncode}):\n{run.result.get('failure', '')}\n"
            f"--- stdout/stderr ---\n{run.output}\n--- log ---\n{run.log_tail}"
        )
    return run.result


def deliveries(result: dict[str, Any], *, queue: str, streamer_id: str) -> list[dict[str, Any]]:
    return [
        d
        for d in result["deliveries"]
        if d["queue"] == queue
        and isinstance(d["body"], dict)  # hostile_messages has one that is text
        and d["body"].get("streamer_id") == streamer_id
    ]


def job(result: dict[str, Any], run_id: int, streamer_id: str) -> dict[str, Any]:
    [row] = [j for j in result["tables"]["jobs"] if j["run_id"] == run_id and j["streamer_id"] == streamer_id]
    return row


# --- the same story in local mode --------------------------------------------------------------------


class CrashingRunner(LocalRunner):
    """LocalRunner whose consumer invocation dies, before the core runs, on the scenario's poisoned job."""

    def __init__(self, *args: Any, poisoned: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.poisoned = poisoned

    async def _consume(self, batch: QueueBatch) -> None:
        if any(scenario.is_poisoned(m.body, self.poisoned) for m in batch.messages):
            raise RuntimeError("simulated crash of the consumer invocation")
        await super()._consume(batch)


async def play_routes(api: httpx.AsyncClient, calls: list[dict[str, Any]], token: str) -> dict[str, Any]:
    """routes.py's calls in order, as the harness makes them (harness.mjs, playRoutes)."""
    answers: dict[str, Any] = {}
    session = ended = None
    csrf = ""
    for c in calls:
        headers: dict[str, str] = {}
        if c["auth"] == "bearer":
            headers["authorization"] = f"Bearer {token}"
        if c["auth"] == "wrong":
            headers["authorization"] = "Bearer wrong-token-of-the-right-length"
        if c["auth"] == "cookie" and session:
            headers["cookie"] = session
        if c["auth"] == "old_cookie" and ended:
            headers["cookie"] = ended
        if "client" in c:
            headers["cf-connecting-ip"] = c["client"]
        content: bytes | None = None
        if "json" in c:
            headers["content-type"], content = "application/json", json.dumps(c["json"]).encode()
        elif "raw" in c:
            headers["content-type"], content = c["content_type"], c["raw"].encode()
        elif "form" in c:
            headers["content-type"] = "application/x-www-form-urlencoded"
            filled = {k: v.replace("{csrf}", csrf).replace("{token}", token) for k, v in c["form"].items()}
            content = urlencode(filled).encode()
        api.cookies.clear()
        response = await api.request(c["method"], c["path"], headers=headers, content=content)
        found = re.search(r'name="csrf" value="([0-9a-f]+)"', response.text)
        if found:
            csrf = found.group(1)
        if c.get("save_cookie") and "set-cookie" in response.headers:
            session = response.headers["set-cookie"].split(";")[0]
        if c.get("end_session"):
            ended, session = session, None
        answers[c["name"]] = {
            "status": response.status_code,
            "content_type": response.headers.get("content-type"),
            "location": response.headers.get("location"),
            "retry_after": response.headers.get("retry-after"),
            "body": response.text,
        }
    return answers


async def play_locally() -> dict[str, Any]:
    """The scenario on SQLite and the simulated queue, with the Workers' shipped [vars]."""
    world = scenario.world()
    config = EmulatorConfig()
    described = scenario.describe(world)
    shipped = {**wrangler_config("producer")["vars"], **wrangler_config("consumer")["vars"]}
    settings = emulator_settings(Settings.from_env(shipped), config)
    clock = VirtualClock(scenario.START)
    db = await SqliteDatabase.open()
    try:
        async with emulator_client(scenario.emulator_app(world, config)) as http:
            runner = CrashingRunner(db, http, settings, clock, concurrency=1, poisoned=described["poisoned"])
            # As on the Worker: the caller's address is CF-Connecting-IP (routes.py sends it for the flood).
            ports = Ports(db=db, queue=runner.queue, clock=clock, http=http)
            context = AppContext(
                ports=ports, settings=settings, api_token=scenario.API_TOKEN, behind_cloudflare=True
            )

            async def context_factory(request: object) -> AppContext:
                return context

            bearer = {"authorization": f"Bearer {scenario.API_TOKEN}"}
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=create_app(context_factory)),
                base_url="https://producer.local",
            ) as api:
                added = await api.post("/streamers", json={"logins": described["logins"]}, headers=bearer)
                assert added.status_code == 200, added.text
                await runner.crawl(scheduled_time=scenario.SLOT)
                marked = await db.all(described["mark"]["sql"], described["mark"]["at"])
                kicked = await api.post("/runs", json={}, headers=bearer)
                assert kicked.status_code == 202, kicked.text
                await runner.drain()
                for body in described["hostile"]:
                    await runner.queue.send(body)
                await runner.drain()
                assert clock.now() < scenario.SAME_WINDOWS_UNTIL, (
                    f"the local run's clock ended at {clock.now()}, past {scenario.SAME_WINDOWS_UNTIL}: its "
                    "crawl windows can no longer match the harness's (see scenario.py)"
                )
                backfill = await api.post("/runs", json=described["backfill"], headers=bearer)
                assert backfill.status_code == 202, backfill.text
                await runner.drain()
                tables = {
                    table: await db.all(f"SELECT * FROM {table} ORDER BY id") for table in scenario.TABLES
                }
                answers = await play_routes(api, routes.calls(world), scenario.API_TOKEN)
        return {"tables": tables, "routes": answers, "marked": marked}
    finally:
        await db.close()


@pytest.fixture(scope="module")
def local_mode() -> dict[str, Any]:
    return asyncio.run(play_locally())


@pytest.fixture(scope="module")
def local(local_mode: dict[str, Any]) -> dict[str, Rows]:
    tables: dict[str, Rows] = local_mode["tables"]
    return tables


def comparable(rows: Sequence[dict[str, Any]], ignored: frozenset[str]) -> Rows:
    return [{k: v for k, v in row.items() if k not in ignored} for row in rows]


# --- what the harness must show ------------------------------------------------------------------------


def test_the_entries_ran_in_pyodide_with_the_vendored_sdk(harness: dict[str, Any]) -> None:
    for worker, runtime in harness["runtimes"].items():
        assert runtime["platform"] == "emscripten", worker
        assert runtime["python"].startswith("3.13."), worker  # compatibility date >= 2025-09-29
        assert runtime["entry_module"] == "/session/metadata/entry.py", worker
        assert runtime["workers_module"].endswith("site-packages/workers/__init__.py"), worker
        assert runtime["db_binding"] == "_BindingWrapper", worker  # the SDK wraps D1 as in production
        assert runtime["threads_inline"], worker  # the SDK's own anyio patch is in place


def test_the_producer_counts_failed_credentials_in_the_rate_limiting_binding(harness: dict[str, Any]) -> None:
    assert (
        harness["runtimes"]["producer"]["auth_limiter"] == "_BindingWrapper"
    )  # as the SDK wraps a Ratelimit
    assert "auth_limiter_failed" not in harness["log"]


def test_wrangler_migrated_the_database(harness: dict[str, Any]) -> None:
    for migration in sorted((ROOT / "migrations").glob("*.sql")):
        assert migration.name in harness["migrations"]


def test_the_http_api_answers_through_the_asgi_bridge(harness: dict[str, Any]) -> None:
    answers = harness["responses"]
    assert answers["kick_without_token"]["status"] == 401
    added = answers["add_streamers"]
    assert added["status"] == 200 and len(added["json"]["added"]) == scenario.STREAMERS
    assert added["json"]["unknown"] == []
    kick = answers["kick"]
    assert (
        kick["status"] == 202 and kick["json"]["run_id"] == 2 and kick["json"]["jobs"] == scenario.STREAMERS
    )
    run = answers["kicked_run"]
    assert run["status"] == 200 and run["json"]["status"] == "finished" and run["json"]["kind"] == "manual"
    assert run["json"]["jobs"]["done"] == scenario.STREAMERS


def test_the_dashboard_logs_in_and_renders_a_run_through_the_asgi_bridge(harness: dict[str, Any]) -> None:
    login, page = harness["responses"]["login"], harness["responses"]["run_page"]
    assert (login["status"], login["location"]) == (303, "/ui/runs/1")
    # Secure: the bridge kept the request's https scheme.
    assert {"HttpOnly", "SameSite=Strict", "Secure", "Path=/"} <= set(login["cookie_attributes"])
    assert page["status"] == 200 and page["content_type"].startswith("text/html")
    assert "dead-lettered: the consumer failed on every delivery" in page["html"]


def test_clips_and_a_streamer_page_answer_on_d1_through_the_asgi_bridge(harness: dict[str, Any]) -> None:
    clips, page = harness["responses"]["clips"], harness["responses"]["streamer_page"]
    assert clips["status"] == 200, clips
    assert page["status"] == 200, page["html"][-3000:]
    assert 0 < len(clips["json"]["clips"]) <= 5
    views = [c["view_count"] for c in clips["json"]["clips"]]
    assert views == sorted(views, reverse=True) and all("deleted_at" in c for c in clips["json"]["clips"])
    assert (
        page["status"] == 200 and page["streamer_id"] in page["html"] and "Most viewed clips" in page["html"]
    )


def test_the_cron_opened_the_slots_run(harness: dict[str, Any]) -> None:
    assert harness["cron"]["outcome"] == "ok"
    scheduled, manual, backfill = harness["tables"]["runs"]
    assert scheduled["kind"] == "scheduled" and scheduled["slot"] == slot_key(scenario.SLOT)
    assert manual["kind"] == "manual" and manual["slot"] is None
    assert [r["jobs_total"] for r in (scheduled, manual, backfill)] == [scenario.STREAMERS] * 2 + [1]


def test_a_failed_crawl_is_retried_with_a_delay_then_acked(harness: dict[str, Any]) -> None:
    streamer = harness_streamer(scenario.RETRIED_STREAMER)
    first, second = deliveries(harness, queue=JOBS["queue"], streamer_id=streamer)[:2]
    assert (first["attempts"], first["outcome"]["action"]) == (1, "retry")
    # The retry policy's first backoff: retry_delay_seconds, plus up to half again of jitter.
    assert JOBS["retry_delay"] <= first["outcome"]["delaySeconds"] <= JOBS["retry_delay"] * 1.5
    assert (second["attempts"], second["outcome"]["action"]) == (2, "ack")
    assert second["id"] == first["id"]  # the same message, redelivered by the queue
    crawled = job(harness, 1, streamer)
    assert (crawled["status"], crawled["attempts"], crawled["error"]) == ("done", 2, None)


def test_a_throttled_crawl_goes_on_in_a_new_message_the_consumer_sends_with_a_delay(
    harness: dict[str, Any],
) -> None:
    streamer = harness_streamer(scenario.THROTTLED_STREAMER)
    first, second = [
        d for d in deliveries(harness, queue=JOBS["queue"], streamer_id=streamer) if d["body"]["run_id"] == 1
    ]
    assert first["outcome"]["action"] == second["outcome"]["action"] == "ack"
    assert second["id"] != first["id"] and second["attempts"] == 1  # a new message, not a retry
    [sent] = [
        s for s in harness["sends"] if s["worker"] == "consumer" and s["body"].get("streamer_id") == streamer
    ]
    assert sent["queue"] == JOBS["queue"] and sent["body"] == second["body"]
    assert sent["body"]["seq"] == first["body"]["seq"] + 1 and sent["delaySeconds"] >= 1
    crawled = job(harness, 1, streamer)
    assert (crawled["status"], crawled["attempts"], crawled["queue_sends"]) == ("done", 2, 1)


def test_a_message_whose_consumer_always_dies_lands_in_the_dead_letter_queue(harness: dict[str, Any]) -> None:
    streamer = harness_streamer(scenario.POISONED_STREAMER)
    tries = deliveries(harness, queue=JOBS["queue"], streamer_id=streamer)
    in_run = [d for d in tries if d["body"]["run_id"] == scenario.POISONED_RUN]
    # max_retries from wrangler.consumer.toml: the first delivery and that many retries, then the DLQ.
    assert [d["attempts"] for d in in_run] == list(range(1, JOBS["max_retries"] + 2))
    assert {d["outcome"]["action"] for d in in_run} == {"crash"}
    [dead] = deliveries(harness, queue=JOBS["dead_letter_queue"], streamer_id=streamer)
    assert dead["queue"] == DEAD_LETTERS["queue"] and dead["outcome"]["action"] == "ack"
    failed = job(harness, scenario.POISONED_RUN, streamer)
    assert (failed["status"], failed["attempts"]) == ("failed", 0)
    [letter] = [d for d in harness["tables"]["dead_letters"] if d["source"] == "dlq"]
    assert letter["job_id"] == failed["id"]
    assert json.loads(letter["body"]) == dead["body"]
    run = harness["tables"]["runs"][0]
    assert (run["status"], run["jobs_done"], run["jobs_failed"]) == ("finished", scenario.STREAMERS - 1, 1)


def test_hostile_messages_are_acked_each_with_a_dead_letter_and_change_no_job(
    harness: dict[str, Any],
) -> None:
    """Issue 17: a message naming another run's job, and malformed bodies, through the consumer entry."""
    hostile = scenario.hostile_messages(scenario.world())
    delivered = [d for d in harness["deliveries"] if d["queue"] == JOBS["queue"] and d["body"] in hostile]
    assert [d["body"] for d in delivered] == hostile  # each delivered once...
    assert {d["outcome"]["action"] for d in delivered} == {"ack"}  # ...and acked, not re-sent as busy
    letters = [d for d in harness["tables"]["dead_letters"] if d["source"] == "consumer"]
    assert len(letters) == len(hostile)
    named_job = hostile[0]["job_id"]
    owner = next(j for j in harness["tables"]["jobs"] if j["id"] == named_job)
    assert owner["run_id"] == 2 and owner["status"] == "done"  # the job the stray message named is untouched
    mismatched, version, deep, text = (letter["reason"] for letter in letters)
    assert f"message names job {named_job} of run 1" in mismatched and "belongs to run 2" in mismatched
    assert "unsupported message version True" in version
    assert "nests deeper than 8 levels" in deep
    assert "not JSON" in text
    assert json.loads(letters[0]["body"]) == hostile[0]


def test_a_clip_marked_deleted_that_the_kick_read_again_is_unmarked_on_d1(
    harness: dict[str, Any], local_mode: dict[str, Any]
) -> None:
    [marked] = harness["marked"]
    assert local_mode["marked"] == [marked]  # the same clip in both runs
    [clip] = [c for c in harness["tables"]["clips"] if c["id"] == marked["id"]]
    assert clip["deleted_at"] is None and clip["last_seen_at"] > to_rfc3339(scenario.START)
    assert all(c["deleted_at"] is None for c in harness["tables"]["clips"])


def test_a_clip_without_a_vod_offset_is_stored_and_read_back_as_null(harness: dict[str, Any]) -> None:
    nulls = harness["null_vod_offsets"]
    assert nulls and {n["stored"] for n in nulls} == {"null"}
    by_id = {c["id"]: c for c in harness["tables"]["clips"]}
    assert all(by_id[n["id"]]["vod_offset"] is None for n in nulls)
    assert all(
        isinstance(c["vod_offset"], int) for i, c in by_id.items() if i not in {n["id"] for n in nulls}
    )


def test_every_invocation_ran_and_nothing_was_left_in_the_queues(harness: dict[str, Any]) -> None:
    assert harness["errors"] == []
    assert all(i["ok"] for i in harness["invocations"])
    assert harness["aftermath"] == []  # nothing delivered once both runs had finished
    assert all("outcome" in d for d in harness["deliveries"])


def test_every_invocation_is_timed_and_named(harness: dict[str, Any]) -> None:
    # What `python -m bench.pyodide_cpu` reads (the figures themselves are a benchmark's, not a test's).
    invocations = harness["invocations"]
    handlers = {i["handler"] for i in invocations}
    assert handlers == {"fetch", "queue", "scheduled"}
    for i in invocations:
        assert i["cpu_ms"] >= 0 and i["wall_ms"] >= 0 and isinstance(i["overlapped"], bool)
    kinds = {i["what"] for i in invocations if i["handler"] == "queue"}
    assert f"{JOBS['queue']}: crawl" in kinds
    assert any(i["what"] == "POST /runs" for i in invocations)
    assert any(not i["overlapped"] for i in invocations if i["what"] == f"{JOBS['queue']}: crawl")


@pytest.mark.parametrize("table", sorted(scenario.TABLES))
def test_the_tables_match_a_local_run_of_the_same_story(
    harness: dict[str, Any], local: dict[str, Rows], table: str
) -> None:
    assert harness["wall_clock_end"] < scenario.SAME_WINDOWS_UNTIL, "the harness ran too long to compare"
    ignored = scenario.TABLES[table]
    on_workers, on_local = comparable(harness["tables"][table], ignored), comparable(local[table], ignored)
    assert on_workers, f"{table} is empty"
    assert len(on_workers) == len(on_local), (
        f"{table}: {len(on_workers)} rows on Workers, {len(on_local)} locally"
    )
    differing = [(w, here) for w, here in zip(on_workers, on_local, strict=True) if w != here]
    assert not differing, f"{table}: {len(differing)} rows differ, the first: {differing[0]}"


def harness_streamer(index: int) -> str:
    return scenario.world().all_streamers()[index].id


# --- every route on the real bindings ------------------------------------------------------------------

ROUTE_NAMES = [c["name"] for c in routes.calls(scenario.world())]


def test_every_route_of_the_app_is_called() -> None:
    app = create_app(play_locally)  # type: ignore[arg-type]  # only its routes are read
    calls = {(c["method"], c["path"].split("?")[0]) for c in routes.calls(scenario.world())}
    for route in app.routes:
        assert isinstance(route, Route)
        pattern = re.compile("^" + re.sub(r"\\{[a-z_]+\\}", "[^/]+", re.escape(route.path)) + "$")
        for method in sorted(route.methods or ()):
            # Starlette answers HEAD wherever there is a GET: one HEAD call (runs_head) stands for them all.
            wanted = "GET" if method == "HEAD" else method
            assert any(m == wanted and pattern.match(p) for m, p in calls), (
                f"no call of {method} {route.path}"
            )


@pytest.mark.parametrize("name", ROUTE_NAMES)
def test_the_route_answers_on_workers_as_in_local_mode(
    harness: dict[str, Any], local_mode: dict[str, Any], name: str
) -> None:
    on_workers, on_local = harness["routes"][name], local_mode["routes"][name]
    assert on_workers["status"] != 500 and on_local["status"] != 500, (name, on_workers["body"][:500])
    assert routes.comparable(on_workers) == routes.comparable(on_local)


def test_the_listings_answer_200_and_ids_beyond_what_d1_binds_404_or_422(harness: dict[str, Any]) -> None:
    answers = harness["routes"]
    for name in ("runs", "overview", "ui_runs", "ui_run_1", "ui_streamers", "runs_before_largest"):
        assert answers[name]["status"] == 200, (name, answers[name]["body"][:300])
    for name in (
        "run_big",
        "run_2_62",
        "jobs_big",
        "retry_big",
        "ui_run_big",
        "runs_before_big",
        "runs_before_2_62",
        "jobs_1_after_big",
        "ui_runs_before_big",
        "ui_run_1_after_big",
    ):
        assert answers[name]["status"] in (404, 422), (name, answers[name]["status"])
    for name in ("ui_runs_before_big", "ui_run_big", "ui_unknown"):
        assert answers[name]["content_type"].startswith("text/html"), name


def test_on_workers_a_logout_ends_the_session_and_a_flood_of_wrong_tokens_is_blocked(
    harness: dict[str, Any],
) -> None:
    answers = harness["routes"]
    assert answers["logout"]["status"] == 303
    assert answers["overview_after_logout"]["status"] == 303
    assert answers["overview_after_logout"]["location"].startswith("/ui/login")
    statuses = [answers[f"wrong_token_{i:02d}"]["status"] for i in range(11)]
    assert statuses == [401] * 10 + [429]
    for name in ("right_token_while_blocked", "login_while_blocked"):
        assert answers[name]["status"] == 429 and int(answers[name]["retry_after"]) >= 1, name


def test_a_history_backfill_walks_on_d1_across_continuations_with_its_walk_state(
    harness: dict[str, Any],
) -> None:
    answer = harness["responses"]["backfill"]
    assert answer["status"] == 202 and answer["json"]["jobs"] == 1, answer
    (job,) = [j for j in harness["tables"]["jobs"] if j["run_id"] == answer["json"]["run_id"]]
    assert job["status"] == "done" and job["invocations"] > 1, job  # the Free plan's budget continued it
    assert job["crawl_from"] == scenario.backfill_request(scenario.world())["backfill"]["from"]
    state = WalkState.from_json(job["walk_state"])
    assert json.loads(job["walk_state"]) == json.loads(state.to_json())  # written whole, read back whole
    world = scenario.world()
    (streamer,) = scenario.backfill_request(world)["streamers"]
    start, end = (parse_rfc3339(job[k]) for k in ("crawl_from", "crawl_to"))
    truth = {c["id"] for c in world.clips(streamer, start, end)}
    stored = {
        c["id"]
        for c in harness["tables"]["clips"]
        if c["broadcaster_id"] == streamer and start <= parse_rfc3339(c["created_at"]) < end
    }
    assert len(truth) >= 2_000 and stored == truth  # every clip of the 200 days, through Pyodide and D1
