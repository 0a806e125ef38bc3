"""Headless Chromium on `clipcrawler serve` after a local crawl: counters match the database, retry works.

Chromium is Debian's `chromium` package, installed here with apt-get when missing (as root); the test
is skipped, with the reason, only where that cannot be done. Playwright drives it (its pip package
brings no browser of its own when given `executable_path`). JavaScript is switched off in the page:
the dashboard must work without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from local.clock import VirtualClock
from local.emulated import emulator_client, emulator_settings
from local.emulator import EmulatorConfig, HelixWorld, create_emulator_app
from local.runner import LocalRunner
from local.sqlite_db import SqliteDatabase
from producer.retry_failed import retry_failed
from producer.streamers import add_streamers
from shared.clock import SystemClock
from shared.config import Settings
from tests.api_support import FailingStreamers

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TOKEN = "browser-test-token-4c1d9e77a2b0"
SEED, STREAMERS = 7, 4
FAILING = "10000000"  # the first emulated streamer's id: its crawl fails in the local crawl


def _install_chromium() -> str | None:
    """Install Debian's chromium if it is missing; the reason it cannot be, or None when it is there."""
    if Path(CHROMIUM).exists():
        return None
    if shutil.which("apt-get") is None:
        return "chromium is not installed and there is no apt-get to install it (not a Debian-like system)"
    if os.geteuid() != 0:
        return "chromium is not installed and installing it with apt-get needs root"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium"]
    for command in (install, ["apt-get", "update", "-q"], install):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, check=False)
        if done.returncode == 0 and Path(CHROMIUM).exists():
            return None
    return f"apt-get could not install chromium: {done.stderr.strip()[-300:]}"


@pytest.fixture(scope="module")
def chromium() -> str:
    reason = _install_chromium()
    if reason is not None:
        pytest.skip(reason)
    return CHROMIUM


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def crawl_with_a_failure(path: Path) -> int:
    """A local crawl of the emulated world in which one streamer's job fails; returns the run id."""
    clock = SystemClock()
    config = EmulatorConfig()
    failing = FailingStreamers()
    world = HelixWorld(SEED, STREAMERS, clock=clock)
    settings = emulator_settings(Settings(max_retries=0, http_attempts=1), config)
    db = await SqliteDatabase.open(path)
    try:
        async with emulator_client(create_emulator_app(world, config, wrap=failing)) as http:
            await add_streamers(db, http, settings, clock, [s.login for s in world.all_streamers()])
            failing.ids.add(FAILING)
            started = await LocalRunner(db, http, settings, clock).crawl()
    finally:
        await db.close()
    return started.run_id


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path, int]]:
    """`clipcrawler serve --emulated` on a free loopback port, over a database holding one crawl."""
    path = tmp_path / "crawl.sqlite"
    run_id = asyncio.run(crawl_with_a_failure(path))
    with serving(tmp_path, path) as base:
        yield base, path, run_id


@contextlib.contextmanager
def serving(tmp_path: Path, path: Path) -> Iterator[str]:
    """`clipcrawler serve --emulated` on a free loopback port over the database at `path`; its base URL."""
    port = _free_port()
    env = {
        **os.environ,
        "CLIPCRAWLER_API_TOKEN": TOKEN,
        "CLIPCRAWLER_MAX_RETRIES": "0",
        "CLIPCRAWLER_HTTP_ATTEMPTS": "1",
    }
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "local.cli",
            "--db",
            str(path),
            "serve",
            "--port",
            str(port),
            "--emulated",
            "--seed",
            str(SEED),
            "--streamers",
            str(STREAMERS),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=log,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"serve did not start: {(tmp_path / 'serve.log').read_text()[-2000:]}")
            time.sleep(0.1)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def run_row(path: Path, run_id: int) -> dict[str, Any]:
    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        row = conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
    return dict(row)


async def shown_counters(page: Any) -> dict[str, str]:
    return {
        await cell.get_attribute("data-counter"): (await cell.inner_text()).strip()
        for cell in await page.locator("[data-counter]").all()
    }


@pytest.fixture
async def browser_page(chromium: str, tmp_path: Path) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_FLAGS,
            java_script_enabled=False,
            viewport={"width": 1280, "height": 900},
        )
        try:
            yield context.pages[0] if context.pages else await context.new_page()
        finally:
            await context.close()


