"""`clipcrawler backfill` as a user runs it: the installed script, against the emulator's years of history."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from local.clock import VirtualClock
from local.emulated_history import history_world
from shared.timefmt import parse_rfc3339
from tests.cli_support import run, run_in_pty

LOGIN = "streamer00003"
REACHED = re.compile(rf"{LOGIN}: reached \S+ \S+ of .*, (\d+) clips found")


@pytest.mark.parametrize(
    ("flag", "value", "words"),
    [
        ("--since", "yesterday", "--since has value 'yesterday'; expected a date like 2021-03-01"),
        ("--since", "2021-02-30", "--since has value '2021-02-30', which is not a calendar date"),
        ("--since", "2009-01-01", "--since has value '2009-01-01', before Twitch existed"),
        ("--since", "2999-01-01", "--since has value '2999-01-01', which is not in the past"),
        ("--until", "2020-01-01", "--until has value '2020-01-01', which is not after --since '2022-01-01'"),
    ],
)
def test_a_bad_date_is_one_line_and_a_non_zero_exit(
    tmp_path: Path, flag: str, value: str, words: str
) -> None:
    args = ["--db", "d.sqlite", "backfill", LOGIN, "--emulated", "--since", "2022-01-01", flag, value]
    done = run(args, cwd=tmp_path)
    assert done.code != 0 and done.out == ""
    assert done.err.strip().count("\n") == 0 and words in done.err, done.err
    assert not (tmp_path / "d.sqlite").exists()  # nothing was started


def test_an_unknown_login_is_named(tmp_path: Path) -> None:
    done = run(
        ["--db", "d.sqlite", "backfill", "nosuchstreamer", "--emulated", "--since", "2026-01-01"],
        cwd=tmp_path,
    )
    assert done.code != 0 and "'nosuchstreamer'" in done.err and done.err.strip().count("\n") == 0, done.err


def test_ctrl_c_mid_backfill_then_the_rerun_resumes_it(tmp_path: Path) -> None:
    args = [
        "--db",
        "d.sqlite",
        "backfill",
        LOGIN,
        "--emulated",
        "--since",
        "2022-01-01",
        "--concurrency",
        "1",
    ]
    sent: list[int] = []

    def interrupt(output: str, process: subprocess.Popen[bytes]) -> None:
        found = [int(n) for n in REACHED.findall(output)]
        if not sent and found and max(found) >= 500:
            process.send_signal(signal.SIGINT)
            sent.append(max(found))

    first = run_in_pty(args, cwd=tmp_path, on_output=interrupt)
    assert sent and first.code == 130, first.out
    assert "Traceback" not in first.out and "run `clipcrawler backfill` again" in first.out, first.out
    with sqlite3.connect(tmp_path / "d.sqlite") as conn:
        status, reached, pages = conn.execute("SELECT status, window_start, pages FROM jobs").fetchone()
    assert status == "queued" and reached is not None and pages > 0

    second = run([*args, "--json"], cwd=tmp_path, timeout=120)
    assert second.code == 0, second.err
    assert "resuming 1 unfinished jobs of earlier runs (1 of run 1)" in second.err
    assert "backfill run" not in second.err  # no second run: the first one goes on
    report = json.loads(second.out)
    assert report["runs"] == [1] and [j["status"] for j in report["jobs"]] == ["done"]
    with sqlite3.connect(tmp_path / "d.sqlite") as conn:
        runs = conn.execute("SELECT count(*) FROM runs").fetchone()[0]
        clips, distinct, oldest = conn.execute(
            "SELECT count(*), count(DISTINCT id), min(created_at) FROM clips"
        ).fetchone()
        new = conn.execute("SELECT clips_new FROM jobs").fetchone()[0]
    assert runs == 1 and clips == distinct == new > 5_000 and oldest >= "2022-01-01"
    # The emulated world is a function of the seed and of time: the same one, built here, is the truth.
    with sqlite3.connect(tmp_path / "d.sqlite") as conn:
        crawl_from, crawl_to, streamer_id = conn.execute(
            "SELECT crawl_from, crawl_to, streamer_id FROM jobs"
        ).fetchone()
        stored = {row[0] for row in conn.execute("SELECT id FROM clips")}
    world = history_world(1, VirtualClock(time.time()))
    truth = {c["id"] for c in world.clips(streamer_id, parse_rfc3339(crawl_from), parse_rfc3339(crawl_to))}
    assert truth - stored == set() and stored - truth == set()

    shown = run(["--db", "d.sqlite", "runs", "show", "1"], cwd=tmp_path)
    assert shown.code == 0 and "backfill from 2022-01-01T00:00:00Z" in shown.out, shown.out
    assert f"{LOGIN}: done 2022-01-01.." in shown.out
