"""The clip browser and a streamer's page: filters and key paging, game names, deleted clips, safe links."""

from __future__ import annotations

import re
from html import unescape

import httpx

from tests import api_support
from tests.api_support import Api, ApiFactory
from tests.clips_support import GAMES, UNKNOWN_GAME, SeededClip, seed_clips, seed_games
from tests.test_dashboard import table_rows
from tests.test_query_plans import RecordingDatabase, full_scans

make_api = api_support.make_api

STREAMERS = [("10000000", "Streamer0"), ("10007919", "Streamer1"), ("10015838", "Streamer2")]


async def seeded(make_api: ApiFactory, count: int = 120) -> tuple[Api, list[SeededClip]]:
    api = await make_api(3)
    await seed_games(api.stack.db)
    return api, await seed_clips(api.stack.db, STREAMERS, count)


def clip_ids(html: str, name: str = "clips") -> list[str]:
    """The clips a table lists, read from their links to Twitch."""
    match = re.search(rf'<table data-table="{name}">(.*?)</table>', html, re.DOTALL)
    if not match:
        return []
    return re.findall(
        r'<a href="https://clips\.twitch\.tv/([^"]+)" rel="[^"]*" target="_blank">(?!<img)', match.group(1)
    )


def next_link(html: str) -> str | None:
    match = re.search(r'<a href="([^"]+)">Next page →</a>', html)
    return unescape(match.group(1)) if match else None


async def test_the_new_pages_ask_for_a_login_first(make_api: ApiFactory) -> None:
    api = await make_api(1)
    for path in ("/ui/clips?sort=views", "/ui/streamers/10000000"):
        response = await api.get(path, token=None)
        assert response.status_code == 303
        assert response.headers["location"] == str(httpx.URL("/ui/login", params={"next": path}))


async def test_the_browser_pages_through_every_clip_by_key(make_api: ApiFactory) -> None:
    api, clips = await seeded(make_api)
    live = sorted((c for c in clips if not c.deleted_at), key=lambda c: (c.created_at, c.id), reverse=True)
    seen: list[str] = []
    path: str | None = "/ui/clips"
    while path is not None:
        response = await api.get(path)
        assert response.status_code == 200, response.text
        ids = clip_ids(response.text)
        assert len(ids) <= 50
        seen += ids
        path = next_link(response.text)
        assert path is None or "after=" in path
    assert seen == [c.id for c in live]


async def test_the_browser_filters_like_the_api(make_api: ApiFactory) -> None:
    api, _ = await seeded(make_api)
    params = {
        "streamer": "streamer00001",
        "game": "Just Chatting",
        "deleted": "include",
        "sort": "views",
        "featured": "",
        "created_from": "",
        "created_to": "",
    }  # a form sends its empty fields too
    page = await api.get("/ui/clips", params=params)
    assert page.status_code == 200
    wanted = {k: v for k, v in params.items() if v}
    from_api = (await api.get("/clips", params={**wanted, "limit": 50})).json()["clips"]
    assert clip_ids(page.text) == [c["id"] for c in from_api] and from_api
    rows = table_rows(page.text, "clips")
    assert {row[3] for row in rows} == {"Just Chatting"} and {row[2] for row in rows} == {"Streamer1"}
    assert 'value="streamer00001"' in page.text and '<option value="views" selected>' in page.text
    assert "Clips of streamer" in page.text and 'href="/ui/streamers/10007919"' in page.text


async def test_unknown_games_show_their_id_and_deleted_clips_are_marked(make_api: ApiFactory) -> None:
    api, clips = await seeded(make_api)
    page = await api.get("/ui/clips", params={"game": UNKNOWN_GAME, "deleted": "only"})
    rows = table_rows(page.text, "clips")
    expected = [c for c in clips if c.game_id == UNKNOWN_GAME and c.deleted_at]
    assert len(rows) == len(expected) > 0
    assert all(row[3] == UNKNOWN_GAME and "deleted" in row[6] for row in rows)
    known = table_rows((await api.get("/ui/clips", params={"game": "743"})).text, "clips")
    assert known and {row[3] for row in known} == {GAMES["743"]}
    assert not any("deleted" in row[6] for row in known)


async def test_bad_filters_show_the_form_again_with_the_reason(make_api: ApiFactory) -> None:
    api, _ = await seeded(make_api, 5)
    page = await api.get("/ui/clips", params={"created_from": "2026-13-01", "streamer": "streamer00000"})
    assert page.status_code == 422 and "text/html" in page.headers["content-type"]
    assert "created_from: is not a date" in unescape(page.text) and 'value="streamer00000"' in page.text
    unknown = await api.get("/ui/clips", params={"colour": "red"})
    assert unknown.status_code == 422 and "unknown query parameter" in unknown.text


