"""Run completion: one Slack-compatible post per finished run, even under duplicate delivery; never fatal."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque

import httpx
import pytest

from consumer.core import Verdict, handle_message
from local.queue import Envelope, Outcome
from shared.budget import Budget
from shared.config import Settings
from shared.logs import EventLog, Redactor
from shared.metered import MeteredDatabase
from shared.notify import RunReport, announce_run_finished, format_duration, run_link, slack_payload
from tests import api_support
from tests.api_support import PUBLIC_URL, WEBHOOK, ApiFactory

make_api = api_support.make_api  # the fixture, shared by the API, dashboard and notification tests


def events(caplog: pytest.LogCaptureFixture, name: str) -> list[dict]:
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "clipcrawler.events"]
    return [line for line in lines if line["event"] == name]


def test_the_payload_is_slack_compatible_and_says_what_the_run_did() -> None:
    report = RunReport(
        run_id=42,
        kind="scheduled",
        streamers=200,
        jobs_done=198,
        jobs_failed=2,
        clips_new=37,
        clips_updated=120,
        duration_s=92.4,
    )
    payload = slack_payload(report, run_link(PUBLIC_URL + "/", 42))
    assert payload["text"] == (
        f"clipcrawler <{PUBLIC_URL}/ui/runs/42|run 42> finished with failures: "
        "200 streamers, 37 new clips, 120 updated, 2 failed, in 1 min 32 s"
    )
    assert [b["type"] for b in payload["blocks"]] == ["section", "section"]
    fields = [f["text"] for f in payload["blocks"][1]["fields"]]
    assert fields == [
        "*Streamers*\n200",
        "*Failed*\n2",
        "*New clips*\n37",
        "*Updated clips*\n120",
        "*Duration*\n1 min 32 s",
    ]
    plain = slack_payload(RunReport(run_id=1, streamers=1), None)
    assert plain["text"].startswith("clipcrawler run 1 finished: ")
    assert (format_duration(None), format_duration(4), format_duration(3725)) == (
        "an unknown time",
        "4 s",
        "1 h 02 min",
    )


async def test_a_crawl_posts_one_notification_with_the_runs_facts(
    make_api: ApiFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    api = await make_api(3)
    api.stack.clock.advance(0)
    run_id = (await api.stack.runner.crawl()).run_id
    row = await api.run(run_id)
    assert len(api.webhook.posts) == 1
    text = api.webhook.posts[0]["text"]
    assert f"<{PUBLIC_URL}/ui/runs/{run_id}|run {run_id}>" in text
    assert f"3 streamers, {row['clips_new']} new clips, {row['clips_updated']} updated, 0 failed" in text
    [finished] = events(caplog, "run_finished")
    assert finished["run_id"] == run_id and finished["clips_new"] == row["clips_new"]
    assert events(caplog, "notification_sent") == [
        {"event": "notification_sent", "level": "info", "run_id": run_id, "status": 200}
    ]


async def test_the_last_job_delivered_twice_finishes_and_notifies_once(make_api: ApiFactory) -> None:
    api = await make_api(2, max_retries=3)

    class DuplicateEveryDelivery:
        """The queue redelivers every message once after the consumer acked it (at-least-once)."""

        def __init__(self) -> None:
            self.redelivered: set[str] = set()

        def pick(self, ready: deque[Envelope], limit: int) -> list[Envelope]:
            return [ready.popleft() for _ in range(min(limit, len(ready)))]

        def settle(self, envelope: Envelope, outcome: Outcome) -> Outcome:
            if outcome.ack and envelope.id not in self.redelivered:
                self.redelivered.add(envelope.id)
                return Outcome(ack=False, delay_seconds=0)
            return outcome

    faults = DuplicateEveryDelivery()
    api.stack.runner.queue.faults = faults
    verdicts: list[Verdict | None] = []
    started = await api.stack.runner.crawl(on_verdict=verdicts.append)
    assert len(faults.redelivered) >= 2  # both jobs, the last one included, were delivered twice
    handled = [v for v in verdicts if v is not None]
    assert len(handled) == len(verdicts) == 4  # no invocation crashed
    outcomes = sorted(v.outcome for v in handled)
    assert outcomes.count("duplicate") == 2 and outcomes.count("done") == 2
    assert [v.run_finished for v in handled].count(True) == 1
    row = await api.run(started.run_id)
    assert (row["status"], row["jobs_done"], row["jobs_failed"]) == ("finished", 2, 0)
    assert len(api.webhook.posts) == 1


async def test_concurrent_duplicates_of_the_last_job_finish_and_notify_once(make_api: ApiFactory) -> None:
    api = await make_api(1)
    started = await api.stack.runner.tick()
    [body] = api.stack.runner.queue.messages_waiting()
    ports, settings = api.stack.runner.consumer_ports, api.stack.settings
    first, second = await asyncio.gather(
        handle_message(body, 1, ports, settings), handle_message(body, 1, ports, settings)
    )
    late = await handle_message(body, 2, ports, settings)  # a redelivery after both settled
    verdicts = [first, second, late]
    assert sorted(v.outcome for v in verdicts) == ["busy", "done", "duplicate"]
    assert [v.run_finished for v in verdicts].count(True) == 1
    row = await api.run(started.run_id)
    assert row["status"] == "finished" and row["jobs_done"] == 1
    assert len(api.webhook.posts) == 1


async def test_a_failing_webhook_never_fails_the_run(
    make_api: ApiFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    for fault in ("status", "connection"):
        api = await make_api(2)
        api.webhook.status, api.webhook.fail = (500, False) if fault == "status" else (200, True)
        verdicts: list[Verdict | None] = []
        started = await api.stack.runner.crawl(on_verdict=verdicts.append)
        assert all(v is not None and v.ack for v in verdicts)
        assert (await api.run(started.run_id))["status"] == "finished"
    failed = events(caplog, "notification_failed")
    assert [f.get("status") for f in failed] == [500, None]
    assert failed[1]["error"] == "ConnectError"
    assert WEBHOOK not in caplog.text and "hook-secret" not in caplog.text


async def test_no_webhook_configured_means_no_post(
    make_api: ApiFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    api = await make_api(1, webhook_url="")
    await api.stack.runner.crawl()
    assert api.webhook.posts == [] and len(events(caplog, "run_finished")) == 1


async def test_an_empty_run_is_finished_and_announced_by_the_producer(make_api: ApiFactory) -> None:
    api = await make_api(1)
    await api.stack.db.run("UPDATE streamers SET active = 0")
    started = await api.stack.runner.tick()
    assert started.finished and started.jobs == 0
    assert len(api.webhook.posts) == 1 and "0 streamers" in api.webhook.posts[0]["text"]


async def test_the_post_is_charged_as_one_external_subrequest(make_api: ApiFactory) -> None:
    api = await make_api(1)
    await api.stack.runner.crawl()
    run_id = 1
    settings = api.stack.settings
    budget = Budget(*settings.limits)
    db = MeteredDatabase(api.stack.db, budget)
    sent = await announce_run_finished(
        run_id,
        db=db,
        http=api.stack.http,
        settings=settings,
        events=EventLog(Redactor.for_settings(settings)),
    )
    assert sent and budget.used == {"external": 1, "internal": 1}  # the run read, and the post
    broke = Budget(*settings.limits)
    broke.used["external"] = broke.external_limit
    sent = await announce_run_finished(
        run_id,
        db=MeteredDatabase(api.stack.db, broke),
        http=api.stack.http,
        settings=settings,
        events=EventLog(),
    )
    assert not sent and broke.used["external"] == broke.external_limit  # refused, not overspent
    assert len(api.webhook.posts) == 2


async def test_without_an_http_client_the_run_still_finishes(
    make_api: ApiFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    api = await make_api(1)
    settings = api.stack.settings
    db = MeteredDatabase(api.stack.db, Budget(*settings.limits))
    sent = await announce_run_finished(5, db=db, http=None, settings=settings, events=EventLog())
    assert sent is False
    assert events(caplog, "notification_skipped")[0]["reason"] == "no HTTP client"


def test_the_webhook_url_is_a_secret_setting() -> None:
    settings = Settings(webhook_url=WEBHOOK)
    assert WEBHOOK not in repr(settings) and "webhook_url='***'" in repr(settings)
    with pytest.raises(Exception) as raised:
        Settings.from_env({"CLIPCRAWLER_WEBHOOK_URL": "hooks.slack.com/services/x"})
    assert "CLIPCRAWLER_WEBHOOK_URL" in str(raised.value) and "hooks.slack.com" not in str(raised.value)
    assert (
        Settings.from_env({"CLIPCRAWLER_PUBLIC_URL": "https://c.example"}).public_url == "https://c.example"
    )


def test_an_httpx_error_text_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    from shared.notify import _describe

    request = httpx.Request("POST", WEBHOOK)
    assert _describe(httpx.ConnectError(f"cannot reach {WEBHOOK}", request=request)) == "ConnectError"
