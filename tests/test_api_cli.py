"""The API's facts in the terminal (`clipcrawler runs`, `show`, `retry-failed`) and `serve`'s refusals."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from local.cli import main
from tests.test_cli import run_cli


@pytest.fixture
def crawled(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """A database after one emulated crawl of 3 streamers, with the first streamer's job failed."""
    db = str(tmp_path / "runs.sqlite")
    code, _, _ = run_cli(capsys, "--db", db, "demo", "--streamers", "3", "--seed", "5", "--json")
    assert code == 0
    with sqlite3.connect(db) as conn:  # as if its crawl had failed for good
        conn.execute(
            "UPDATE jobs SET status = 'failed', stop_reason = 'failed', "
            "error = 'helix_error: GET /helix/clips answered 500' WHERE id = 1"
        )
        conn.execute("UPDATE runs SET jobs_done = jobs_done - 1, jobs_failed = jobs_failed + 1 WHERE id = 1")
    return db


def test_runs_lists_the_runs(crawled: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "--db", crawled, "runs")
    assert code == 0
    header, _, line = out.splitlines()
    assert header.split() == [
        "run",
        "status",
        "kind",
        "opened",
        "duration",
        "streamers",
        "crawled",
        "failed",
        "new",
        "updated",
    ]
    assert line.split()[:3] == ["1", "finished", "manual"] and line.split()[-5:-2] == ["3", "2", "1"]
    code, out, _ = run_cli(capsys, "--db", crawled, "runs", "--json")
    [run] = json.loads(out)["runs"]
    assert run["jobs"] == {"total": 3, "done": 2, "failed": 1, "pending": 0}


def test_runs_show_prints_the_facts_and_the_failed_jobs(
    crawled: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, "--db", crawled, "runs", "show", "1")
    assert code == 0
    assert "run 1: finished (manual)" in out
    assert "streamers         3 (2 crawled, 1 failed, 0 pending); failure rate 33.3%" in out
    assert "stop reasons      complete 2, failed 1" in out
    assert "failed jobs (first 20):" in out and "streamer00000" in out and "answered 500" in out
    code, out, _ = run_cli(capsys, "--db", crawled, "runs", "show", "1", "--json")
    shown = json.loads(out)
    assert shown["failure_rate"] == 0.3333 and [j["id"] for j in shown["failed_jobs"]] == [1]
    code, _, err = run_cli(capsys, "--db", crawled, "runs", "show", "9")
    assert code == 1 and "no run 9" in err


def test_runs_retry_failed_crawls_the_failed_jobs_again(
    crawled: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--db", crawled, "runs", "retry-failed", "1", "--emulated", "--seed", "5", "--streamers", "3"]
    code, out, _ = run_cli(capsys, *args)
    assert code == 0, out
    assert out.startswith("requeued 1 failed job of run 1\nrun 1: finished")
    assert "(3 crawled, 0 failed, 0 pending)" in out
    code, _, err = run_cli(capsys, *args)
    assert code == 1 and "run 1 has no failed jobs to retry" in err


def test_runs_retry_failed_needs_twitch_credentials_unless_emulated(
    crawled: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "--db", crawled, "runs", "retry-failed", "1")
    assert code == 2 and "missing Twitch credentials" in err


@pytest.mark.parametrize(
    ("env", "args", "words"),
    [
        ({}, [], "set CLIPCRAWLER_API_TOKEN"),
        ({"CLIPCRAWLER_API_TOKEN": "short"}, [], "use at least 16"),
        ({"CLIPCRAWLER_API_TOKEN": "x" * 32}, ["--host", "0.0.0.0"], "loopback only"),
        ({"CLIPCRAWLER_API_TOKEN": "x" * 32}, ["--port", "0"], "--port"),
        ({"CLIPCRAWLER_API_TOKEN": "x" * 32}, [], "missing Twitch credentials"),
    ],
)
def test_serve_refuses_to_start_unsafely(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], env: dict[str, str], args: list[str], words: str
) -> None:
    code = main(["--db", str(tmp_path / "s.sqlite"), "serve", *args], env)
    _, err = capsys.readouterr()
    assert code == 2 and words in err and "x" * 32 not in err
