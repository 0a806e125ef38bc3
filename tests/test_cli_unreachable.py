"""`clipcrawler crawl` with Twitch out of reach ends fast, with its run closed (issue 13, finding 5)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.cli_support import closed_port, run, user_env


def test_crawl_against_a_closed_port_stops_within_30_seconds_with_the_run_closed(tmp_path: Path) -> None:
    assert (
        run(["--db", "c.sqlite", "demo", "--streamers", "60", "--json"], cwd=tmp_path).code == 0
    )  # 60 streamers
    port = closed_port()
    env = user_env(TWITCH_CLIENT_ID="id", TWITCH_CLIENT_SECRET="not-a-real-secret")
    result = run(
        [
            "--db",
            "c.sqlite",
            "crawl",
            "--twitch-api-url",
            f"http://127.0.0.1:{port}/helix",
            "--twitch-auth-url",
            f"http://127.0.0.1:{port}/oauth2",
        ],
        cwd=tmp_path,
        timeout=30,
        env=env,
    )
    assert result.code == 1 and "Traceback" not in result.err + result.out, result.err
    assert "not-a-real-secret" not in result.err + result.out
    said = [line for line in result.err.splitlines() if line.startswith("clipcrawler: cannot reach")]
    assert said == [
        f"clipcrawler: cannot reach http://127.0.0.1:{port}/oauth2/token "
        "(ConnectError: All connection attempts failed): stopping the crawl"
    ], result.err
    assert "stopped early           Twitch unreachable" in result.out
    assert "not crawled             60 of 60 active streamers: 60 failed" in result.out
    with sqlite3.connect(tmp_path / "c.sqlite") as conn:
        status, total, failed = conn.execute(
            "SELECT status, jobs_total, jobs_failed FROM runs WHERE id = 2"
        ).fetchone()
        reasons = conn.execute("SELECT DISTINCT stop_reason, error FROM jobs WHERE run_id = 2").fetchall()
    assert (status, total, failed) == ("finished", 60, 60)
    assert (
        len(reasons) == 1 and reasons[0][0] == "twitch_unreachable" and f"127.0.0.1:{port}" in reasons[0][1]
    )
