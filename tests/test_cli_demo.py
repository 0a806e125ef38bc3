"""The installed `clipcrawler demo`, run again and again on one database, as a new user does (issue 13)."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

from tests.cli_support import run, run_in_pty

BAR = re.compile(r"\[[#.]{30}\] (\d+)/(\d+) streamers")


def test_twenty_demos_in_a_row_on_one_database_all_finish_with_a_summary(tmp_path: Path) -> None:
    """Finding 1: with the progress bar on, 2 demos in 5 ended in "cannot start a transaction within a
    transaction".
    """
    for i in range(20):
        # The last three at full size: the progress bar reads while 50 invocations write. (A demo crawls every
        # active streamer in the database, so once 200 are in, every later demo crawls 200.)
        big = i >= 17
        args = ["--db", "demo.sqlite", "demo", "--streamers", "200" if big else "5"]
        if big or i % 2:
            result = run_in_pty(args, cwd=tmp_path)
            output = result.out
            assert BAR.search(output), output  # the bar was drawn: this really ran on a terminal
            streamers = 200 if big else 5
            assert f"streamers crawled       {streamers} of {streamers} (0 failed)" in output, output
            assert f"not crawled             0 of {streamers} active streamers" in output, output
        else:
            result = run([*args, "--json"], cwd=tmp_path)
            output = result.out + result.err
            summary = json.loads(result.out)
            assert summary["status"] == "finished" and summary["failed"] == 0 and summary["not_crawled"] == 0
        assert result.code == 0, f"demo {i + 1} of 20: exit {result.code}\n{output}"
        assert "Traceback" not in output and "transaction" not in output
    with sqlite3.connect(tmp_path / "demo.sqlite") as conn:
        runs = conn.execute("SELECT count(*), sum(status = 'finished') FROM runs").fetchone()
        unfinished = conn.execute(
            "SELECT count(*) FROM jobs WHERE status NOT IN ('done', 'failed')"
        ).fetchone()
    assert runs == (20, 20) and unfinished == (0,)


def test_global_options_go_before_or_after_the_sub_command(tmp_path: Path) -> None:
    after = run(["demo", "--streamers", "3", "--json", "--db", "after.sqlite"], cwd=tmp_path)
    before = run(["--db", "before.sqlite", "demo", "--streamers", "3", "--json"], cwd=tmp_path)
    assert after.code == before.code == 0, after.err + before.err
    assert (tmp_path / "after.sqlite").exists() and (tmp_path / "before.sqlite").exists()
    listed = run(["runs", "--db", "after.sqlite", "--json"], cwd=tmp_path)
    assert listed.code == 0 and len(json.loads(listed.out)["runs"]) == 1
