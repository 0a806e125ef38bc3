from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from local.activity_mix import START, WeekActivity
from local.clock import VirtualClock
from local.cost_model import (
    DAYS_PER_MONTH,
    Projection,
    Usage,
    day_against_free,
    headroom,
    queue_operations,
    render,
)
from local.cost_run import measure
from local.d1_meter import kind_of, node_available, schema_statements
from local.emulated import emulator_client, emulator_settings
from local.emulator import EmulatorConfig, HelixWorld, create_emulator_app
from local.runner import LocalRunner
from local.sqlite_db import SqliteDatabase
from producer.streamers import add_streamers
from shared.config import Settings

CLI = Path(sys.executable).parent / "clipcrawler"
WEEK = Path(__file__).resolve().parent.parent / "bench" / "week.json"
needs_node = pytest.mark.skipif(
    not node_available(), reason="node and the pinned miniflare (npm ci) are needed"
)


@pytest.mark.parametrize(
    ("messages", "retries", "size", "ops"),
    [
        (0, 0, 1024, 0),
        (1, 0, 1024, 3),  # write, read, delete
        (100, 5, 1024, 305),  # each retry is one more read
        (1, 0, 64 * 1024, 3),
        (1, 0, 64 * 1024 + 1, 6),  # every 64 KB started is charged
        (4800, 0, 200, 14_400),  # the naive day from the issue: 200 streamers hourly
    ],
)
def test_queue_operations(messages: int, retries: int, size: int, ops: int) -> None:
    assert queue_operations(messages, retries, size) == ops


@pytest.mark.parametrize(("messages", "retries", "size"), [(-1, 0, 1), (1, -1, 1), (1, 0, 0)])
def test_queue_operations_refuses_nonsense(messages: int, retries: int, size: int) -> None:
    with pytest.raises(ValueError, match=str(min(messages, retries, size))):
        queue_operations(messages, retries, size)


@pytest.mark.parametrize(
    ("used", "quota", "left"),
    [(0, 10_000, 1.0), (8_000, 10_000, 0.2), (10_000, 10_000, 0.0), (14_400, 10_000, -0.44), (5, None, None)],
)
def test_headroom(used: float, quota: int | None, left: float | None) -> None:
    assert headroom(used, quota) == (None if left is None else pytest.approx(left))


def test_projection_scales_a_crawl_to_a_day_and_a_month_against_both_plans() -> None:
    crawl = Usage(
        worker_requests=201, queue_operations=600, d1_rows_read=10_000, d1_rows_written=2_000, helix_calls=202
    )
    rows = {r["metric"]: r for r in Projection(crawl, 24).rows()}
    assert (
        rows["queue_operations"]["day"] == 14_400
        and rows["queue_operations"]["month"] == 14_400 * DAYS_PER_MONTH
    )
    assert rows["queue_operations"]["free_headroom"] == pytest.approx(-0.44)
    assert rows["queue_operations"]["paid_headroom"] == pytest.approx(1 - 432_000 / 1_000_000)
    assert rows["d1_rows_written"]["day"] == 48_000 and rows["d1_rows_written"][
        "free_headroom"
    ] == pytest.approx(0.52)
    assert rows["d1_rows_read"]["free_headroom"] == pytest.approx(1 - 240_000 / 5_000_000)
    assert (
        rows["worker_requests"]["paid_monthly"] is None and rows["worker_requests"]["paid_headroom"] is None
    )
    assert rows["helix_calls"]["day"] == 202 * 24 and rows["helix_calls"]["free_headroom"] is None
    assert "-44%" in render(Projection(crawl, 24))


def test_a_day_against_free_names_what_it_exceeds() -> None:
    verdicts = {v["metric"]: v for v in day_against_free(Usage(50_000, 14_400, 1_000_000, 120_000, 0))}
    assert {m for m, v in verdicts.items() if v["exceeded"]} == {"queue_operations", "d1_rows_written"}
    assert "helix_calls" not in verdicts  # Twitch's limit is a rate, not a Cloudflare quota


def test_usage_adds_and_scales() -> None:
    assert Usage(1, 2, 3, 4, 5) + Usage(1, 1, 1, 1, 1) == Usage(2, 3, 4, 5, 6)
    assert Usage(1, 2, 3, 4, 5).times(2) == Usage(2, 4, 6, 8, 10)


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("INSERT INTO clips (id) SELECT 1", "insert clips"),
        ("  update jobs SET x = 1", "update jobs"),
        ("SELECT a FROM streamers AS s JOIN jobs", "select streamers"),
        ("DELETE FROM clip_views WHERE 1", "delete clip_views"),
        ("INSERT OR IGNORE INTO runs VALUES (1)", "insert runs"),
    ],
)
def test_statement_kinds(sql: str, kind: str) -> None:
    assert kind_of(sql) == kind


def test_the_schema_splits_into_whole_statements() -> None:
    statements = schema_statements()
    assert any(s.startswith("CREATE TABLE IF NOT EXISTS clips") for s in statements)
    assert all(s.rstrip().endswith(";") for s in statements)


