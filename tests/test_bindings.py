from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared import bindings
from shared.bindings import (
    BindingError,
    D1Database,
    DeliveredMessage,
    JsFetchTransport,
    QueueBinding,
    worker_env,
)
from shared.budget import Budget
from shared.config import Settings
from shared.errors import ConfigError, DatabaseError, QueueError
from shared.helix import HelixClient
from shared.ports import OutgoingMessage, Statement
from tests import workers_doubles as wd

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def runtime() -> Iterator[wd.JsFetch]:
    with wd.workers_runtime() as fetch:
        yield fetch


@pytest.fixture(params=wd.SDKS)
def sdk(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def engine() -> wd.D1Engine:
    engine = wd.D1Engine()
    engine.execute(
        [
            (
                "INSERT INTO streamers (id, login, added_at) VALUES (?, ?, ?)",
                ["1", "one", "2026-01-01T00:00:00Z"],
            )
        ]
    )
    return engine


# --- D1 ---------------------------------------------------------------------------------------------


async def test_none_is_bound_as_sql_null_not_undefined(sdk: str, engine: wd.D1Engine) -> None:
    db = D1Database(wd.d1_binding(sdk, engine))
    await db.run("UPDATE streamers SET last_error = ? WHERE id = ?", None, "1")
    assert engine.rows("SELECT last_error IS NULL AS is_null FROM streamers")[0]["is_null"] == 1


async def test_the_raw_binding_refuses_a_none_passed_unconverted(engine: wd.D1Engine) -> None:
    # The reason the adapter converts: pyodide hands a bare None to JS as undefined, which D1 rejects.
    statement = wd.RawD1Database(engine).prepare("SELECT ? AS x").bind(None)
    with pytest.raises(wd.JsException, match="undefined"):
        await statement.all()


async def test_null_columns_come_back_as_none_in_plain_dicts(sdk: str, engine: wd.D1Engine) -> None:
    db = D1Database(wd.d1_binding(sdk, engine))
    rows = await db.all("SELECT id, crawled_through, active FROM streamers")
    assert rows == [{"id": "1", "crawled_through": None, "active": 1}]
    assert type(rows[0]) is dict
    row = await db.first("SELECT last_error FROM streamers WHERE id = ?", "1")
    assert row == {"last_error": None} and type(row) is dict


async def test_first_answers_none_when_there_is_no_row(sdk: str, engine: wd.D1Engine) -> None:
    db = D1Database(wd.d1_binding(sdk, engine))
    assert await db.first("SELECT * FROM streamers WHERE id = ?", "missing") is None


async def test_run_maps_d1_meta(sdk: str, engine: wd.D1Engine) -> None:
    db = D1Database(wd.d1_binding(sdk, engine))
    result = await db.run(
        "INSERT INTO dead_letters (received_at, source, body, reason) VALUES (?, ?, ?, ?)",
        "2026-01-01T00:00:00Z",
        "consumer",
        "{}",
        "test",
    )
    assert (result.changes, result.last_row_id, result.rows_written) == (1, 1, 1)
    returned = await db.run("UPDATE streamers SET active = ? WHERE id = ? RETURNING id", False, "1")
    assert returned.rows == [{"id": "1"}] and returned.changes == 1
    assert engine.rows("SELECT active FROM streamers")[0]["active"] == 0  # False binds as 0


async def test_batch_is_one_round_trip_with_one_result_per_statement(sdk: str, engine: wd.D1Engine) -> None:
    db = D1Database(wd.d1_binding(sdk, engine))
    results = await db.batch(
        [
            Statement("UPDATE streamers SET failure_streak = failure_streak + 1 WHERE id = ?", ("1",)),
            Statement("SELECT failure_streak FROM streamers WHERE id = ?", ("1",)),
        ]
    )
    assert engine.calls == ["batch"]
    assert results[0].changes == 1 and results[1].rows == [{"failure_streak": 1}]
    assert await db.batch([]) == [] and engine.calls == ["batch"]


async def test_a_failing_statement_rolls_back_the_batch_and_names_the_call_not_the_values(
    sdk: str, engine: wd.D1Engine
) -> None:
    db = D1Database(wd.d1_binding(sdk, engine))
    engine.fail_when = lambda sql: "app_tokens" in sql
    with pytest.raises(BindingError, match=r"D1 batch\(\) of 2 statements failed: .*D1_ERROR") as caught:
        await db.batch(
            [
                Statement("UPDATE streamers SET login = ? WHERE id = ?", ("renamed", "1")),
                Statement(
                    "INSERT INTO app_tokens (client_id, access_token, expires_at, minted_at) "
                    "VALUES (?, ?, ?, ?)",
                    ("cid", "s3cr3t-token", "x", "y"),
                ),
            ]
        )
    assert "s3cr3t-token" not in str(caught.value)
    assert engine.rows("SELECT login FROM streamers")[0]["login"] == "one"


@pytest.mark.parametrize("value", [2**53 - 1, -(2**53 - 1), 2**53, float("nan"), b"bytes", [1]])
async def test_values_d1_cannot_hold_exactly_are_refused_by_position(
    sdk: str, engine: wd.D1Engine, value: object
) -> None:
    db = D1Database(wd.d1_binding(sdk, engine))
    with pytest.raises(BindingError, match="parameter 2"):
        await db.all("SELECT ? AS a, ? AS b", 1, value)


async def test_the_largest_bindable_integer_binds(sdk: str, engine: wd.D1Engine) -> None:
    db = D1Database(wd.d1_binding(sdk, engine))
    assert await db.first("SELECT ? AS a, ? AS b", 2**53 - 2, -(2**53 - 2)) == {
        "a": 2**53 - 2,
        "b": -(2**53 - 2),
    }


# --- Queues -----------------------------------------------------------------------------------------


async def test_send_batch_sends_bodies_and_delays(sdk: str) -> None:
    recorder = wd.QueueRecorder()
    queue = QueueBinding(wd.queue_binding(sdk, recorder))
    await queue.send_batch(
        [OutgoingMessage({"v": 1, "job_id": 1}), OutgoingMessage({"v": 1, "job_id": 2}, 90)]
    )
    assert [(m.body, m.delay_seconds) for m in recorder.sent] == [
        ({"v": 1, "job_id": 1}, 0),
        ({"v": 1, "job_id": 2}, 90),
    ]


async def test_send_batch_splits_at_100_messages_and_256_kb(sdk: str) -> None:
    recorder = wd.QueueRecorder()
    queue = QueueBinding(wd.queue_binding(sdk, recorder))
    await queue.send_batch([OutgoingMessage({"i": i}) for i in range(250)])
    assert [len(s) for s in recorder.sends] == [100, 100, 50]
    recorder.sends.clear()
    big = "x" * 100_000  # three of these do not fit in 256 KB
    await queue.send_batch([OutgoingMessage({"pad": big}) for _ in range(5)])
    assert [len(s) for s in recorder.sends] == [2, 2, 1]


async def test_a_message_over_128_kb_is_refused_not_dropped(sdk: str) -> None:
    queue = QueueBinding(wd.queue_binding(sdk, wd.QueueRecorder()))
    with pytest.raises(BindingError, match="exceeds the 128000-byte limit"):
        await queue.send_batch([OutgoingMessage({"pad": "x" * 130_000})])


async def test_delays_are_kept_within_what_queues_accept(sdk: str) -> None:
    recorder = wd.QueueRecorder()
    await QueueBinding(wd.queue_binding(sdk, recorder)).send_batch(
        [OutgoingMessage({}, -5), OutgoingMessage({}, 10**6)]
    )
    assert [m.delay_seconds for m in recorder.sent] == [0, bindings.MAX_DELAY_SECONDS]


async def test_a_failed_send_raises_binding_error(sdk: str) -> None:
    recorder = wd.QueueRecorder()
    recorder.fail = True
    with pytest.raises(BindingError, match=r"sendBatch\(\) of 1 messages failed"):
        await QueueBinding(wd.queue_binding(sdk, recorder)).send_batch([OutgoingMessage({})])


async def test_d1_failures_are_database_errors_and_queue_failures_queue_errors(
    sdk: str, engine: wd.D1Engine
) -> None:
    db = D1Database(wd.d1_binding(sdk, engine))
    engine.fail_when = lambda sql: "streamers" in sql
    for call in (
        db.batch([Statement("SELECT * FROM streamers")]),
        db.all("SELECT * FROM streamers"),
        db.first("SELECT ? AS a", float("nan")),
    ):
        with pytest.raises(DatabaseError) as caught:
            await call
        assert not isinstance(caught.value, QueueError)
    recorder = wd.QueueRecorder()
    recorder.fail = True
    with pytest.raises(QueueError) as refused:
        await QueueBinding(wd.queue_binding(sdk, recorder)).send_batch([OutgoingMessage({})])
    assert not isinstance(refused.value, DatabaseError)


class TornDownD1:
    """A D1 binding the runtime has torn down: prepare() itself throws, as Miniflare's poisoned stubs do."""

    def prepare(self, sql: str) -> Any:
        raise wd.JsException("Error", "Attempted to use poisoned stub")


async def test_a_prepare_that_throws_is_a_database_error_naming_the_call() -> None:
    with pytest.raises(DatabaseError, match=r"D1 prepare\(\) of SELECT 1 failed: .*poisoned stub"):
        await D1Database(TornDownD1()).all("SELECT 1")


# --- delivered messages ----------------------------------------------------------------------------


def test_a_delivered_body_is_plain_python(sdk: str) -> None:
    delivered = DeliveredMessage(wd.message(sdk, {"v": 1, "type": "crawl", "seq": None}, attempts=3))
    assert delivered.body == {"v": 1, "type": "crawl", "seq": None} and type(delivered.body) is dict
    assert delivered.attempts == 3
    assert DeliveredMessage(wd.message(sdk, "text body")).body == "text body"


def test_retry_passes_delay_seconds_as_an_options_object(sdk: str) -> None:
    js_message = wd.message(sdk, {})
    DeliveredMessage(js_message).retry(120)
    assert js_message.outcome == wd.Outcome("retry", 120)
    capped = wd.message(sdk, {})
    DeliveredMessage(capped).retry(10**9)
    assert capped.outcome == wd.Outcome("retry", bindings.MAX_DELAY_SECONDS)


def test_ack_acks(sdk: str) -> None:
    js_message = wd.message(sdk, {})
    DeliveredMessage(js_message).ack()
    assert js_message.outcome == wd.Outcome("ack")


# --- fetch() as an httpx transport ------------------------------------------------------------------


async def test_requests_go_out_through_fetch_with_method_headers_and_body(runtime: wd.JsFetch) -> None:
    runtime.reply = lambda call: (
        201,
        [("content-type", "application/json"), ("ratelimit-limit", "800")],
        b'{"ok": true}',
    )
    async with httpx.AsyncClient(transport=JsFetchTransport(), timeout=7) as client:
        response = await client.post(
            "https://id.twitch.tv/oauth2/token?x=1", data={"client_id": "a b"}, headers={"Client-Id": "cid"}
        )
    assert (response.status_code, response.json()) == (201, {"ok": True})
    assert response.headers["ratelimit-limit"] == "800"
    call = runtime.calls[0]
    assert (call.url, call.method) == ("https://id.twitch.tv/oauth2/token?x=1", "POST")
    assert call.body == b"client_id=a+b" and call.headers["client-id"] == "cid"
    assert "host" not in call.headers and "content-length" not in call.headers
    assert call.timeout_ms == 7000


async def test_an_already_decompressed_body_is_not_decoded_twice(runtime: wd.JsFetch) -> None:
    # fetch() inflates gzip itself but keeps the Content-Encoding header.
    runtime.reply = lambda call: (
        200,
        [("content-encoding", "gzip"), ("content-length", "99")],
        b'{"data": []}',
    )
    async with httpx.AsyncClient(transport=JsFetchTransport()) as client:
        response = await client.get("https://api.twitch.tv/helix/clips")
    assert response.json() == {"data": []}


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (wd.JsException("TimeoutError", "The operation was aborted due to timeout"), httpx.ReadTimeout),
        (wd.JsException("TypeError", "Network connection lost."), httpx.ConnectError),
    ],
)
async def test_fetch_failures_become_httpx_transport_errors(
    runtime: wd.JsFetch, error: Exception, expected: type[Exception]
) -> None:
    runtime.fail = error  # type: ignore[assignment]
    async with httpx.AsyncClient(transport=JsFetchTransport()) as client:
        with pytest.raises(expected, match=r"api\.twitch\.tv/helix/clips"):
            await client.get("https://api.twitch.tv/helix/clips?broadcaster_id=1")


