"""The dashboard: login and session cookie, CSRF-safe buttons, and pages that show what the database holds."""

from __future__ import annotations

import re
from html import unescape

import httpx

from producer import auth
from tests import api_support
from tests.api_support import TOKEN, Api, ApiFactory

FORM = {"Content-Type": "application/x-www-form-urlencoded"}

make_api = api_support.make_api  # the fixture, shared by the API, dashboard and notification tests


async def log_in(api: Api) -> str:
    """Log in through the form; returns the CSRF token the pages carry."""
    response = await api.post("/ui/login", token=None, data={"token": TOKEN, "next": "/"})
    assert response.status_code == 303 and response.headers["location"] == "/"
    page = await api.get("/", token=None)
    assert page.status_code == 200
    return csrf_of(page.text)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert match, "the page has no CSRF-carrying form"
    return match.group(1)


def counters(html: str) -> dict[str, str]:
    return {k: unescape(v) for k, v in re.findall(r'data-counter="([a-z_]+)">([^<]*)<', html)}


def table_rows(html: str, name: str) -> list[list[str]]:
    match = re.search(rf'<table data-table="{name}">.*?<tbody>(.*?)</tbody>', html, re.DOTALL)
    if not match:
        return []
    return [
        [
            unescape(re.sub(r"<[^>]+>", "", cell)).strip()
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.DOTALL)
        ]
        for row in re.findall(r"<tr>(.*?)</tr>", match.group(1), re.DOTALL)
    ]


async def test_pages_ask_for_a_login_first(make_api: ApiFactory) -> None:
    api = await make_api(1)
    for path in ("/", "/ui/runs", "/ui/runs/1?status=failed", "/ui/streamers"):
        response = await api.get(path, token=None)
        assert response.status_code == 303
        assert response.headers["location"] == str(httpx.URL("/ui/login", params={"next": path}))
    form = await api.get("/ui/login", token=None)
    assert form.status_code == 200 and 'type="password"' in form.text and "<script" not in form.text


