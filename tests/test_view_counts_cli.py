"""With default settings, every stored view count is the one the latest crawl read.

Drives the installed `clipcrawler` as a subprocess against the Helix emulator served over real HTTP on a
loopback port; between the two crawls the emulator's clock moves on, so every clip gains views (most by
far less than 5%, the move the old default let go unwritten).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.emulator import EmulatorConfig, HelixWorld, create_emulator_app
from tests.served_app import served

ROOT = Path(__file__).resolve().parent.parent
CLI = Path(sys.executable).parent / "clipcrawler"
STREAMERS = 6


class OffsetClock:
    """Wall-clock time plus an offset the test moves on: the emulator's views grow with it."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            await asyncio.sleep(seconds)


class ClipsRead:
    """An emulator `wrap` that remembers the view counts Get Clips answered with, per clip id."""

    def __init__(self) -> None:
        self.views: dict[str, int] = {}

    def __call__(self, name: str, handler: Any) -> Any:
        async def recorded(request: Any) -> Any:
            reply = await handler(request)
            if name == "clips" and reply.status == 200:
                self.views.update({c["id"]: c["view_count"] for c in reply.body["data"]})
            return reply

        return recorded


@pytest.fixture
def emulator() -> Iterator[tuple[str, OffsetClock, ClipsRead]]:
    """The emulator on a loopback port, in a thread of this process so the test can move its clock."""
    clock, read = OffsetClock(), ClipsRead()
    # Clips every few minutes, so each streamer has dozens in the lookback, at a handful of views an hour.
    world = HelixWorld(3, STREAMERS, (200, 300), clock=clock)
    with served(create_emulator_app(world, EmulatorConfig(), wrap=read)) as base:
        yield base, clock, read


def clipcrawler(db: Path, base: str, *argv: str) -> subprocess.CompletedProcess[str]:
    config = EmulatorConfig()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLIPCRAWLER_", "TWITCH_"))}
    command = [
        str(CLI),
        "--db",
        str(db),
        "--twitch-api-url",
        f"{base}/helix",
        "--twitch-auth-url",
        f"{base}/oauth2",
        "--client-id",
        config.client_id,
        *argv,
    ]
    env["TWITCH_CLIENT_SECRET"] = config.client_secret
    return subprocess.run(
        command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def stored_views(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT id, view_count FROM clips").fetchall())


def test_two_crawls_leave_every_stored_view_count_as_the_second_crawl_read(
    tmp_path: Path, emulator: tuple[str, OffsetClock, ClipsRead]
) -> None:
    base, clock, read = emulator
    db = tmp_path / "views.sqlite"
    logins = [f"streamer{i:05d}" for i in range(STREAMERS)]  # the emulator's login scheme
    added = clipcrawler(db, base, "streamers", "add", *logins)
    assert added.returncode == 0, added.stderr
    first = clipcrawler(db, base, "crawl", "--json")
    assert first.returncode == 0, first.stderr
    before = stored_views(db)
    assert len(before) > 50

    clock.offset += 20 * 60  # twenty minutes on: every clip gains a few views
    read.views.clear()
    # The crawler's streamer schedule is on the real clock: a manual run crawls every active streamer anyway.
    second = clipcrawler(db, base, "crawl", "--json")
    assert second.returncode == 0, second.stderr
    after = stored_views(db)

    assert set(read.views) == set(after), "the second crawl re-read every stored clip (24 h lookback)"
    moved = [i for i in before if read.views[i] != before[i]]
    small = [i for i in moved if abs(read.views[i] - before[i]) < 0.05 * before[i]]
    assert len(small) > len(after) // 2, "most clips moved by less than 5%: the case a step would skip"
    stale = {i: (after[i], read.views[i]) for i in after if after[i] != read.views[i]}
    assert not stale, (
        f"{len(stale)} of {len(after)} stored view counts differ from the crawl's: {list(stale.items())[:5]}"
    )
