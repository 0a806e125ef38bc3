"""producer/entry.py and consumer/entry.py on CPython, driven through JS-shaped doubles of the runtime.

Each test runs for both SDK generations (see tests/workers_doubles.py): the built-in one hands out raw
JsProxy bindings, the vendored workers-runtime-sdk converts values itself.
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from consumer.dispatch import CRASH_RETRY_SECONDS
from local.clock import VirtualClock
from local.emulated import EMULATOR_URL
from local.emulator import EmulatorConfig, HelixWorld, create_emulator_app
from producer.core import slot_key
from tests import workers_doubles as wd

ROOT = Path(__file__).resolve().parent.parent
JOBS_QUEUE = "clipcrawler-jobs"
DEAD_LETTER_QUEUE = "clipcrawler-jobs-dlq"
API_TOKEN = "kick-token-for-tests"
HOUR_MS = 3_600_000
PRODUCER_URL = "https://clipcrawler-producer.example.workers.dev"


def wrangler_vars(worker: str) -> dict[str, str]:
    """The [vars] a deployed Worker gets, so the tests run on the shipped settings."""
    return dict(tomllib.loads((ROOT / f"wrangler.{worker}.toml").read_text())["vars"])


@dataclass
class Deployment:
    """Both Workers over one D1 double, one queue double and fetch() into the Helix emulator."""

    sdk: str
    engine: wd.D1Engine
    jobs: wd.QueueRecorder
    fetch: wd.JsFetch
    world: HelixWorld
    config: EmulatorConfig

    def env(self, worker: str, **overrides: Any) -> wd.Env:
        values: dict[str, Any] = {
            **wrangler_vars(worker),
            "DB": wd.d1_binding(self.sdk, self.engine),
            "JOBS": wd.queue_binding(self.sdk, self.jobs),
            "TWITCH_API_URL": EMULATOR_URL + "/helix",
            "TWITCH_AUTH_URL": EMULATOR_URL + "/oauth2",
            "TWITCH_CLIENT_ID": self.config.client_id,
            "TWITCH_CLIENT_SECRET": self.config.client_secret,
            "CLIPCRAWLER_API_TOKEN": API_TOKEN,
        }
        values.update(overrides)
        return wd.env_of(self.sdk, **{k: v for k, v in values.items() if v is not None})

    def producer(self, **overrides: Any) -> Any:
        from producer.entry import Default

        return Default(None, self.env("producer", **overrides))

    def consumer(self, **overrides: Any) -> Any:
        from consumer.entry import Default

        return Default(None, self.env("consumer", **overrides))

    async def tick(self, scheduled_ms: float) -> None:
        # The runtime calls scheduled() with three positional arguments: (controller, env, ctx).
        await self.producer().scheduled(wd.ScheduledController(scheduled_ms), None, None)

    async def deliver(
        self, bodies: list[Any], *, queue: str = JOBS_QUEUE, attempts: int = 1, **overrides: Any
    ) -> list[Any]:
        """One queue() invocation with these bodies; the JS messages come back with their outcomes."""
        messages = [wd.message(self.sdk, body, attempts, f"m{i}") for i, body in enumerate(bodies)]
        await self.consumer(**overrides).queue(wd.batch_of(self.sdk, queue, messages), None, None)
        return messages

    def take_sent(self) -> list[Any]:
        bodies = [m.body for m in self.jobs.sent]
        self.jobs.sends.clear()
        return bodies

    def one(self, sql: str, *params: Any) -> dict[str, Any]:
        rows = self.engine.rows(sql, *params)
        assert len(rows) == 1, rows
        return rows[0]


DeploymentFactory = Callable[..., Any]


@pytest.fixture(params=wd.SDKS)
async def deploy(request: pytest.FixtureRequest) -> AsyncIterator[DeploymentFactory]:
    clients: list[httpx.AsyncClient] = []

    async def make(streamers: int = 3, clips_per_day: tuple[int, int] = (10, 30)) -> Deployment:
        # The Workers read the real clock, so the emulated world stands at the real now.
        world = HelixWorld(7, streamers, clips_per_day, clock=VirtualClock(time.time()))
        config = EmulatorConfig()
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_emulator_app(world, config)), base_url=EMULATOR_URL
        )
        clients.append(client)
        fetch.client = client  # fetch() reaches Twitch, emulated
        engine = wd.D1Engine()
        for s in world.all_streamers():
            engine.execute(
                [
                    (
                        "INSERT INTO streamers (id, login, display_name, added_at) VALUES (?, ?, ?, ?)",
                        [s.id, s.login, s.display_name, "2026-01-01T00:00:00Z"],
                    )
                ]
            )
        return Deployment(str(request.param), engine, wd.QueueRecorder(), fetch, world, config)

    with wd.workers_runtime() as fetch:
        try:
            yield make
        finally:
            for client in clients:
                await client.aclose()


@pytest.fixture
async def d(deploy: DeploymentFactory) -> Deployment:
    made: Deployment = await deploy()
    return made


# --- the cron and the queue, end to end -----------------------------------------------------------


async def test_a_cron_tick_then_the_queue_crawls_every_streamer(d: Deployment) -> None:
    now_ms = time.time() * 1000
    await d.tick(now_ms)
    bodies = d.take_sent()
    assert sorted(b["streamer_id"] for b in bodies) == sorted(s.id for s in d.world.all_streamers())
    messages = await d.deliver(bodies)
    assert [m.outcome.action for m in messages] == ["ack"] * len(bodies)
    run = d.one("SELECT * FROM runs")
    assert (run["status"], run["kind"], run["slot"]) == ("finished", "scheduled", slot_key(now_ms / 1000))
    assert run["jobs_done"] == len(bodies) and run["jobs_failed"] == 0
    stored = {r["id"] for r in d.engine.rows("SELECT id FROM clips")}
    assert stored and run["clips_new"] == len(stored)
    served = {
        c["id"]
        for s in d.world.all_streamers()
        for c in d.world.clips(s.id, time.time() - 26 * 3600, time.time())
    }
    assert stored <= served
    assert [c.url.split("?")[0] for c in d.fetch.calls][:1] == [EMULATOR_URL + "/oauth2/token"]


async def test_the_cron_opens_one_run_per_slot(d: Deployment) -> None:
    slot_ms = (int(time.time()) // 3600) * HOUR_MS
    await d.tick(slot_ms)
    await d.tick(slot_ms + 20_000)  # a late or repeated firing of the same minute's slot
    assert len(d.engine.rows("SELECT id FROM runs")) == 1 and len(d.take_sent()) == 3
    await d.tick(slot_ms + HOUR_MS)
    assert [r["slot"] for r in d.engine.rows("SELECT slot FROM runs ORDER BY id")] == [
        slot_key(slot_ms / 1000),
        slot_key(slot_ms / 1000 + 3600),
    ]


async def test_a_crawl_out_of_budget_continues_through_the_queue_binding(deploy: DeploymentFactory) -> None:
    d: Deployment = await deploy(streamers=1, clips_per_day=(2000, 2000))
    await d.tick(time.time() * 1000)
    body = d.take_sent()[0]
    limits = {"CLIPCRAWLER_EXTERNAL_LIMIT": "3"}  # a token and two pages per invocation
    continuations = 0
    while True:
        [message] = await d.deliver([body], **limits)
        assert message.outcome.action == "ack"
        sent = d.take_sent()
        if not sent:
            break
        [body] = sent
        continuations += 1
        assert body["seq"] == continuations and continuations < 20  # the same job, carried on
    job = d.one("SELECT status, pages FROM jobs")
    assert continuations >= 2 and job["status"] == "done" and job["pages"] > continuations


# --- per-message failures -------------------------------------------------------------------------


async def test_a_malformed_body_is_acked_and_recorded(d: Deployment) -> None:
    messages = await d.deliver([{"v": 99, "type": "crawl"}, "not json"])
    assert [m.outcome.action for m in messages] == ["ack", "ack"]
    letters = d.engine.rows("SELECT source, job_id, body, reason FROM dead_letters ORDER BY id")
    assert [(r["source"], r["job_id"]) for r in letters] == [("consumer", None), ("consumer", None)]
    assert "unsupported message version 99" in letters[0]["reason"] and letters[1]["body"] == "not json"


async def test_a_message_whose_processing_raises_is_retried_alone(d: Deployment) -> None:
    await d.tick(time.time() * 1000)
    first, second, _ = d.take_sent()
    # D1 refuses to record the malformed message: the core answers "retry" (it never raises), so the
    # message comes back to be recorded, and its neighbours are unaffected.
    d.engine.fail_when = lambda sql: sql.startswith("INSERT INTO dead_letters")
    messages = await d.deliver([first, {"v": 99}, second])
    assert [m.outcome.action for m in messages] == ["ack", "retry", "ack"]
    assert (messages[1].outcome.delay_seconds or 0) >= CRASH_RETRY_SECONDS
    assert d.engine.rows("SELECT count(*) AS n FROM jobs WHERE status = 'done'") == [{"n": 2}]


async def test_a_d1_error_mid_batch_rolls_back_and_retries_the_message(d: Deployment) -> None:
    await d.tick(time.time() * 1000)
    body = d.take_sent()[0]
    # The page's upsert fails after the job and run updates before it in the same batch() ran.
    d.engine.fail_when = lambda sql: sql.startswith("INSERT INTO clips")
    [message] = await d.deliver([body])
    assert message.outcome.action == "retry" and (message.outcome.delay_seconds or 0) > 0
    assert d.engine.rows("SELECT id FROM clips") == []
    job = d.one("SELECT status, pages, clips_seen FROM jobs WHERE id = ?", body["job_id"])
    assert job == {"status": "queued", "pages": 0, "clips_seen": 0}  # handed back, nothing half-applied
    assert d.one("SELECT pages, clips_seen FROM runs") == {"pages": 0, "clips_seen": 0}
    d.engine.fail_when = None
    [message] = await d.deliver([body], attempts=2)
    assert message.outcome.action == "ack"
    assert d.one("SELECT status FROM jobs WHERE id = ?", body["job_id"])["status"] == "done"
    assert d.engine.rows("SELECT id FROM clips")


async def test_a_dead_lettered_message_fails_its_job_and_is_recorded(d: Deployment) -> None:
    await d.tick(time.time() * 1000)
    bodies = d.take_sent()
    await d.deliver(bodies[:2])
    [message] = await d.deliver(bodies[2:], queue=DEAD_LETTER_QUEUE)
    assert message.outcome.action == "ack"
    job = d.one("SELECT status, error FROM jobs WHERE id = ?", bodies[2]["job_id"])
    assert job["status"] == "failed" and "dead-lettered" in job["error"]
    letter = d.one("SELECT source, job_id FROM dead_letters")
    assert letter == {"source": "dlq", "job_id": bodies[2]["job_id"]}
    run = d.one("SELECT status, jobs_done, jobs_failed FROM runs")
    assert run == {"status": "finished", "jobs_done": 2, "jobs_failed": 1}
    assert not [c for c in d.fetch.calls if "/helix/clips" in c.url and bodies[2]["streamer_id"] in c.url]


async def test_a_misconfigured_worker_fails_the_invocation_loudly(d: Deployment) -> None:
    with pytest.raises(Exception, match="CLIPCRAWLER_PLAN has value 'gold'"):
        await d.deliver([{"v": 1}], CLIPCRAWLER_PLAN="gold")


# --- fetch(): the producer's app through the ASGI bridge -------------------------------------------


async def kick(d: Deployment, token: str | None, **overrides: Any) -> wd.Response:
    headers = [("authorization", f"Bearer {token}")] if token is not None else []
    request = wd.FetchRequest(wd.JsRequest("POST", PRODUCER_URL + "/runs", headers))
    response: wd.Response = await d.producer(**overrides).fetch(request)
    return response


async def test_post_runs_with_the_bearer_token_starts_a_run(d: Deployment) -> None:
    response = await kick(d, API_TOKEN)
    assert response.status == 202
    payload = response.json()
    run = d.one("SELECT id, kind, status FROM runs")
    assert payload["run_id"] == run["id"] and run["kind"] == "manual" and payload["jobs"] == 3
    assert len(d.take_sent()) == 3


@pytest.mark.parametrize(
    ("token", "overrides", "status"),
    [
        (None, {}, 401),
        ("wrong-token", {}, 401),
        (API_TOKEN, {"CLIPCRAWLER_API_TOKEN": None}, 503),
    ],
)
async def test_post_runs_is_refused_without_the_right_token(
    d: Deployment, token: str | None, overrides: dict[str, Any], status: int
) -> None:
    response = await kick(d, token, **overrides)
    assert response.status == status
    assert d.engine.rows("SELECT id FROM runs") == [] and d.jobs.sent == []
    assert API_TOKEN not in response.body.decode()


async def test_a_missing_binding_answers_503_naming_it(d: Deployment) -> None:
    response = await kick(d, API_TOKEN, DB=None)
    assert response.status == 503 and "no binding named DB" in response.body.decode()


async def test_health_needs_no_bindings(d: Deployment) -> None:
    request = wd.FetchRequest(wd.JsRequest("GET", PRODUCER_URL + "/health"))
    response = await d.producer(DB=None, JOBS=None).fetch(request)
    assert (response.status, response.json()) == (200, {"status": "ok"})
