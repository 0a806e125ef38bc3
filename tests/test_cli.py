from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from local.cli import main


def run_cli(
    capsys: pytest.CaptureFixture[str], *argv: str, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    code = main(list(argv), env or {})
    out, err = capsys.readouterr()
    return code, out, err


def test_demo_twice_on_one_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "demo.sqlite")
    code, out, _ = run_cli(capsys, "--db", db, "demo", "--streamers", "25", "--json")
    first = json.loads(out)
    assert code == 0 and first["crawled"] == 25 and first["failed"] == 0 and first["clips_new"] > 0
    # Up to 4 for the crawl, and 2 (Get Games, its write) for the first streamers to bring a game in.
    assert 1 <= first["max_subrequests_per_invocation"] <= 6
    code, out, _ = run_cli(capsys, "--db", db, "demo", "--streamers", "25", "--json")
    second = json.loads(out)
    assert code == 0 and second["run_id"] == first["run_id"] + 1  # every demo is a new manual run
    with sqlite3.connect(db) as conn:
        total, distinct = conn.execute("SELECT count(*), count(DISTINCT id) FROM clips").fetchone()
    assert total == distinct


def test_demo_prints_a_summary_and_progress(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "--db", str(tmp_path / "d.sqlite"), "demo", "--streamers", "8")
    assert code == 0
    assert (
        "streamers crawled       8 of 8 (0 failed)" in out
        and "max subrequests in one consumer invocation" in out
    )
    assert "crawled 8/8 streamers" in err


def test_crawl_without_credentials_says_what_to_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, "--db", str(tmp_path / "c.sqlite"), "crawl")
    assert (
        code == 2
        and err.strip()
        == "clipcrawler: missing Twitch credentials: set TWITCH_CLIENT_ID and TWITCH_CLIENT_SECRET"
    )
    code, _, err = run_cli(capsys, "--db", str(tmp_path / "c.sqlite"), "crawl", env={"TWITCH_CLIENT_ID": "x"})
    assert code == 2 and "set TWITCH_CLIENT_SECRET" in err and "Traceback" not in err


def test_sql_and_streamers_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "s.sqlite")
    env = {"CLIPCRAWLER_DB": db}
    code, out, err = run_cli(capsys, "streamers", "list", env=env)
    assert code == 2 and f"no database at {db}" in err and not Path(db).exists()  # a typo makes no new file
    run_cli(capsys, "demo", "--streamers", "3", "--json", env=env)
    code, out, _ = run_cli(capsys, "streamers", "list", env=env)
    assert code == 0 and "streamer00000" in out and "streamer00002" in out
    code, out, _ = run_cli(capsys, "sql", "SELECT count(*) AS n FROM streamers", "--json", env=env)
    assert json.loads(out) == [{"n": 3}]
    code, _, err = run_cli(capsys, "sql", "SELECT nope", env=env)
    assert code == 2 and "no such column: nope" in err
