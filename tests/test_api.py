"""The API as a whole: auth on every endpoint, error answers, body limits, and the OpenAPI contract."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from jsonschema import Draft202012Validator
from starlette.routing import Route

from producer.api import openapi
from producer.api.validation import MAX_BODY_BYTES
from producer.app import create_app
from producer.context import AppContext
from shared.errors import ConfigError
from tests import api_support
from tests.api_support import SPEC, SPEC_PATH, TOKEN, ApiFactory
from tests.test_query_plans import RecordingDatabase, full_scans

make_api = api_support.make_api  # the fixture, shared by the API, dashboard and notification tests

# Every endpoint that shows data or changes state, with a request that would succeed when authorised.
PROTECTED = [
    ("GET", "/runs", None),
    ("POST", "/runs", {}),
    ("GET", "/runs/1", None),
    ("GET", "/runs/1/jobs", None),
    ("POST", "/runs/1/retry-failed", None),
    ("GET", "/streamers", None),
    ("POST", "/streamers", {"logins": ["streamer00000"]}),
    ("DELETE", "/streamers/10000000", None),
    ("GET", "/clips", None),
]


def test_the_committed_openapi_json_is_the_one_the_app_serves() -> None:
    regenerate = "regenerate: python -m producer.api.openapi > openapi.json"
    assert SPEC_PATH.read_text() == openapi.render(), regenerate


def test_the_description_is_openapi_3_1_with_valid_json_schemas() -> None:
    assert SPEC["openapi"].startswith("3.1.") and SPEC["info"]["title"]
    for name, schema in SPEC["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)  # raises, naming the schema's fault
        assert schema.get("additionalProperties") is False, f"{name} must refuse unknown fields"
    for path, item in SPEC["paths"].items():
        for method, operation in item.items():
            assert operation["responses"], (method, path)
            public = operation.get("security") == []
            assert public or {"401", "503"} <= set(operation["responses"]), (method, path)


def test_every_api_route_is_described_and_every_description_is_routed() -> None:
    async def unused(request: object) -> None:
        raise AssertionError

    app = create_app(unused)  # type: ignore[arg-type]
    routed = {
        (r.path, m.lower())
        for r in app.routes
        if isinstance(r, Route) and r.methods
        for m in r.methods
        if m != "HEAD" and r.path != "/" and not r.path.startswith("/ui/") and r.path != "/openapi.json"
    }
    described = {(path, method) for path, item in SPEC["paths"].items() for method in item}
    assert routed == described


async def test_health_needs_no_token_and_shows_nothing(make_api: ApiFactory) -> None:
    api = await make_api(api_token="")
    response = await api.get("/health", token=None)
    assert response.status_code == 200 and response.json() == {"status": "ok"}


async def test_openapi_is_served(make_api: ApiFactory) -> None:
    api = await make_api()
    response = await api.get("/openapi.json", token=None)
    assert response.status_code == 200 and response.json() == SPEC


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
async def test_no_configured_token_answers_503_never_runs_open(
    make_api: ApiFactory, method: str, path: str, body: object
) -> None:
    api = await make_api(api_token="")
    for token in (None, "", "anything"):
        response = await api.request(method, path, token=token, json=body)
        assert response.status_code == 503, (token, response.text)
        assert "CLIPCRAWLER_API_TOKEN" in response.json()["message"]
    assert await api.stack.db.first("SELECT count(*) AS n FROM runs") == {"n": 0}


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
async def test_a_missing_or_wrong_token_answers_401(
    make_api: ApiFactory, method: str, path: str, body: object
) -> None:
    api = await make_api()
    attempts = {
        "missing": {},
        "wrong": {"Authorization": "Bearer not-the-token"},
        "prefix": {"Authorization": f"Bearer {TOKEN[:-1]}"},
        "longer": {"Authorization": f"Bearer {TOKEN}x"},
        "basic": {"Authorization": f"Basic {TOKEN}"},
        "bare": {"Authorization": TOKEN},
    }
    for name, headers in attempts.items():
        response = await api.request(method, path, token=None, headers=headers, json=body)
        assert response.status_code == 401, (name, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["error"] == "unauthorised"
    assert await api.stack.db.first("SELECT count(*) AS n FROM runs") == {"n": 0}


@pytest.mark.parametrize(("method", "path", "body"), PROTECTED)
async def test_the_right_token_is_let_through(
    make_api: ApiFactory, method: str, path: str, body: object
) -> None:
    api = await make_api()
    if path.startswith("/runs/1"):
        api.failing.ids.add("10000000")
        await api.stack.runner.crawl()  # run 1, with a failed job to retry
        api.failing.ids.clear()
    response = await api.request(method, path, json=body)
    assert response.status_code in (200, 202), response.text
    # The scheme is case-insensitive (RFC 7235); surrounding blanks are not part of the token.
    lenient = await api.request("GET", "/runs", token=None, headers={"Authorization": f"bearer  {TOKEN} "})
    assert lenient.status_code == 200


async def test_unknown_routes_and_methods_answer_json(make_api: ApiFactory) -> None:
    api = await make_api()
    missing = await api.get("/nope")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    wrong = await api.request("PUT", "/runs")
    assert wrong.status_code == 405 and wrong.json()["error"] == "method_not_allowed"
    assert "GET" in wrong.headers["allow"] and "POST" in wrong.headers["allow"]


async def test_malformed_json_answers_400(make_api: ApiFactory) -> None:
    api = await make_api()
    for raw in (b"{", b'{"streamers": [}', b"\xff\xfe", b"NaN", b'{"a": Infinity}'):
        response = await api.post("/runs", content=raw, headers={"Content-Type": "application/json"})
        assert response.status_code == 400, raw
        assert response.json()["error"] == "malformed_request"
    assert await api.stack.db.first("SELECT count(*) AS n FROM runs") == {"n": 0}


async def test_a_body_that_is_not_an_object_or_has_unknown_fields_answers_422(make_api: ApiFactory) -> None:
    api = await make_api()
    not_object = await api.post("/runs", json=[1, 2])
    assert not_object.status_code == 422
    assert not_object.json() == {
        "error": "invalid_input",
        "field": "body",
        "message": "body: must be a JSON object, got an array",
    }
    unknown = await api.post("/runs", json={"streamers": ["10000000"], "priority": 1})
    assert unknown.status_code == 422 and unknown.json()["field"] == "priority"
    assert "unknown field" in unknown.json()["message"]
    nested = await api.post(
        "/runs", json={"backfill": {"from": "2026-09-20T00:00:00Z", "to": "2026-09-21T00:00:00Z", "step": 5}}
    )
    assert nested.status_code == 422 and nested.json()["field"] == "backfill.step"
    retry = await api.post("/runs/1/retry-failed", json={"force": True})
    assert retry.status_code == 422 and retry.json()["field"] == "force"


async def test_a_declared_body_over_the_limit_answers_413_unread(make_api: ApiFactory) -> None:
    api = await make_api()
    big = json.dumps({"logins": ["a" * 20] * 4000}).encode()
    assert len(big) > MAX_BODY_BYTES
    for method, path in (("POST", "/runs"), ("POST", "/streamers"), ("POST", "/runs/1/retry-failed")):
        response = await api.request(method, path, content=big, headers={"Content-Type": "application/json"})
        assert response.status_code == 413, path
        assert response.json()["error"] == "payload_too_large"
        assert f"{MAX_BODY_BYTES:,}" in response.json()["message"]


async def test_a_streamed_body_over_the_limit_answers_413(make_api: ApiFactory) -> None:
    api = await make_api()
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit must hold while streaming
        nonlocal sent
        yield b'{"logins": ['
        for _ in range(10_000):
            sent += 1
            yield b'"aaaaaaaaaa",'
        yield b'"a"]}'

    users_calls = api.stack.emulator.requests["/helix/users"]
    response = await api.post("/streamers", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert "content-length" not in response.request.headers
    assert sent < 10_000, "the app must stop reading at the limit, not buffer the whole body"
    assert api.stack.emulator.requests["/helix/users"] == users_calls


async def test_a_lying_content_length_is_refused(make_api: ApiFactory) -> None:
    api = await make_api()
    response = await api.post("/runs", content=b"{}", headers={"Content-Length": "ten"})
    assert response.status_code == 400


async def test_query_parameters_are_checked_too(make_api: ApiFactory) -> None:
    api = await make_api()
    unknown = await api.get("/runs", params={"page": "2"})
    assert unknown.status_code == 422 and unknown.json()["field"] == "page"
    twice = await api.get("/runs", params=[("limit", "1"), ("limit", "2")])
    assert twice.status_code == 422 and "more than once" in twice.json()["message"]


async def test_answers_carry_protective_headers(make_api: ApiFactory) -> None:
    api = await make_api()
    response = await api.get("/runs")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"


async def test_an_unexpected_error_answers_500_without_details(make_api: ApiFactory) -> None:
    api = await make_api()
    await api.stack.db.run("DROP TABLE runs")

    async def factory(request: object) -> AppContext:
        return api.context

    # The server error middleware re-raises for the server to log; the client still gets the answer.
    transport = httpx.ASGITransport(app=create_app(factory), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/runs", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 500
    body = response.json()
    assert body["error"] == "internal_server_error" and "runs" not in body["message"]


async def test_a_misconfigured_producer_answers_503_with_the_setting_named() -> None:
    async def factory(request: object) -> AppContext:
        raise ConfigError("CLIPCRAWLER_PLAN has value 'gold'; expected one of ['free', 'paid']")

    transport = httpx.ASGITransport(app=create_app(factory))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        api = await client.get("/runs", headers={"Authorization": f"Bearer {TOKEN}"})
        page = await client.get("/")
    assert api.status_code == 503 and "CLIPCRAWLER_PLAN" in api.json()["message"]
    assert page.status_code == 503 and "CLIPCRAWLER_PLAN" in page.text
    assert "text/html" in page.headers["content-type"]


async def test_every_read_the_app_makes_walks_an_index(make_api: ApiFactory) -> None:
    """D1 bills rows read: no endpoint or page may scan a whole table (see test_query_plans)."""
    api = await make_api(4)
    run_id = await api.fail_streamer("10000000")
    recording = RecordingDatabase(api.stack.db)
    api.use(db=recording)
    for path, params in (
        ("/runs", {}),
        ("/runs", {"before": 5, "limit": 2}),
        (f"/runs/{run_id}", {}),
        (f"/runs/{run_id}/jobs", {}),
        (f"/runs/{run_id}/jobs", {"status": "failed", "after": 1}),
        ("/streamers", {}),
        ("/streamers", {"active": "true", "limit": 2}),
        ("/", {}),
        ("/ui/runs", {}),
        (f"/ui/runs/{run_id}", {"status": "done"}),
        ("/ui/streamers", {}),
        ("/clips", {}),
        ("/clips", {"sort": "views", "game": "509658"}),
        ("/ui/clips", {"deleted": "only"}),
        ("/ui/streamers/10007919", {}),
    ):
        assert (await api.get(path, params=params)).status_code == 200, path
    next_page = (await api.get("/streamers", params={"limit": 2})).json()["next_after"]
    assert (await api.get("/streamers", params={"after": next_page})).status_code == 200
    assert (await api.post(f"/runs/{run_id}/retry-failed")).status_code == 202
    assert (await api.post("/runs", json={"streamers": ["10007919"]})).status_code == 202
    assert (await api.delete("/streamers/10023757")).status_code == 200
    assert len(recording.seen) >= 15
    assert await full_scans(api.stack.db, recording.seen) == {}
