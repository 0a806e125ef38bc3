"""Structured event lines, the redaction guard, and no secret anywhere across a crawl and the API."""

from __future__ import annotations

import io
import json
import logging

import pytest

from local.emulator import EmulatorConfig
from producer.throttle import WINDOW_SECONDS
from shared.config import Settings
from shared.logs import EventLog, RedactingFilter, Redactor, SecretGuard, configure, event_fields
from tests import api_support
from tests.api_support import TOKEN, WEBHOOK, ApiFactory
from tests.test_dashboard import csrf_of

CLIENT_SECRET = "client-secret-Hk29fLq0Zr"

make_api = api_support.make_api  # the fixture, shared by the API, dashboard and notification tests


def test_an_event_is_one_json_object_with_its_fields(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    EventLog().emit(
        "message_handled", run_id=3, job_id=41, streamer="1234", outcome="done", clips_new=7, detail=None
    )
    [record] = caplog.records
    assert record.name == "clipcrawler.events" and "\n" not in record.getMessage()
    assert event_fields(record.getMessage()) == {
        "event": "message_handled",
        "level": "info",
        "run_id": 3,
        "job_id": 41,
        "streamer": "1234",
        "outcome": "done",
        "clips_new": 7,
    }


def test_secrets_are_masked_by_value_by_shape_and_by_field_name(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    redactor = Redactor.for_settings(Settings(twitch_client_secret=CLIENT_SECRET, webhook_url=WEBHOOK), TOKEN)
    EventLog(redactor).emit(
        "oops",
        detail=f"posting {WEBHOOK} with {CLIENT_SECRET}",
        error="Authorization: Bearer abcdef0123456789 refused",
        client_secret="x" * 10,
        headers={"Authorization": f"Bearer {TOKEN}", "Accept": "json"},
        form="client_id=a&client_secret=zzzzzzzz&grant_type=client_credentials",
        slack="see https://hooks.slack.com/services/T1/B2/c3",
        ids=[TOKEN, "ok"],
    )
    fields = event_fields(caplog.records[0].getMessage())
    assert fields["detail"] == "posting *** with ***"
    assert fields["error"] == "Authorization: Bearer *** refused"
    assert fields["client_secret"] == "***"
    assert fields["headers"] == {"Authorization": "***", "Accept": "json"}
    assert fields["form"] == "client_id=a&client_secret=***&grant_type=client_credentials"
    assert fields["slack"] == "see https://hooks.slack.com/***" and fields["ids"] == ["***", "ok"]
    assert all(s not in caplog.text for s in (CLIENT_SECRET, WEBHOOK, TOKEN, "zzzzzzzz", "abcdef0123456789"))


def test_short_values_are_not_treated_as_secrets() -> None:
    assert Redactor(["abc", ""]).text("abc and more") == "abc and more"


def test_the_handler_filter_masks_records_from_any_module_and_their_tracebacks() -> None:
    stream = io.StringIO()
    handler = configure(Redactor([TOKEN]), stream=stream)
    try:
        logger = logging.getLogger("clipcrawler.somewhere")
        logger.warning("token is %s", TOKEN)
        try:
            raise RuntimeError(f"failed with {TOKEN}")
        except RuntimeError:
            logger.exception("crash")
        EventLog().emit("visible", run_id=1)  # INFO events reach the stream too
    finally:
        logging.getLogger("clipcrawler").removeHandler(handler)
        logging.getLogger("clipcrawler").setLevel(logging.NOTSET)
    output = stream.getvalue()
    assert TOKEN not in output and "token is ***" in output and "failed with ***" in output
    assert '{"event":"visible","level":"info","run_id":1}' in output
    assert isinstance(handler.filters[0], RedactingFilter)


def test_a_guarded_library_logger_is_masked_before_any_handler() -> None:
    guard = SecretGuard()
    guard.add(WEBHOOK)
    record = logging.LogRecord(
        "httpx", logging.INFO, __file__, 1, "HTTP Request: %s %s", ("POST", WEBHOOK), None
    )
    assert guard.filter(record) and record.getMessage() == "HTTP Request: POST ***"


async def test_no_secret_reaches_a_log_line_a_response_or_an_error(
    make_api: ApiFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A whole crawl, every API endpoint and the dashboard, with their error paths: no secret anywhere."""
    caplog.set_level(logging.DEBUG)
    config = EmulatorConfig(client_secret=CLIENT_SECRET)
    api = await make_api(4, config=config, max_retries=1)
    wrong_secret = "wrong-secret-Pq81Xc0M"

    # A crawl with a failing streamer, a failing webhook, then a retry.
    api.webhook.status = 500
    run_id = await api.fail_streamer("10000000")
    api.webhook.fail = True
    await api.post(f"/runs/{run_id}/retry-failed")
    await api.stack.runner.drain()

    # The API, right and wrong.
    for token in (TOKEN, None, "wrong", TOKEN[:-2]):
        for method, path in (
            ("GET", "/runs"),
            ("GET", f"/runs/{run_id}"),
            ("GET", f"/runs/{run_id}/jobs"),
            ("GET", "/streamers"),
            ("POST", "/runs/99/retry-failed"),
            ("DELETE", "/streamers/x"),
        ):
            await api.request(method, path, token=token)
    api.stack.clock.advance(
        WINDOW_SECONDS + 1
    )  # past the block those wrong tokens earned (producer/throttle.py)
    await api.post("/runs", json={"backfill": {"from": "bad", "to": "worse"}})
    await api.post("/runs", content=b"{", headers={"Content-Type": "application/json"})
    await api.post("/runs", content=b"x" * 70_000)
    await api.post("/streamers", json={"logins": ["streamer00001", "ghost_login", "bad login"]})
    await api.post("/streamers", json={"logins": ["streamer00001", "ghost_login"]})
    await api.post("/runs")
    await api.stack.runner.drain()

    # The dashboard: a failed and a good login, pages, a forged form, a good one.
    await api.post("/ui/login", token=None, data={"token": "guess"})
    await api.post("/ui/login", token=None, data={"token": TOKEN})
    overview = await api.get("/", token=None)
    await api.get(f"/ui/runs/{run_id}", token=None, params={"status": "failed"})
    await api.post("/ui/kick", token=None, data={"csrf": "forged"})
    await api.post("/ui/kick", token=None, data={"csrf": csrf_of(overview.text)})
    await api.stack.runner.drain()

    # Twitch refusing the credentials: the consumers fail the jobs with an auth error.
    app_tokens = list(api.stack.emulator._tokens) + [
        r["access_token"] for r in await api.stack.db.all("SELECT access_token FROM app_tokens")
    ]
    api.stack.runner.settings = api.stack.settings.with_(twitch_client_secret=wrong_secret)
    api.stack.emulator.expire_all_tokens()
    await api.stack.db.run("DELETE FROM app_tokens")
    await api.stack.runner.crawl()

    assert app_tokens
    secrets = {
        "client secret": CLIENT_SECRET,
        "wrong client secret": wrong_secret,
        "API token": TOKEN,
        "webhook URL": WEBHOOK,
        **{f"app token {i}": t for i, t in enumerate(app_tokens)},
    }

    logged = [
        r.getMessage() + "\n" + (logging.Formatter().formatException(r.exc_info) if r.exc_info else "")
        for r in caplog.records
    ]
    answered = [f"{r.status_code} {r.headers} {r.text}" for r in api.responses]
    stored = [
        json.dumps(row)
        for row in [
            *await api.stack.db.all("SELECT error, stop_reason FROM jobs"),
            *await api.stack.db.all("SELECT last_error FROM streamers"),
            *await api.stack.db.all("SELECT body, reason FROM dead_letters"),
        ]
    ]
    assert len(logged) > 50 and len(answered) > 30
    assert any("auth" in text and "refused" in text for text in stored), "the auth failure must be recorded"
    for name, secret in secrets.items():
        for where, texts in (("a log line", logged), ("a response", answered), ("a stored error", stored)):
            leaks = [t for t in texts if secret in t]
            assert not leaks, f"the {name} leaked into {where}: {leaks[0][:300]}"
