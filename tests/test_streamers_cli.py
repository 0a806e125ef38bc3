"""`clipcrawler streamers remove`, through the installed command as a user runs it."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

CLI = Path(sys.executable).parent / "clipcrawler"


def clipcrawler(db: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLIPCRAWLER_", "TWITCH_"))}
    return subprocess.run(
        [str(CLI), "--db", str(db), *argv], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def active(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT login, active FROM streamers").fetchall())


def test_remove_deactivates_by_login_and_keeps_the_clips(tmp_path: Path) -> None:
    db = tmp_path / "c.sqlite"
    assert clipcrawler(db, "demo", "--streamers", "3", "--json").returncode == 0
    with sqlite3.connect(db) as conn:
        clips_before = conn.execute(
            "SELECT count(*) FROM clips WHERE broadcaster_id = "
            "(SELECT id FROM streamers WHERE login = 'streamer00001')"
        ).fetchone()[0]
    assert clips_before > 0

    done = clipcrawler(db, "streamers", "remove", "STREAMER00001", "nobody_here")
    assert done.returncode == 1  # one login was not found: said, and the other still removed
    assert done.stdout.startswith("removed streamer00001 (") and "its clips stay" in done.stdout
    assert done.stderr.strip() == f"no streamer with login 'nobody_here' in {db}"
    assert active(db) == {"streamer00000": 1, "streamer00001": 0, "streamer00002": 1}
    with sqlite3.connect(db) as conn:
        assert (
            conn.execute(
                "SELECT count(*) FROM clips WHERE broadcaster_id = "
                "(SELECT id FROM streamers WHERE login = 'streamer00001')"
            ).fetchone()[0]
            == clips_before
        )

    again = clipcrawler(db, "streamers", "remove", "streamer00001")
    assert again.returncode == 0 and "already removed" in again.stdout
    listed = clipcrawler(db, "streamers", "list")
    assert listed.returncode == 0 and "streamer00001" in listed.stdout


def test_remove_refuses_bad_input_in_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "missing.sqlite"
    done = clipcrawler(missing, "streamers", "remove", "someone")
    assert done.returncode == 2 and done.stderr.strip() == (
        f"clipcrawler: no database at {missing}: check --db (or CLIPCRAWLER_DB); "
        "`clipcrawler demo`, `crawl` or `streamers add` create one"
    )
    assert not missing.exists()
    existing = tmp_path / "existing.sqlite"
    sqlite3.connect(existing).close()
    bad = clipcrawler(existing, "streamers", "remove", "not a login!")
    assert bad.returncode == 2 and bad.stderr.strip() == "clipcrawler: not a Twitch login: 'not a login!'"
    for outcome in (done, bad):
        assert "Traceback" not in outcome.stderr and outcome.stdout == ""
