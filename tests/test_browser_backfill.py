"""Headless Chromium on a backfill caught part-way: its run page and a streamer's page show, per streamer,
the window it reached and the clips it found, as the database has them; screenshots kept in tmp_path."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from local.clock import VirtualClock
from local.emulated import emulator_client, emulator_settings
from local.emulator import EmulatorConfig, HelixWorld, create_emulator_app
from local.runner import LocalRunner
from local.sqlite_db import SqliteDatabase
from producer.core import start_run
from producer.streamers import add_streamers
from shared.config import Settings
from shared.ports import Ports
from shared.windows import Window
from tests.test_browser import SEED, STREAMERS, TOKEN, browser_page, chromium, serving  # noqa: F401  (fixtures)
from tests.test_browser_clips import png

DAY = 86_400.0
# Day-wide windows of 100-200 clips, three Helix calls an invocation, stopped after six invocations: each
# streamer is a window or two into the range, the first ones further than the last.
CLIPS_PER_DAY = (100, 200)
DELIVERIES = 6


async def backfill_part_way(path: Path) -> int:
    """A 19-day backfill, stopped after a few invocations; returns its run id."""
    clock = VirtualClock(time.time())
    config = EmulatorConfig()
    world = HelixWorld(SEED, STREAMERS, CLIPS_PER_DAY, clock=clock)
    settings = emulator_settings(Settings(external_limit=3, backfill_window_days=1), config).with_(
        http_backoff_seconds=0
    )
    db = await SqliteDatabase.open(path)
    try:
        async with emulator_client(create_emulator_app(world, config)) as http:
            await add_streamers(db, http, settings, clock, [s.login for s in world.all_streamers()])
            runner = LocalRunner(db, http, settings, clock, concurrency=1)
            now = clock.now()
            started = await start_run(
                Ports(db=db, queue=runner.queue, clock=clock, http=http),
                settings,
                backfill=Window(now - 20 * DAY, now - DAY),
            )
            delivered: list[object] = []

            def stop_after_a_few(verdict: object) -> None:
                delivered.append(verdict)
                if len(delivered) == DELIVERIES:
                    runner.stop()

            await runner.drain(stop_after_a_few)
    finally:
        await db.close()
    return started.run_id


def backfill_jobs(path: Path, run_id: int) -> list[dict[str, Any]]:
    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute(
            "SELECT j.*, s.login FROM jobs AS j JOIN streamers AS s ON s.id = j.streamer_id "
            "WHERE j.run_id = ? ORDER BY j.id",
            (run_id,),
        ).fetchall()
    return [dict(r) for r in rows]


def window_reached(job: dict[str, Any]) -> str:
    """What the dashboard must show for the job, worked out from its row alone."""
    if job["status"] == "done":
        return "done"
    if job["window_start"]:
        return "reached " + job["window_start"][:16].replace("T", " ")
    return "not started"


async def backfill_table(page: Any) -> dict[str, list[str]]:
    """The backfill table's rows by their first cell (streamer login, or run id on a streamer's page)."""
    rows = {}
    for row in await page.locator("table[data-table=backfill] tbody tr").all():
        cells = [c.strip() for c in await row.locator("td").all_inner_texts()]
        rows[cells[0]] = cells
    return rows


async def test_a_backfill_part_way_shows_each_streamers_window_and_clips_in_chromium(
    chromium: str,  # noqa: F811
    browser_page: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    path = tmp_path / "backfill.sqlite"
    run_id = await backfill_part_way(path)
    jobs = backfill_jobs(path, run_id)
    assert len(jobs) == STREAMERS
    in_flight = [j for j in jobs if j["status"] != "done" and j["window_start"]]
    assert in_flight, [
        (j["status"], j["window_start"]) for j in jobs
    ]  # caught part-way, not done nor unstarted
    assert any(j["clips_seen"] > 0 for j in in_flight)
    crawl_from, crawl_to = in_flight[0]["crawl_from"], in_flight[0]["crawl_to"]
    assert all(crawl_from <= j["window_start"] < crawl_to for j in in_flight)
    assert len({j["window_start"] for j in in_flight}) > 1  # the streamers are at different windows

    with serving(tmp_path, path) as base:
        page = browser_page

        async def thumbnail(route: Any) -> None:  # Twitch's CDN is not reachable from the tests
            await route.fulfill(status=200, content_type="image/png", body=png())

        await page.route("https://static-cdn.jtvnw.net/**", thumbnail)
        await page.goto(f"{base}/ui/runs/{run_id}")
        assert page.url.startswith(f"{base}/ui/login")
        await page.fill("input[name=token]", TOKEN)
        await page.click("button[type=submit]")
        await page.wait_for_url(f"{base}/ui/runs/{run_id}")
        heading = f"Backfill {crawl_from} to {crawl_to}"
        assert heading in await page.locator("h2").all_inner_texts()
        shown = await backfill_table(page)
        assert set(shown) == {j["login"] for j in jobs}
        for job in jobs:
            row = shown[job["login"]]
            assert row[1] == f"{crawl_from[:10]} .. {crawl_to[:10]}"
            assert (row[2], row[3], row[4]) == (
                window_reached(job),
                f"{job['clips_seen']:,}",
                f"{job['clips_new']:,}",
            ), job["login"]
            assert row[-1] == job["status"]
        await page.screenshot(path=str(tmp_path / "backfill-run.png"), full_page=True)

        # The streamer's page, reached from the run page's link: the same figures, by run.
        job = max(in_flight, key=lambda j: j["clips_seen"])
        await page.click(f"table[data-table=backfill] a[href='/ui/streamers/{job['streamer_id']}']")
        await page.wait_for_url(f"{base}/ui/streamers/{job['streamer_id']}")
        row = (await backfill_table(page))[str(run_id)]
        assert (row[2], row[3], row[4]) == (
            window_reached(job),
            f"{job['clips_seen']:,}",
            f"{job['clips_new']:,}",
        )
        shot = tmp_path / "backfill-streamer.png"
        await page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
    print(f"screenshots: {tmp_path}")
