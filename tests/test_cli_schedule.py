"""`clipcrawler schedule`: the producer's cron ticked locally, from a terminal or from a system crontab."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
from pathlib import Path

from tests.cli_support import run, run_in_pty


def test_once_opens_the_current_slots_scheduled_run_and_only_once(tmp_path: Path) -> None:
    assert run(["--db", "s.sqlite", "demo", "--streamers", "5", "--json"], cwd=tmp_path).code == 0
    first = run(["--db", "s.sqlite", "schedule", "--once", "--emulated", "--streamers", "5"], cwd=tmp_path)
    assert first.code == 0, first.err
    assert first.out.startswith("clipcrawler schedule: run 2 finished") and "not crawled" in first.out
    again = run(["--db", "s.sqlite", "schedule", "--once", "--emulated", "--streamers", "5"], cwd=tmp_path)
    if "already has run 2: nothing to do" not in again.err:  # the minute turned between the two
        assert again.out.startswith("clipcrawler schedule: run 3"), again.err
    with sqlite3.connect(tmp_path / "s.sqlite") as conn:
        kinds = conn.execute("SELECT kind, slot LIKE 'cron:%' FROM runs WHERE id > 1").fetchall()
    assert kinds and all(kind == ("scheduled", 1) for kind in kinds)


def test_it_waits_for_the_cron_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    assert run(["--db", "s.sqlite", "demo", "--streamers", "3", "--json"], cwd=tmp_path).code == 0

    sent: list[bool] = []

    def interrupt_once_waiting(output: str, process: subprocess.Popen[bytes]) -> None:
        if "Ctrl-C to stop" in output and not sent:
            process.send_signal(signal.SIGINT)
            sent.append(True)

    result = run_in_pty(
        ["--db", "s.sqlite", "schedule", "--emulated", "--streamers", "3", "--cron", "0 0 1 1 *"],
        cwd=tmp_path,
        timeout=30,
        on_output=interrupt_once_waiting,
    )
    assert "ticking the producer on 0 0 1 1 * (UTC); next run at 20" in result.out, result.out
    assert result.code == 130 and "Traceback" not in result.out, result.out


def test_a_bad_cron_expression_is_one_line(tmp_path: Path) -> None:
    result = run(
        ["--db", "s.sqlite", "schedule", "--emulated", "--cron", "61 * * * *"], cwd=tmp_path, timeout=10
    )
    assert result.code == 2 and result.err.strip().count("\n") == 0, result.err
    assert "'61' is out of range for the minute" in result.err