async def test_the_helix_client_runs_over_fetch_against_the_emulator(runtime: wd.JsFetch) -> None:
    from local.clock import VirtualClock
    from local.emulated import emulator_client, emulator_settings
    from local.emulator import EmulatorConfig, HelixWorld, create_emulator_app

    clock = VirtualClock()
    world = HelixWorld(1, 3, clock=clock)
    config = EmulatorConfig()
    async with emulator_client(create_emulator_app(world, config)) as emulator:
        runtime.client = emulator
        settings = emulator_settings(Settings(), config)
        async with httpx.AsyncClient(transport=JsFetchTransport()) as client:
            helix = HelixClient(client, settings, Budget(50, 50), clock)
            users = await helix.get_users(logins=[s.login for s in world.all_streamers()])
    assert sorted(u["id"] for u in users) == sorted(s.id for s in world.all_streamers())
    assert [c.method for c in runtime.calls] == ["POST", "GET"]  # token, then Get Users


# --- env -> ports -----------------------------------------------------------------------------------


def test_worker_env_reads_bindings_vars_and_secrets(sdk: str, engine: wd.D1Engine) -> None:
    env = wd.env_of(
        sdk,
        DB=wd.d1_binding(sdk, engine),
        JOBS=wd.queue_binding(sdk, wd.QueueRecorder()),
        CLIPCRAWLER_PLAN="paid",
        CLIPCRAWLER_PAGE_CAP="7",
        TWITCH_CLIENT_ID="cid",
        TWITCH_CLIENT_SECRET="shh-secret",
        CLIPCRAWLER_API_TOKEN="api-token-value",
    )
    worker = worker_env(env)
    settings = worker.settings
    assert (settings.plan, settings.page_cap, settings.twitch_client_id) == ("paid", 7, "cid")
    assert worker.settings.limits == (10_000, 1_000)
    assert worker.api_token == "api-token-value" and worker.dead_letter_queue == "clipcrawler-jobs-dlq"
    assert "shh-secret" not in repr(worker) and "api-token-value" not in repr(worker)


