"""The HTTP side under hostile input: strict JSON, sessions, throttles, links, and what D1 can bind."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import local.sqlite_db
from local.emulator.app import helix_error
from producer import auth, queries
from producer.app import create_app
from producer.dashboard.html import is_twitch_url, twitch_link
from producer.throttle import FAILURES_ALLOWED, MAX_BLOCK_WRITES, WINDOW_SECONDS
from shared.bindings import MAX_BINDABLE_INTEGER, _bind_value
from shared.ports import Statement
from tests import api_support
from tests.api_support import SPEC, TOKEN, Api, ApiFactory
from tests.test_dashboard import csrf_of, log_in

make_api = api_support.make_api

DEEP = b"[" * 30_000 + b"]" * 30_000


# --- what D1 can bind: the guard that catches it without the Workers harness ----------------------------


@pytest.fixture
def d1_binds(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Statement]]:
    """Every statement local SQLite runs also goes through the Worker's own bind guard (shared/bindings.py).

    So a parameter D1 would refuse (an integer beyond 2**53 - 2, say) fails here as it fails on D1, and
    the statements are kept for the assertions on integer literals.
    """
    seen: list[Statement] = []
    checked = local.sqlite_db.check_d1_limits

    def check(statement: Statement) -> None:
        seen.append(statement)
        for position, value in enumerate(statement.params, 1):
            if not isinstance(value, (bytes, memoryview)):
                _bind_value(value, position, statement.sql)
        checked(statement)

    monkeypatch.setattr(local.sqlite_db, "check_d1_limits", check)
    yield seen


def big_literals(statements: list[Statement]) -> set[str]:
    """Integer literals in SQL text beyond what D1 binds: a constant there would fail the same way."""
    return {
        m
        for s in statements
        for m in re.findall(r"(?<![\w.'])\d{16,}(?![\w.'])", s.sql)
        if int(m) > MAX_BINDABLE_INTEGER
    }


async def test_every_integer_the_app_and_the_crawl_bind_is_one_d1_binds(
    make_api: ApiFactory, d1_binds: list[Statement]
) -> None:
    api = await make_api(3)
    run_id = await api.fail_streamer("10000000")
    await log_in(api)
    for path in (
        "/runs",
        f"/runs/{run_id}",
        f"/runs/{run_id}/jobs",
        "/streamers",
        "/",
        "/ui/runs",
        f"/ui/runs/{run_id}",
        "/ui/streamers",
    ):
        response = await api.get(path)
        assert response.status_code == 200, (path, response.text[:300])
    assert (await api.post(f"/runs/{run_id}/retry-failed")).status_code == 202
    assert (await api.post("/runs", json={})).status_code == 202
    await api.stack.runner.drain()
    assert len(d1_binds) > 50
    ints = [v for s in d1_binds for v in s.params if isinstance(v, int) and not isinstance(v, bool)]
    assert ints and max(abs(v) for v in ints) <= MAX_BINDABLE_INTEGER
    assert big_literals(d1_binds) == set()


def test_the_literal_scan_sees_a_sentinel() -> None:
    assert big_literals([Statement("SELECT 1 FROM runs WHERE id < 4611686018427387904", ())]) == {
        "4611686018427387904"
    }


HUGE_IDS = [2**53 - 1, 2**53, 2**62, 10**19, 10**30]


@pytest.mark.parametrize("value", HUGE_IDS)
async def test_ids_and_cursors_d1_cannot_bind_answer_404_or_422_never_500(
    make_api: ApiFactory, d1_binds: list[Statement], value: int
) -> None:
    api = await make_api(1)
    await log_in(api)
    calls = [
        ("GET", f"/runs/{value}", None),
        ("GET", f"/runs/{value}/jobs", None),
        ("POST", f"/runs/{value}/retry-failed", None),
        ("GET", f"/ui/runs/{value}", None),
        ("GET", "/runs", {"before": value}),
        ("GET", "/runs/1/jobs", {"after": value}),
        ("GET", "/ui/runs", {"before": value}),
        ("GET", "/ui/runs/1", {"after": value}),
    ]
    for method, path, params in calls:
        response = await api.request(method, path, params=params)
        assert response.status_code in (404, 422), (method, path, params, response.status_code)


async def test_the_largest_id_d1_binds_is_accepted(make_api: ApiFactory, d1_binds: list[Statement]) -> None:
    api = await make_api(1)
    assert (await api.get("/runs", params={"before": MAX_BINDABLE_INTEGER})).status_code == 200
    assert (await api.get(f"/runs/{MAX_BINDABLE_INTEGER}")).status_code == 404


def test_openapi_states_the_bounds_validation_enforces() -> None:
    paths = SPEC["paths"]
    params = {
        (path, p["name"]): p["schema"]
        for path, item in paths.items()
        for op in item.values()
        for p in op.get("parameters", [])
    }
    for key in (("/runs", "before"), ("/runs/{run_id}/jobs", "after"), ("/runs/{run_id}", "run_id")):
        assert params[key]["maximum"] == MAX_BINDABLE_INTEGER == 2**53 - 2, key
    assert (
        params[("/runs", "before")]["minimum"] == 1
        and params[("/runs/{run_id}/jobs", "after")]["minimum"] == 0
    )
    assert params[("/streamers", "after")]["minLength"] == 1
    kick = SPEC["components"]["schemas"]["KickRequest"]["properties"]["streamers"]["items"]
    assert kick["minLength"] == 1 and kick["pattern"]
    assert "415" in paths["/runs"]["post"]["responses"] and "429" in paths["/runs"]["get"]["responses"]


async def test_a_failing_dashboard_page_answers_the_html_error_page(
    make_api: ApiFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = await make_api(1)
    await log_in(api)

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("SELECT secret FROM somewhere failed")

    monkeypatch.setattr(queries, "streamer_counts", broken)
    transport = httpx.ASGITransport(app=create_app(lambda r: _same(api)), raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers={"Authorization": f"Bearer {TOKEN}"}
    ) as client:
        page = await client.get("/")
        assert page.status_code == 500 and page.headers["content-type"].startswith("text/html")
        assert "internal error (RuntimeError)" in page.text and "secret" not in page.text
        monkeypatch.setattr(queries, "runs_page", broken)
        listing = await client.get("/runs")
        assert listing.status_code == 500 and listing.json()["error"] == "internal_server_error"


# --- strict JSON and its media type ---------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/runs", "/streamers"])
async def test_json_nested_30000_deep_is_a_400_not_a_500(make_api: ApiFactory, path: str) -> None:
    api = await make_api(1)
    response = await api.post(path, content=DEEP, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text[:200]
    assert "30,000 levels deep" in response.json()["message"]


@pytest.mark.parametrize("body", [b"\x0b", b"\x0c", b"\x0b{}", b"\xa0"])
async def test_a_body_of_non_json_whitespace_is_a_400_and_starts_no_run(
    make_api: ApiFactory, body: bytes
) -> None:
    api = await make_api(1)
    response = await api.post("/runs", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert await api.stack.db.all("SELECT id FROM runs") == []


async def test_json_whitespace_alone_is_still_an_empty_body(make_api: ApiFactory) -> None:
    api = await make_api(1)
    response = await api.post("/runs", content=b" \t\r\n", headers={"content-type": "application/json"})
    assert response.status_code == 202


@pytest.mark.parametrize(
    "kind", ["text/plain", "application/x-www-form-urlencoded", None, "application/json-seq"]
)
async def test_json_sent_as_another_media_type_is_a_415(make_api: ApiFactory, kind: str | None) -> None:
    api = await make_api(1)
    headers = {"content-type": kind} if kind else {}
    for path, body in (
        ("/runs", b"{}"),
        ("/streamers", b'{"logins": ["streamer00000"]}'),
        ("/runs/1/retry-failed", b"{}"),
    ):
        response = await api.post(path, content=body, headers=headers)
        assert response.status_code == 415, (path, kind, response.text)
        assert "application/json" in response.json()["message"]
    assert await api.stack.db.all("SELECT id FROM runs") == []


async def test_the_json_media_type_may_carry_a_charset(make_api: ApiFactory) -> None:
    api = await make_api(1)
    response = await api.post(
        "/runs", content=b"{}", headers={"content-type": "Application/JSON; charset=utf-8"}
    )
    assert response.status_code == 202


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'{"streamers": ["10000000"], "streamers": ["x"]}', "more than once"),
        (b'{"streamers": ["\\ud800"]}', "lone surrogate"),
        (b'{"backfill": NaN}', "NaN is not JSON"),
        (b'{"streamers": ["\xff"]}', "not UTF-8"),
    ],
)
async def test_json_that_is_not_strict_is_a_400_saying_why(
    make_api: ApiFactory, body: bytes, says: str
) -> None:
    api = await make_api(1)
    response = await api.post("/runs", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400 and says in response.json()["message"], response.text


async def test_a_rate_limited_twitch_is_a_503_with_retry_after(make_api: ApiFactory) -> None:
    api = await make_api(1)
    limited = helix_error(429, "Too Many Requests")
    reset = int(api.stack.clock.now()) + 42
    limited.headers.update(
        {"Ratelimit-Limit": "800", "Ratelimit-Remaining": "0", "Ratelimit-Reset": str(reset)}
    )
    api.failing.users_error = limited
    response = await api.post("/streamers", json={"logins": ["newcomer"]})
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "upstream_rate_limited"
    assert 1 <= int(response.headers["retry-after"]) <= 42


# --- sessions and throttles -----------------------------------------------------------------------------


def session_cookie(api: Api) -> str:
    value = api.client.cookies.get(auth.SESSION_COOKIE)
    assert value
    return value


async def test_logout_ends_the_session_for_every_copy_of_its_cookie(make_api: ApiFactory) -> None:
    api = await make_api(1)
    csrf = await log_in(api)
    copied = session_cookie(api)
    out = await api.post("/ui/logout", token=None, data={"csrf": csrf})
    assert out.status_code == 303
    thief = httpx.AsyncClient(
        transport=api.client._transport, base_url="http://testserver", cookies={auth.SESSION_COOKIE: copied}
    )
    async with thief:
        page = await thief.get("/")
        assert page.status_code == 303 and page.headers["location"].startswith("/ui/login")
        kick = await thief.post("/ui/kick", data={"csrf": csrf})
        assert kick.status_code == 303 and kick.headers["location"] == "/ui/login"
    assert await api.stack.db.all("SELECT id FROM runs") == []
    # A new login is a new session, unaffected by the ended one.
    assert (await api.post("/ui/login", token=None, data={"token": TOKEN, "next": "/"})).status_code == 303
    assert session_cookie(api) != copied
    assert (await api.get("/", token=None)).status_code == 200


async def test_two_logins_in_the_same_second_get_different_cookies(make_api: ApiFactory) -> None:
    api = await make_api(1)
    cookies = set()
    for _ in range(3):
        response = await api.post("/ui/login", token=None, data={"token": TOKEN, "next": "/"})
        cookies.add(response.headers["set-cookie"].split(";")[0])
    assert len(cookies) == 3


class CountingWrites:
    """A Database wrapper counting the statements that write."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.writes: list[str] = []

    def _note(self, sql: str) -> None:
        if not sql.lstrip().upper().startswith("SELECT"):
            self.writes.append(sql)

    async def all(self, sql: str, *params: Any) -> Any:
        self._note(sql)
        return await self.db.all(sql, *params)

    async def first(self, sql: str, *params: Any) -> Any:
        self._note(sql)
        return await self.db.first(sql, *params)

    async def run(self, sql: str, *params: Any) -> Any:
        self._note(sql)
        return await self.db.run(sql, *params)

    async def batch(self, statements: list[Statement]) -> Any:
        for s in statements:
            self._note(s.sql)
        return await self.db.batch(statements)