async def test_the_login_sets_a_derived_httponly_strict_cookie(make_api: ApiFactory) -> None:
    api = await make_api(1)
    wrong = await api.post("/ui/login", token=None, data={"token": "guess", "next": "/"})
    assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
    assert "not the API token" in wrong.text
    right = await api.post("/ui/login", token=None, data={"token": TOKEN, "next": "/ui/runs"})
    assert right.status_code == 303 and right.headers["location"] == "/ui/runs"
    cookie = right.headers["set-cookie"]
    assert cookie.startswith(f"{auth.SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Secure" not in cookie  # plain http on loopback; see the https test
    value = cookie.split(";")[0].split("=", 1)[1]
    assert TOKEN not in cookie and auth.session_claims(value, TOKEN, api.stack.clock.now()) is not None
    assert (await api.get("/ui/runs", token=None)).status_code == 200


async def test_over_https_the_cookie_is_secure(make_api: ApiFactory) -> None:
    api = await make_api(1, base_url="https://crawler.example")
    response = await api.post("/ui/login", token=None, data={"token": TOKEN})
    assert "; Secure" in response.headers["set-cookie"]


async def test_login_never_redirects_off_site(make_api: ApiFactory) -> None:
    api = await make_api(1)
    for target in (
        "https://evil.example/",
        "//evil.example",
        "/\\evil.example",
        "javascript:alert(1)",
        "/\t/evil.example",
        "/\n/evil.example",
        "",
    ):
        response = await api.post("/ui/login", token=None, data={"token": TOKEN, "next": target})
        assert response.headers["location"] == "/", target


async def test_a_session_expires_and_a_forged_one_is_refused(make_api: ApiFactory) -> None:
    api = await make_api(1)
    await log_in(api)
    api.stack.clock.advance(auth.SESSION_SECONDS + 1)
    assert (await api.get("/", token=None)).status_code == 303
    forged = f"{int(api.stack.clock.now()) + 3600}.{'0' * 64}"
    api.client.cookies.set(auth.SESSION_COOKIE, forged)
    assert (await api.get("/", token=None)).status_code == 303


async def test_the_bearer_header_also_opens_the_pages(make_api: ApiFactory) -> None:
    api = await make_api(1)
    response = await api.get("/")
    assert response.status_code == 200 and "Kick a run now" in response.text


async def test_no_token_configured_means_no_dashboard(make_api: ApiFactory) -> None:
    api = await make_api(1, api_token="")
    for method, path in (("GET", "/"), ("GET", "/ui/login"), ("POST", "/ui/login")):
        response = await api.request(method, path, token=None, data={"token": ""})
        assert response.status_code == 503 and "CLIPCRAWLER_API_TOKEN" in response.text


async def test_the_overview_shows_runs_chart_streamers_and_clips(make_api: ApiFactory) -> None:
    api = await make_api(4)
    await api.stack.runner.crawl()
    api.stack.clock.advance(3600)
    await api.fail_streamer("10000000")
    await log_in(api)
    page = (await api.get("/", token=None)).text
    runs = await api.stack.db.all("SELECT * FROM runs ORDER BY id DESC")
    shown = table_rows(page, "runs")
    assert [row[0] for row in shown] == [str(r["id"]) for r in runs]
    for row, run in zip(shown, runs, strict=True):
        assert row[5:10] == [
            str(run[k]) for k in ("jobs_total", "jobs_done", "jobs_failed", "clips_new", "clips_updated")
        ]
    assert page.count("<svg") == 1 and len(re.findall(r'<g data-run="\d+">', page)) == len(runs)
    assert f"run 2 ({runs[0]['created_at']}): {runs[0]['clips_new']} new" in page
    assert counters(page) == {"streamers_active": "4", "streamers_failing": "1", "streamers_inactive": "0"}
    [failing] = table_rows(page, "streamers")  # only the failing ones: the page lists them all
    assert "streamer00000 · 10000000" in failing[0] and failing[3] == "1" and "500" in failing[5]
    newest = await api.stack.db.all("SELECT title, created_at FROM clips ORDER BY created_at DESC")
    shown = [row[0] for row in table_rows(page, "newest-clips")]
    tenth = newest[9]["created_at"]  # clips created in the same second may come in either order
    assert len(shown) == 10 and set(shown) <= {c["title"] for c in newest if c["created_at"] >= tenth}
    hot = table_rows(page, "hot-clips")
    assert len(hot) == 10 and all(int(row[3].replace(",", "")) <= int(row[2].replace(",", "")) for row in hot)
    assert "<script" not in page and "javascript:" not in page


async def test_a_run_page_shows_its_counters_and_filters_jobs_by_status(make_api: ApiFactory) -> None:
    api = await make_api(4)
    run_id = await api.fail_streamer("10007919")
    await log_in(api)
    page = await api.get(f"/ui/runs/{run_id}", token=None)
    row = await api.run(run_id)
    assert counters(page.text) == {
        "jobs_total": "4",
        "jobs_done": "3",
        "jobs_failed": "1",
        "jobs_pending": "0",
        "clips_new": f"{row['clips_new']:,}",
        "clips_updated": f"{row['clips_updated']:,}",
        "failure_rate": "25.0%",
        "duration": "0.0 s",
    }
    assert len(table_rows(page.text, "jobs")) == 4
    assert "Retry 1 failed job" in page.text
    failed = await api.get(f"/ui/runs/{run_id}", token=None, params={"status": "failed"})
    rows = table_rows(failed.text, "jobs")
    assert len(rows) == 1 and rows[0][2] == "failed" and "500" in rows[0][9]
    assert 'class="current" href="/ui/runs/1?status=failed">failed (1)' in failed.text
    bad = await api.get(f"/ui/runs/{run_id}", token=None, params={"status": "nope"})
    assert bad.status_code == 422 and "text/html" in bad.headers["content-type"]
    missing = await api.get("/ui/runs/99", token=None)
    assert missing.status_code == 404 and "no run 99" in missing.text


async def test_the_kick_button_starts_a_run(make_api: ApiFactory) -> None:
    api = await make_api(3)
    csrf = await log_in(api)
    response = await api.post("/ui/kick", token=None, data={"csrf": csrf})
    assert response.status_code == 303 and response.headers["location"] == "/ui/runs/1?kicked=3"
    page = await api.get(response.headers["location"], token=None)
    assert "Run started: 3 jobs enqueued." in page.text and api.stack.runner.queue.pending() == 3


async def test_buttons_refuse_a_missing_or_foreign_csrf_token(make_api: ApiFactory) -> None:
    api = await make_api(2)
    run_id = await api.fail_streamer("10000000")
    await log_in(api)
    for data in ({}, {"csrf": ""}, {"csrf": "0" * 32}):
        for path in ("/ui/kick", f"/ui/runs/{run_id}/retry-failed", "/ui/logout"):
            response = await api.post(path, token=None, data=data)
            assert response.status_code == 403 and "CSRF" in response.text, (path, data)
    assert await api.stack.db.first("SELECT count(*) AS n FROM runs") == {"n": 1}
    json_body = await api.post("/ui/kick", token=None, json={"csrf": "x"})
    assert json_body.status_code == 415
    api.client.cookies.clear()
    anonymous = await api.post("/ui/kick", token=None, data={"csrf": "x"})
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/ui/login"


async def test_the_retry_button_requeues_the_failed_jobs(make_api: ApiFactory) -> None:
    api = await make_api(3)
    run_id = await api.fail_streamer("10015838")
    csrf = await log_in(api)
    response = await api.post(f"/ui/runs/{run_id}/retry-failed", token=None, data={"csrf": csrf})
    assert response.status_code == 303 and response.headers["location"] == f"/ui/runs/{run_id}?retried=1"
    page = await api.get(response.headers["location"], token=None)
    assert "1 failed job sent again." in page.text
    assert counters(page.text)["jobs_failed"] == "0" and counters(page.text)["jobs_pending"] == "1"
    await api.stack.runner.drain()
    done = await api.get(f"/ui/runs/{run_id}", token=None)
    assert counters(done.text)["jobs_done"] == "3" and "Retry" not in done.text
    again = await api.post(f"/ui/runs/{run_id}/retry-failed", token=None, data={"csrf": csrf})
    assert again.status_code == 409 and "no failed jobs" in again.text


async def test_logout_clears_the_cookie(make_api: ApiFactory) -> None:
    api = await make_api(1)
    csrf = await log_in(api)
    response = await api.post("/ui/logout", token=None, data={"csrf": csrf})
    assert response.status_code == 303 and "Max-Age=0" in response.headers["set-cookie"]
    assert (await api.get("/", token=None)).status_code == 303


async def test_the_streamers_page_shows_success_and_failure_streaks(make_api: ApiFactory) -> None:
    api = await make_api(2)
    await api.fail_streamer("10000000")
    await log_in(api)
    rows = {
        row[0].split()[-3]: row
        for row in table_rows((await api.get("/ui/streamers", token=None)).text, "streamers")
    }
    assert rows["streamer00000"][2] == "never" and rows["streamer00000"][3] == "1"
    assert "500" in rows["streamer00000"][5]
    assert rows["streamer00001"][2].endswith("ago") and rows["streamer00001"][3] == "0"


async def test_everything_shown_is_escaped(make_api: ApiFactory) -> None:
    api = await make_api(1)
    await api.stack.runner.crawl()
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    await api.stack.db.run("UPDATE clips SET title = ?, broadcaster_name = ?", evil, evil)
    await api.stack.db.run("UPDATE streamers SET display_name = ?, last_error = ?", evil, evil)
    await api.stack.db.run("UPDATE jobs SET error = ?, stop_reason = ?", evil, evil)
    await log_in(api)
    for path in ("/", "/ui/runs/1", "/ui/streamers"):
        page = (await api.get(path, token=None)).text
        assert "<script" not in page and "<img" not in page, path
        assert "&lt;script&gt;" in page, path


async def test_pages_forbid_scripts_framing_and_caching(make_api: ApiFactory) -> None:
    api = await make_api(1)
    response = await api.get("/")
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "script-src" not in csp
    assert response.headers["cache-control"] == "no-store"