@needs_node
async def test_a_crawl_on_miniflare_d1_is_metered_and_changed_only_writes_fewer_rows() -> None:
    settings = Settings()
    changed = await measure(settings, streamers=3, crawls=1, views_settle_s=1800)
    rewritten = await measure(
        settings.with_(clip_writes="rewrite-everything"), streamers=3, crawls=1, views_settle_s=1800
    )
    assert (
        changed.first.d1_rows_written > 0 and changed.first.d1_rows_read > 0
    )  # D1's own meta, not zero-filled
    assert changed.first == rewritten.first  # nothing stored yet: the two upserts write the same
    assert changed.steady[0].d1_rows_written < rewritten.steady[0].d1_rows_written
    assert changed.steady[0].queue_operations == 3 * (
        changed.steady[0].worker_requests - 1
    )  # one message each


async def crawl_seed_like_streamers(path: Path, streamers: int, hours: int) -> None:
    """A database as a user's would be: `streamers` seed-like streamers crawled hourly for `hours` hours."""
    clock = VirtualClock(START)
    world = HelixWorld(7, streamers, clock=clock, activity=WeekActivity(7, START), views_settle_s=3 * 3600)
    config = EmulatorConfig(rate_limit_points=100_000)
    http = emulator_client(create_emulator_app(world, config))
    settings = emulator_settings(Settings(), config).with_(http_backoff_seconds=0)
    db = await SqliteDatabase.open(str(path))
    try:
        await add_streamers(db, http, settings, clock, [s.login for s in world.all_streamers()])
        runner = LocalRunner(db, http, settings, clock, concurrency=50, seed=7)
        for hour in range(hours + 1):
            clock.set(START + hour * 3600)
            await runner.crawl(scheduled_time=clock.now())
    finally:
        await db.close()
        await http.aclose()


def cost_cli(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLIPCRAWLER_", "TWITCH_"))}
    return subprocess.run(
        [str(CLI), *argv], env=env, capture_output=True, text=True, timeout=300, check=False
    )


@needs_node
def test_cost_measures_your_streamers_and_agrees_with_the_simulated_week(tmp_path: Path) -> None:
    path = tmp_path / "yours.sqlite"
    asyncio.run(crawl_seed_like_streamers(path, 200, 12))
    # A smaller Miniflare calibration keeps this test short; it mostly moves rows read (the producer's
    # scans grow with the table), which have ~95% headroom.
    done = cost_cli("--db", str(path), "cost", "--json", "--calibrate-streamers", "50")
    assert done.returncode == 0, done.stderr
    measured = json.loads(done.stdout)
    assert measured["world"]["name"] == "yours" and measured["world"]["streamers"] == 200
    assert str(path) in measured["world"]["source"]
    assert measured["view_count_step"] == 0  # the shipped default: exact view counts
    week = next(w for w in json.loads(WEEK.read_text())["weeks"] if w["schedule"] == "adaptive")
    expected = {q["metric"]: q["headroom"] for q in week["free_quotas_worst_day"]}
    for quota in measured["first_day_free"]:
        mine, bench = quota["headroom"], expected[quota["metric"]]
        assert (mine >= 0) == (bench >= 0) and abs(mine - bench) <= 0.15, (quota["metric"], mine, bench)
    day = {r["metric"]: r["free_headroom"] for r in measured["projection"]["table"]}
    for metric, bench in expected.items():  # the steady day after: the same picture, a little more room
        assert (day[metric] >= 0) == (bench >= 0) and abs(day[metric] - bench) <= 0.15, (
            metric,
            day[metric],
            bench,
        )


@needs_node
def test_cost_says_which_world_it_measured(tmp_path: Path) -> None:
    missing = tmp_path / "none.sqlite"
    done = cost_cli("--db", str(missing), "cost", "--streamers", "8", "--calibrate-streamers", "4")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("measured world: seed-like: 8 streamers, 2 streaming daily")
    assert f"{missing} has no active streamers" in done.stdout and "headroom" in done.stdout
    assert not missing.exists()  # measuring never creates a database
    busy = cost_cli("--db", str(missing), "cost", "--world", "busy", "--streamers", "3", "--crawls", "1")
    assert busy.returncode == 0, busy.stderr
    assert busy.stdout.startswith("measured world: busy: 3 streamers, every one clipping around the clock")
    refused = cost_cli("--db", str(missing), "cost", "--world", "yours")
    assert refused.returncode == 2 and f"{missing} has no active streamers" in refused.stderr
    assert "Traceback" not in refused.stderr and len(refused.stderr.strip().splitlines()) == 1


def test_cost_without_miniflare_says_what_to_run_and_where(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A fresh clone after `make demo` has no node_modules: the one line must say how to get them."""
    from local.cli import main
    from local.commands import cost as cost_command
    from local.d1_meter import ROOT

    monkeypatch.setattr(cost_command, "node_available", lambda: False)
    assert main(["cost"], {}) == 2
    err = capsys.readouterr().err
    assert f"run `npm ci` in {ROOT}" in err and len(err.strip().splitlines()) == 1