async def test_wrong_bearer_tokens_are_throttled_and_the_flood_costs_one_write(make_api: ApiFactory) -> None:
    api = await make_api(1)
    counting = CountingWrites(api.context.ports.db)
    api.use(db=counting)
    statuses = [(await api.get("/runs", token=f"guess-{i:04d}-xxxxxxxxxxxx")).status_code for i in range(300)]
    assert statuses[:FAILURES_ALLOWED] == [401] * FAILURES_ALLOWED
    assert set(statuses[FAILURES_ALLOWED:]) == {429}
    blocked = await api.get("/runs")  # the right token, from the blocked address: refused too
    assert blocked.status_code == 429 and 1 <= int(blocked.headers["retry-after"]) <= WINDOW_SECONDS
    assert (
        len([w for w in counting.writes if "auth_blocks" in w]) <= 2
    )  # the block and its pruning: one batch
    assert all("auth_blocks" in w for w in counting.writes)
    api.stack.clock.advance(WINDOW_SECONDS + 1)
    assert (await api.get("/runs")).status_code == 200


async def test_a_flood_from_many_addresses_writes_a_bounded_number_of_blocks(make_api: ApiFactory) -> None:
    api = await make_api(1)
    api.use(behind_cloudflare=True)
    counting = CountingWrites(api.context.ports.db)
    api.use(db=counting)
    for host in range(MAX_BLOCK_WRITES * 3):
        address = {"cf-connecting-ip": f"198.51.100.{host}"}
        statuses = [
            (await api.get("/runs", token="wrong-token-of-the-right-length", headers=address)).status_code
            for _ in range(FAILURES_ALLOWED + 2)
        ]
        assert statuses == [401] * FAILURES_ALLOWED + [429, 429], host
    inserts = [w for w in counting.writes if w.startswith("INSERT INTO auth_blocks")]
    assert len(inserts) == MAX_BLOCK_WRITES
    assert (await api.get("/runs", headers={"cf-connecting-ip": "198.51.100.250"})).status_code == 200


