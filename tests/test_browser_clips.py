"""Headless Chromium on the clip browser and a streamer's page, JavaScript off; screenshots kept in tmp_path.

Twitch's CDN is not reachable from the tests: Chromium's requests to it are answered with a generated PNG,
which also shows that the page's CSP lets thumbnails load from there (and only there).
"""

from __future__ import annotations

import sqlite3
import struct
import zlib
from pathlib import Path
from typing import Any

from tests.test_browser import TOKEN, browser_page, chromium, served  # noqa: F401, F811  (fixtures)

NAMES = ("Just Chatting", "World of Warcraft")


def png(width: int = 16, height: int = 9, rgb: tuple[int, int, int] = (100, 65, 165)) -> bytes:
    """A solid-colour PNG, made by hand (no imaging library in the test environment)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def prepare(path: Path) -> dict[str, Any]:
    """Name only some of the crawled games (the others shown unknown) and mark one clip deleted."""
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM games")  # the crawl named them all; readers must also show an unknown one
        common = conn.execute(
            "SELECT game_id FROM clips GROUP BY game_id ORDER BY count(*) DESC LIMIT 2"
        ).fetchall()
        for (game_id,), name in zip(common, NAMES, strict=True):  # the other games stay unknown
            conn.execute(
                "INSERT INTO games (id, name, fetched_at) VALUES (?, ?, '2026-09-21T00:00:00Z')",
                (game_id, name),
            )
        deleted = conn.execute(
            "SELECT id, broadcaster_id FROM clips ORDER BY view_count DESC LIMIT 1"
        ).fetchone()
        conn.execute("UPDATE clips SET deleted_at = '2026-09-21T00:00:00Z' WHERE id = ?", (deleted[0],))
        live = conn.execute("SELECT count(*) FROM clips WHERE deleted_at IS NULL").fetchone()[0]
        streamer = conn.execute(
            "SELECT id, login, display_name, tier FROM streamers WHERE id <> '10000000' ORDER BY id LIMIT 1"
        ).fetchone()
    return {"deleted": deleted[0], "live": live, "streamer": streamer}


async def test_the_clip_browser_and_a_streamer_page_in_chromium(
    served: tuple[str, Path, int],  # noqa: F811
    browser_page: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    base, path, _ = served
    facts = prepare(path)
    page = browser_page
    cdn_requests: list[str] = []

    async def thumbnail(route: Any) -> None:
        cdn_requests.append(route.request.url)
        await route.fulfill(status=200, content_type="image/png", body=png())

    await page.route("https://static-cdn.jtvnw.net/**", thumbnail)
    await page.goto(f"{base}/ui/clips")
    assert page.url.startswith(f"{base}/ui/login")
    await page.fill("input[name=token]", TOKEN)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/ui/clips")

    rows = page.locator("table[data-table=clips] tbody tr")
    assert await rows.count() == min(50, facts["live"])
    games = {
        (await cell.inner_text()).strip()
        for cell in await page.locator("table[data-table=clips] tbody tr td:nth-child(4)").all()
    }
    assert games & set(NAMES), games  # names where known...
    assert any(g.isdigit() for g in games), games  # ...the id where not
    assert cdn_requests, "the thumbnails were not requested: is the CSP refusing them?"
    await page.screenshot(path=str(tmp_path / "clips.png"), full_page=True)

    # The filter form, as a user fills it: one streamer, most viewed first.
    streamer_id, login, display_name, tier = facts["streamer"]
    await page.fill("input[name=streamer]", login)
    await page.select_option("select[name=sort]", "views")
    await page.click("form.filters button[type=submit]")
    await page.wait_for_load_state()
    assert "sort=views" in page.url and f"streamer={login}" in page.url
    cells = await page.locator("table[data-table=clips] tbody tr td:nth-child(3)").all_inner_texts()
    assert cells and {c.strip() for c in cells} == {display_name}
    views = [
        int(v.replace(",", ""))
        for v in await page.locator("table[data-table=clips] tbody tr td:nth-child(5)").all_inner_texts()
    ]
    assert views == sorted(views, reverse=True)
    await page.screenshot(path=str(tmp_path / "clips-filtered.png"), full_page=True)

    await page.select_option("select[name=deleted]", "only")
    await page.fill("input[name=streamer]", "")
    await page.click("form.filters button[type=submit]")
    await page.wait_for_load_state()
    deleted_rows = page.locator("table[data-table=clips] tbody tr")
    assert await deleted_rows.count() == 1
    assert "deleted" in (await deleted_rows.first.inner_text())

    await page.click(f"table[data-table=clips] a[href='/ui/streamers/{await _first_streamer(page)}']")
    await page.wait_for_load_state()
    assert "/ui/streamers/" in page.url
    await page.goto(f"{base}/ui/streamers/{streamer_id}")
    assert display_name in await page.locator("h1").inner_text()
    facts_table = await page.locator("table[data-table=facts]").inner_text()
    assert f"{tier} every" in facts_table
    assert await page.locator("table[data-table=streamer-jobs] tbody tr").count() >= 1
    assert await page.locator("table[data-table=newest-clips] img.thumb").count() >= 1
    shot = tmp_path / "streamer.png"
    await page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    print(f"screenshots: {tmp_path}")


async def _first_streamer(page: Any) -> str:
    href = await page.locator("table[data-table=clips] tbody tr td:nth-child(3) a").first.get_attribute(
        "href"
    )
    return str(href).rsplit("/", 1)[-1]
