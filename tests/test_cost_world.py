"""Which world `clipcrawler cost` measures: the database's active streamers by observed activity, or a mix."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from local.activity_mix import profile_of
from local.cost_world import busy, seed_like, yours
from shared.errors import ConfigError

SCHEMA = Path(__file__).resolve().parent.parent / "schema.sql"
AS_OF = "2026-11-22T12:00:00Z"  # the database's latest crawl


def make_db(path: Path, rows: list[tuple[str, int, str | None, str | None, str | None]]) -> None:
    """Streamers as (login, active, last_clip_at, last_live_at, last_success_at)."""
    with sqlite3.connect(path) as conn:
        conn.executescript(SCHEMA.read_text())
        conn.executemany(
            "INSERT INTO streamers (id, login, display_name, active, last_clip_at, last_live_at, "
            "last_success_at, added_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (str(i), login, login, active, clip, live, success, AS_OF)
                for i, (login, active, clip, live, success) in enumerate(rows)
            ],
        )


def test_your_streamers_are_modelled_from_their_latest_activity(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    make_db(
        path,
        [
            ("clipped_this_morning", 1, "2026-11-22T09:00:00Z", None, AS_OF),
            ("live_yesterday", 1, "2026-11-10T00:00:00Z", "2026-11-21T13:00:00Z", AS_OF),
            ("clipped_last_week", 1, "2026-11-17T00:00:00Z", None, AS_OF),
            ("quiet_for_a_month", 1, "2026-10-20T00:00:00Z", None, AS_OF),
            ("never_clipped", 1, None, None, AS_OF),
            ("added_not_crawled", 1, None, None, None),
            ("removed", 0, "2026-11-22T11:00:00Z", None, AS_OF),
        ],
    )
    world = yours(path)
    assert world is not None and world.name == "yours" and world.streamers == 6  # the removed one is left out
    assert world.profiles == ("daily", "daily", "bursty", "dormant", "dormant", "bursty")
    assert world.counts() == {"bursty": 2, "daily": 2, "dormant": 2}
    assert str(path) in world.source and "not crawled yet (1)" in world.source and "tier 0: 6" in world.source


def test_no_database_or_no_active_streamer_means_no_world_of_yours(tmp_path: Path) -> None:
    assert yours(tmp_path / "missing.sqlite") is None
    assert not (tmp_path / "missing.sqlite").exists()
    make_db(tmp_path / "empty.sqlite", [("removed", 0, None, None, None)])
    assert yours(tmp_path / "empty.sqlite") is None


def test_a_file_that_is_not_a_database_is_named(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a database\n" * 100)
    with pytest.raises(ConfigError, match=f"cannot read the streamers of {path}"):
        yours(path)


def test_the_seed_like_mix_is_a_quarter_daily_and_busy_is_every_streamer_around_the_clock() -> None:
    seed = seed_like(200, "no database")
    assert seed.profiles == tuple(profile_of(i) for i in range(200))
    assert seed.counts()["daily"] == 50 and seed.activity(1, 0.0) is not None
    assert seed.source.startswith(
        "seed-like: 200 streamers, 50 streaming daily, 100 on some days, 50 dormant"
    )
    assert busy(3).busy and busy(3).activity(1, 0.0) is None and busy(3).streamers == 3