def test_every_setting_has_an_env_var(sdk: str) -> None:
    values = {
        name: "1"
        for name in bindings.env_vars(
            wd.env_of(
                sdk,
                **{
                    Settings.ENV_NAMES.get(f.name, "CLIPCRAWLER_" + f.name.upper()): "1"
                    for f in fields(Settings)
                },
            )
        )
    }
    assert len(values) == len(fields(Settings))


def test_a_missing_binding_is_a_config_error_naming_it(sdk: str, engine: wd.D1Engine) -> None:
    with pytest.raises(ConfigError, match=r"no binding named JOBS.*\[\[queues.producers\]\]"):
        worker_env(wd.env_of(sdk, DB=wd.d1_binding(sdk, engine)))


def test_a_bad_setting_is_a_config_error_naming_it(sdk: str, engine: wd.D1Engine) -> None:
    env = wd.env_of(
        sdk,
        DB=wd.d1_binding(sdk, engine),
        JOBS=wd.queue_binding(sdk, wd.QueueRecorder()),
        CLIPCRAWLER_PLAN="gold",
    )
    with pytest.raises(ConfigError, match="CLIPCRAWLER_PLAN has value 'gold'"):
        worker_env(env)


def test_the_module_imports_and_converts_without_the_runtime() -> None:
    code = (
        "import sys, shared.bindings as b; "
        "assert not {'js', 'pyodide', 'workers'} & set(sys.modules), sorted(sys.modules); "
        "print(b.to_py({'a': [None, 1]}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "{'a': [None, 1]}"


class _Unreadable(wd.JsProxy):
    def to_py(self) -> object:
        raise wd.JsException("TypeError", "cannot convert")


def test_an_unreadable_body_becomes_text_the_core_records_and_acks() -> None:
    js_message = wd.RawMessage({})
    js_message.body = _Unreadable()
    assert DeliveredMessage(js_message).body == "<unreadable message body: JsException>"
