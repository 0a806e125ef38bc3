"""Ctrl-C in a terminal during `clipcrawler demo`, then the next demo finishes the job (issue 13, finding
2)."""

from __future__ import annotations

import random
import re
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.cli_support import run, run_in_pty

BAR = re.compile(r"(\d+)/200 streamers")


def interrupt_at(done_at_least: int, times: int):
    """An on_output hook: once the bar shows `done_at_least` streamers done, send SIGINT `times` times."""
    sent = []

    def hook(output: str, process: subprocess.Popen[bytes]) -> None:
        shown = [int(n) for n in BAR.findall(output)]
        if not sent and shown and max(shown) >= done_at_least:
            for _ in range(times):
                process.send_signal(signal.SIGINT)
            sent.append(max(shown))

    return hook, sent


@pytest.mark.parametrize("times", [1, 2])
def test_ctrl_c_mid_demo_then_the_next_demo_finishes_every_streamer_once(tmp_path: Path, times: int) -> None:
    seed = random.randrange(1_000_000)
    rng = random.Random(seed)
    done_at_least = rng.randrange(0, 120)
    hook, sent = interrupt_at(done_at_least, times)
    # Ten invocations at once keep a 200-streamer demo going long enough to be interrupted part-way.
    first = run_in_pty(
        ["--db", "d.sqlite", "demo", "--streamers", "200", "--concurrency", "10"],
        cwd=tmp_path,
        on_output=hook,
    )
    context = f"(seed {seed}: SIGINT x{times} at {sent} done)\n{first.out}"
    assert sent and first.code == 130, context
    assert "Traceback" not in first.out and "stopping: no new streamer is started" in first.out, context
    assert re.search(
        r"not crawled +\d+ of 200 active streamers: \d+ left unfinished when the run was interrupted",
        first.out,
    ), context
    with sqlite3.connect(tmp_path / "d.sqlite") as conn:
        (status,) = conn.execute("SELECT status FROM runs WHERE id = 1").fetchone()
        leased = conn.execute("SELECT count(*) FROM jobs WHERE status = 'running'").fetchone()[0]
        left = conn.execute("SELECT count(*) FROM jobs WHERE status = 'queued'").fetchone()[0]
    assert status == "running" and left > 0, context
    assert leased == 0, context  # every lease handed back, even on the second Ctrl-C

    second = run(["--db", "d.sqlite", "demo", "--streamers", "200", "--json"], cwd=tmp_path)
    assert second.code == 0, second.err
    assert f"resuming {left} unfinished jobs of earlier runs ({left} of run 1)" in second.err
    with sqlite3.connect(tmp_path / "d.sqlite") as conn:
        run1 = conn.execute(
            "SELECT status, jobs_total, jobs_done, jobs_failed FROM runs WHERE id = 1"
        ).fetchone()
        per_streamer = conn.execute(
            "SELECT count(DISTINCT streamer_id), count(*) FROM jobs WHERE run_id = 1 AND status = 'done'"
        ).fetchone()
        clips, distinct = conn.execute("SELECT count(*), count(DISTINCT id) FROM clips").fetchone()
        counted_new = conn.execute("SELECT sum(clips_new) FROM runs").fetchone()[0]
        unfinished = conn.execute(
            "SELECT count(*) FROM jobs WHERE status NOT IN ('done', 'failed')"
        ).fetchone()[0]
    assert run1 == ("finished", 200, 200, 0), context
    assert per_streamer == (200, 200)  # every streamer of the interrupted run crawled, each once
    assert clips == distinct == counted_new > 0  # no clip stored or counted as new twice
    assert unfinished == 0