async def test_the_dashboard_shows_the_run_and_retries_its_failed_job(
    served: tuple[str, Path, int], browser_page: Any, tmp_path: Path
) -> None:
    base, path, run_id = served
    page = browser_page
    before = run_row(path, run_id)
    assert (before["status"], before["jobs_done"], before["jobs_failed"]) == ("finished", STREAMERS - 1, 1)

    await page.goto(f"{base}/")
    assert page.url.startswith(f"{base}/ui/login")
    await page.fill("input[name=token]", TOKEN)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/")
    first_run = page.locator("table[data-table=runs] tbody tr").first
    cells = [c.strip() for c in await first_run.locator("td").all_inner_texts()]
    assert cells[0] == str(run_id) and cells[1] == "finished, 25% failed"  # not the clean run's badge
    assert cells[5:10] == [
        str(before[k]) for k in ("jobs_total", "jobs_done", "jobs_failed", "clips_new", "clips_updated")
    ]
    await page.screenshot(path=str(tmp_path / "overview.png"), full_page=True)

    await page.click(f"a[href='/ui/runs/{run_id}']")
    await page.wait_for_url(f"{base}/ui/runs/{run_id}")
    counters = await shown_counters(page)
    assert counters["jobs_total"] == str(before["jobs_total"]) and counters["jobs_failed"] == "1"
    assert counters["jobs_done"] == str(before["jobs_done"])
    assert counters["clips_new"] == f"{before['clips_new']:,}"
    assert counters["clips_updated"] == f"{before['clips_updated']:,}"
    assert "500" in await page.locator("table[data-table=jobs]").inner_text()

    await page.click("button[name=retry]")
    await page.wait_for_url(f"{base}/ui/runs/{run_id}?retried=1")
    assert "1 failed job sent again." in await page.locator("[data-notice=retried]").inner_text()
    deadline = time.monotonic() + 20
    while run_row(path, run_id)["status"] != "finished":  # the background drain crawls the job again
        assert time.monotonic() < deadline, "the retried job was not crawled"
        await asyncio.sleep(0.1)
    await page.goto(f"{base}/ui/runs/{run_id}")
    after = run_row(path, run_id)
    assert (after["jobs_done"], after["jobs_failed"]) == (STREAMERS, 0)
    counters = await shown_counters(page)
    assert (counters["jobs_done"], counters["jobs_failed"]) == (str(STREAMERS), "0")
    assert counters["clips_new"] == f"{after['clips_new']:,}"
    assert await page.locator("button[name=retry]").count() == 0
    shot = tmp_path / "run.png"
    await page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000


async def crawl_a_history(path: Path) -> dict[str, int]:
    """A large first run, small hourly ones, one retried ten weeks after it failed, one that failed last."""
    clock = VirtualClock(time.time() - 1800 * 3600)
    config = EmulatorConfig()
    failing = FailingStreamers()
    world = HelixWorld(SEED, STREAMERS, clock=clock)
    heavy = world.all_streamers()[1]
    world.set_rate(heavy.id, 3000)  # its backfill makes the first run large; then it is removed
    settings = emulator_settings(Settings(max_retries=0, http_attempts=1), config)
    db = await SqliteDatabase.open(path)
    runs: dict[str, int] = {}
    try:
        async with emulator_client(create_emulator_app(world, config, wrap=failing)) as http:
            await add_streamers(db, http, settings, clock, [s.login for s in world.all_streamers()])
            runner = LocalRunner(db, http, settings, clock)
            runs["large"] = (await runner.crawl()).run_id
            await db.run("UPDATE streamers SET active = 0 WHERE id = ?", heavy.id)
            for _ in range(5):
                clock.advance(3600)
                runs["small"] = (await runner.crawl()).run_id
            clock.advance(3600)
            failing.ids.add(FAILING)
            runs["retried"] = (await runner.crawl()).run_id
            failing.ids.clear()
            clock.advance(1727 * 3600)
            await retry_failed(db, runner.queue, clock, settings, runs["retried"])
            await runner.drain()
            clock.advance(3600)
            failing.ids.add(FAILING)
            runs["failed"] = (await runner.crawl()).run_id
    finally:
        await db.close()
    return runs


async def test_the_runs_chart_badges_and_times_as_rendered(
    chromium: str, browser_page: Any, tmp_path: Path
) -> None:
    path = tmp_path / "history.sqlite"
    runs = await asyncio.to_thread(lambda: asyncio.run(crawl_a_history(path)))
    with sqlite3.connect(path) as conn:
        sizes = dict(conn.execute("SELECT id, clips_new + clips_updated FROM runs").fetchall())
    assert sizes[runs["large"]] > 20 * sizes[runs["small"]] > 0  # one run dwarfs the others
    with serving(tmp_path, path) as base:
        page = browser_page
        await page.goto(f"{base}/ui/login")
        await page.fill("input[name=token]", TOKEN)
        await page.click("button[type=submit]")
        await page.wait_for_url(f"{base}/")
        await page.screenshot(path=str(tmp_path / "history.png"), full_page=True)
        rendered = {}
        for run_id in sizes:
            boxes = [await r.bounding_box() for r in await page.locator(f"g[data-run='{run_id}'] rect").all()]
            rendered[run_id] = sum(b["height"] for b in boxes[:2] if b)  # new + updated, as drawn
        assert all(rendered[r] >= 2 for r in sizes), rendered  # every run visible beside the large one
        assert rendered[runs["small"]] >= 0.1 * rendered[runs["large"]], rendered
        assert await page.locator("svg text[data-scale=sqrt]").text_content() == "square-root scale"

        failed_badge = page.locator("table[data-table=runs] .badge.finished-failed").first
        clean_badge = page.locator("table[data-table=runs] .badge.finished").first
        assert await failed_badge.inner_text() == "finished, 33% failed"  # 1 of the 3 left active
        colour = "el => getComputedStyle(el).color + ' ' + getComputedStyle(el).borderStyle"
        assert await failed_badge.evaluate(colour) != await clean_badge.evaluate(colour)

        await page.goto(f"{base}/ui/runs/{runs['retried']}")
        counters = await shown_counters(page)
        assert " h " not in counters["duration"] and counters["idle"].startswith(("1727 h", "1726 h")), (
            counters
        )
        await page.screenshot(path=str(tmp_path / "retried.png"), full_page=True)
