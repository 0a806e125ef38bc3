from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from local.cli import main
from local.clock import VirtualClock
from local.emulator import HelixWorld
from local.soak import SoakConfig, SoakReport, check_database, run_soak
from local.sqlite_db import SqliteDatabase

SMALL = SoakConfig(streamers=30, seed=3, ticks=2, concurrency=5)


async def test_a_small_soak_loses_nothing_under_every_fault() -> None:
    # At 5% a 30-streamer soak arms a crash or two, and whether one fires depends on which invocation draws
    # it (the order invocations interleave in); 20% makes "a consumer crashed" certain rather than luck.
    report = await run_soak(replace(SMALL, crash_rate=0.2))
    assert (
        report.lost_clips,
        report.duplicate_clips,
        report.stuck_jobs,
        report.dlq_entries,
        report.failed_jobs,
    ) == (0, 0, 0, 0, 0)
    assert report.ok and report.within_limits
    # Every streamer on the first tick; on the second only those the adaptive schedule finds due or live.
    assert 30 < report.jobs <= 60 and report.runs == 2
    assert report.clips >= report.expected_clips > 0
    injected = Counter(report.injected)  # which kinds were drawn depends on the order of requests
    assert injected["helix.token_expiry"] == 1
    assert injected["consumer.crashed"] > 0
    assert injected["queue.duplicate_concurrent"] + injected["queue.duplicate_later"] > 0
    assert injected["helix.server_error_500"] + injected["helix.server_error_503"] > 0
    assert 0 < report.max_external <= report.limits[0] and 0 < report.max_internal <= report.limits[1]


async def test_extra_faults_lose_nothing_either() -> None:
    config = replace(SMALL, seed=5, reorder_rate=0.5, delay_rate=0.1, timeout_rate=0.05, rate_limit_rate=0.05)
    report = await run_soak(config)
    assert report.ok, report.render()
    assert report.injected["queue.reordered"] and report.injected["queue.delayed"]
    assert report.injected["helix.read_timeout"] and report.injected["helix.rate_limit_burst"]


async def test_the_same_seed_gives_the_same_soak() -> None:
    config = replace(SMALL, streamers=15, ticks=1)
    first, second = await run_soak(config), await run_soak(config)
    assert (first.injected, first.outcomes, first.clips) == (second.injected, second.outcomes, second.clips)
    other = await run_soak(replace(config, seed=4))
    assert other.injected != first.injected


async def test_the_checks_find_lost_clips_stuck_jobs_and_dead_letters(tmp_path: Path) -> None:
    config = replace(
        SMALL,
        streamers=10,
        ticks=1,
        duplicate_rate=0,
        crash_rate=0,
        server_error_rate=0,
        rate_limit_rate=0,
        token_expiries=0,
    )
    path = tmp_path / "soak.sqlite"
    assert (await run_soak(config, str(path))).ok
    db = await SqliteDatabase.open(path)
    try:
        world = HelixWorld(config.seed, config.streamers, clock=VirtualClock())
        lost = [r["id"] for r in await db.all("SELECT id FROM clips ORDER BY id LIMIT 3")]
        await db.run("DELETE FROM clips WHERE id IN (?, ?, ?)", *lost)
        job = await db.first("SELECT id FROM jobs ORDER BY id LIMIT 1")
        assert job is not None
        await db.run("UPDATE jobs SET status = 'running' WHERE id = ?", job["id"])
        await db.run(
            "INSERT INTO dead_letters (received_at, source, job_id, body, reason) "
            "VALUES ('2026-09-21T15:00:00Z', 'dlq', NULL, '{}', 'test')"
        )
        checks = await check_database(db, world, [1])
    finally:
        await db.close()
    assert checks.lost == set(lost)
    assert len(checks.stuck) == 1 and checks.stuck[0].startswith(f"{job['id']} ")
    assert checks.dead_letters == 1
    assert checks.duplicates == 0


def test_a_report_with_any_problem_is_not_ok() -> None:
    good = SoakReport(
        config=SMALL,
        lost_clips=0,
        duplicate_clips=0,
        stuck_jobs=0,
        dlq_entries=0,
        failed_jobs=0,
        max_subrequests=5,
        max_external=3,
        max_internal=2,
        limits=(50, 50),
        runs=1,
        jobs=30,
        clips=10,
        expected_clips=10,
        invocations=30,
        outcomes={},
        injected={},
        examples={},
        wall_s=0.1,
    )
    assert good.ok
    for change in (
        {"lost_clips": 1},
        {"duplicate_clips": 1},
        {"stuck_jobs": 1},
        {"dlq_entries": 1},
        {"failed_jobs": 1},
        {"max_external": 51},
        {"max_internal": 51},
    ):
        bad = replace(good, **change)  # type: ignore[arg-type]
        assert not bad.ok
        assert "FAILED" in bad.render() and "replay" in bad.render()


def test_soak_command_prints_json_and_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["soak", "--streamers", "12", "--ticks", "1", "--seed", "2", "--json"], env={}) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True
    assert {"lost_clips", "duplicate_clips", "stuck_jobs", "dlq_entries", "max_subrequests"} <= set(report)
    assert report["config"]["streamers"] == 12


def test_soak_command_prints_the_five_numbers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["soak", "--streamers", "8", "--ticks", "1", "--crashes", "0.2"], env={}) == 0
    out = capsys.readouterr().out
    for label in (
        "lost clips      0",
        "duplicate clips 0",
        "stuck jobs      0",
        "DLQ entries     0",
        "max subrequests per invocation",
    ):
        assert label in out
    assert "5% Helix 5xx" in out and "20% consumer crashes" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["soak", "--duplicates", "1.5"], "a rate is between 0 and 1, got '1.5'"),
        (["soak", "--streamers", "0"], "must be at least 1, got '0'"),
    ],
)
def test_soak_command_refuses_bad_flags(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv, env={})
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_keep_db_refuses_to_overwrite(tmp_path: Path) -> None:
    existing = tmp_path / "old.sqlite"
    existing.write_text("precious")
    with pytest.raises(SystemExit, match="already exists"):
        main(["soak", "--streamers", "5", "--keep-db", str(existing)], env={})
    assert existing.read_text() == "precious"