async def test_only_https_twitch_addresses_become_links_or_images(make_api: ApiFactory) -> None:
    api, clips = await seeded(make_api, 3)
    hostile = clips[0].id
    await api.stack.db.run(
        "UPDATE clips SET url = 'javascript:alert(1)', thumbnail_url = 'https://evil.example/x.jpg', "
        "title = '<b>hi</b>', deleted_at = NULL WHERE id = ?",
        hostile,
    )
    await api.stack.db.run(
        "UPDATE clips SET thumbnail_url = 'http://static-cdn.jtvnw.net/x.jpg', deleted_at = NULL "
        "WHERE id = ?",
        clips[1].id,
    )
    page = await api.get("/ui/clips", params={"deleted": "include"})
    assert (
        "javascript:" not in page.text
        and "evil.example" not in page.text
        and "http://static" not in page.text
    )
    assert "&lt;b&gt;hi&lt;/b&gt;" in page.text
    images = re.findall(r'<img class="thumb" src="([^"]+)"', page.text)
    assert len(images) == 1 and images[0].startswith("https://static-cdn.jtvnw.net/")
    for href in re.findall(r'<a href="([^"]+)"', page.text):
        assert href.startswith(("/", "https://clips.twitch.tv/")), href
    csp = page.headers["content-security-policy"]
    assert "img-src 'self' data: https://static-cdn.jtvnw.net https://clips-media-assets2.twitch.tv;" in csp
    assert "script-src" not in csp and "default-src 'none'" in csp


async def test_a_streamer_page_shows_its_clips_schedule_and_last_jobs(make_api: ApiFactory) -> None:
    api = await make_api(2)
    await api.stack.runner.crawl()
    api.stack.clock.advance(3600)
    await api.stack.runner.crawl()
    streamer_id = "10007919"
    await api.stack.db.run(
        "UPDATE clips SET deleted_at = '2026-09-21T00:00:00Z' WHERE id = "
        "(SELECT id FROM clips WHERE broadcaster_id = ? ORDER BY view_count DESC LIMIT 1)",
        streamer_id,
    )
    stored = await api.stack.db.all(
        "SELECT id, view_count, created_at, deleted_at FROM clips WHERE broadcaster_id = ?", streamer_id
    )
    live = [r for r in stored if r["deleted_at"] is None]
    page = await api.get(f"/ui/streamers/{streamer_id}")
    assert page.status_code == 200, page.text
    html = page.text
    assert "Streamer1" in html and "streamer00001" in html
    assert f'data-counter="clips_stored">{len(stored):,}<' in html
    newest = sorted(live, key=lambda r: (r["created_at"], r["id"]), reverse=True)[:10]
    viewed = sorted(live, key=lambda r: (r["view_count"], r["id"]), reverse=True)[:10]
    assert clip_ids(html, "newest-clips") == [r["id"] for r in newest]
    assert clip_ids(html, "viewed-clips") == [r["id"] for r in viewed]
    facts = dict(tuple(row) for row in table_rows(html, "facts"))
    tier = (await api.stack.db.first("SELECT tier FROM streamers WHERE id = ?", streamer_id))["tier"]
    every = api.stack.settings.tiers.every_hours[tier]
    assert facts["schedule"] == f"{tier} every {every} h"
    jobs = table_rows(html, "streamer-jobs")
    assert [row[0] for row in jobs] == ["2", "1"] and {row[2] for row in jobs} == {"done"}
    assert 'href="https://www.twitch.tv/streamer00001"' in html
    assert 'href="/ui/clips?streamer=10007919"' in html


async def test_an_unknown_streamer_page_is_404_html(make_api: ApiFactory) -> None:
    api = await make_api(1)
    for streamer_id in ("99999999", "x" * 300):
        page = await api.get(f"/ui/streamers/{streamer_id}")
        assert page.status_code == 404 and "text/html" in page.headers["content-type"]
        assert "no streamer has id" in unescape(page.text)


async def test_streamers_link_to_their_page_and_the_hot_list_says_how_it_estimates(
    make_api: ApiFactory,
) -> None:
    api = await make_api(2)
    await api.stack.runner.crawl()
    streamers = await api.get("/ui/streamers")
    assert 'href="/ui/streamers/10000000"' in streamers.text
    overview = await api.get("/")
    assert "views gained in 24 h, estimated" in overview.text
    label = re.search(r'data-label="hot-estimate">([^<]+)<', overview.text)
    assert label and "interpolated" in label.group(1) and "daily view-count marks" in label.group(1)
    assert '<a href="/ui/clips">Clips</a>' in overview.text


async def test_the_pages_read_through_indexes_only(make_api: ApiFactory) -> None:
    api, _ = await seeded(make_api, 60)
    await api.stack.runner.crawl()
    recording = RecordingDatabase(api.stack.db)
    api.use(db=recording)
    for params in (
        {},
        {"sort": "views"},
        {"streamer": "streamer00000", "game": "Chess"},
        {"deleted": "only", "created_from": "2026-09-12"},
        {"featured": "true", "sort": "views"},
    ):
        page = await api.get("/ui/clips", params=params)
        assert page.status_code == 200
        if next_link(page.text):
            assert (await api.get(next_link(page.text) or "")).status_code == 200
    assert (await api.get("/ui/streamers/10000000")).status_code == 200
    assert await full_scans(api.stack.db, recording.seen) == {}