async def test_an_ipv6_client_is_its_slash_64(make_api: ApiFactory) -> None:
    api = await make_api(1)
    api.use(behind_cloudflare=True)
    for i in range(FAILURES_ALLOWED + 1):
        await api.get(
            "/runs",
            token="wrong-token-of-the-right-length",
            headers={"cf-connecting-ip": f"2001:db8:1:2::{i:x}"},
        )
    same_64 = await api.get("/runs", headers={"cf-connecting-ip": "2001:db8:1:2:ffff::1"})
    other_64 = await api.get("/runs", headers={"cf-connecting-ip": "2001:db8:1:3::1"})
    assert (same_64.status_code, other_64.status_code) == (429, 200)


async def test_cf_connecting_ip_is_trusted_only_behind_cloudflare(make_api: ApiFactory) -> None:
    api = await make_api(1)  # local mode: anyone could send the header, so it does not pick the client
    for i in range(FAILURES_ALLOWED + 1):
        await api.get(
            "/runs", token="wrong-token-of-the-right-length", headers={"cf-connecting-ip": f"192.0.2.{i}"}
        )
    assert (await api.get("/runs", headers={"cf-connecting-ip": "192.0.2.200"})).status_code == 429


async def test_a_missing_bearer_header_is_not_counted_as_a_try(make_api: ApiFactory) -> None:
    api = await make_api(1)
    for _ in range(FAILURES_ALLOWED * 3):
        assert (await api.get("/runs", token=None)).status_code == 401
    assert (await api.get("/runs")).status_code == 200


async def test_wrong_logins_are_throttled_per_address(make_api: ApiFactory) -> None:
    api = await make_api(1)
    for _ in range(FAILURES_ALLOWED):
        assert (
            await api.post("/ui/login", token=None, data={"token": "guess", "next": "/"})
        ).status_code == 401
    assert (await api.post("/ui/login", token=None, data={"token": "guess", "next": "/"})).status_code == 429
    refused = await api.post("/ui/login", token=None, data={"token": TOKEN, "next": "/"})
    assert refused.status_code == 429 and refused.headers["content-type"].startswith("text/html")
    assert "set-cookie" not in refused.headers and int(refused.headers["retry-after"]) >= 1
    same_app = api.client._transport.app  # type: ignore[attr-defined]
    elsewhere = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=same_app, client=("192.0.2.7", 5000)), base_url="http://testserver"
    )
    async with elsewhere:
        response = await elsewhere.post("/ui/login", data={"token": TOKEN, "next": "/"})
        assert response.status_code == 303


async def _same(api: Api) -> Any:
    return api.context


async def test_the_app_refuses_an_api_token_shorter_than_16(make_api: ApiFactory) -> None:
    api = await make_api(1, api_token="short-token")
    for method, path in (("GET", "/runs"), ("GET", "/ui/login"), ("GET", "/")):
        response = await api.request(method, path, token="short-token")
        assert response.status_code == 503, (path, response.status_code)
        assert "at least 16" in response.text and "11 characters" in response.text
    assert (await api.get("/health", token=None)).status_code == 200


# --- links ----------------------------------------------------------------------------------------------

HOSTILE_URLS = [
    "javascript:alert(document.cookie)",
    "JAVASCRIPT:alert(1)",
    "data:text/html,<script>1</script>",
    "http://clips.twitch.tv/Plain",
    "https://evil.example/clip",
    "https://clips.twitch.tv.evil.example/x",
    "https://evil.example@clips.twitch.tv/x",
    "https://clips.twitch.tv:8443/x",
    "//clips.twitch.tv/x",
    " https://clips.twitch.tv/x",
    "https://clips.twitch.tv/x\n",
    "vbscript:msgbox",
    "",
]


@pytest.mark.parametrize("href", HOSTILE_URLS)
def test_only_https_twitch_urls_are_links(href: str) -> None:
    assert not is_twitch_url(href)


@pytest.mark.parametrize(
    "href",
    [
        "https://clips.twitch.tv/AwkwardHelplessSalamander",
        "https://www.twitch.tv/streamer/clip/Abc-123",
        "https://twitch.tv/x",
    ],
)
def test_twitch_clip_urls_are_links(href: str) -> None:
    assert is_twitch_url(href)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(),
        st.builds(lambda tail: "https://" + tail, st.text()),
        st.builds(lambda tail: "https://clips.twitch.tv" + tail, st.text()),
    )
)
def test_a_link_is_only_ever_an_https_page_on_twitch(href: str) -> None:
    if is_twitch_url(href):
        parts = urlsplit(href)
        assert parts.scheme == "https" and parts.port is None and parts.username is None
        host = (parts.hostname or "").lower()
        assert host == "twitch.tv" or host.endswith(".twitch.tv")
        assert href == href.strip() and all(c.isprintable() for c in href)
    rendered = twitch_link(href, "<b>title</b>")
    assert "<b>" not in rendered and ("href=" in rendered) == is_twitch_url(href)


async def test_the_overview_renders_a_hostile_clip_url_as_text(make_api: ApiFactory) -> None:
    api = await make_api(2)
    await api.stack.runner.crawl()
    newest = await api.stack.db.all("SELECT id FROM clips ORDER BY created_at DESC LIMIT 3")
    for clip, href in zip(
        newest, ["javascript:alert(1)", "https://evil.example/x", "http://clips.twitch.tv/x"], strict=True
    ):
        await api.stack.db.run(
            "UPDATE clips SET url = ?, title = ? WHERE id = ?", href, f"title-{clip['id']}", clip["id"]
        )
    await log_in(api)
    page = (await api.get("/", token=None)).text
    hrefs = re.findall(r'href="([^"]*)"', page)
    assert not [h for h in hrefs if h.startswith(("javascript", "http:", "https://evil"))]
    assert all(f"title-{c['id']}" in page for c in newest)  # still shown, as text
    assert any(h.startswith("https://clips.twitch.tv/") for h in hrefs)
    assert csrf_of(page)
