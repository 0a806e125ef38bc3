"""A smoke run of the benchmark: it runs, writes its files, and its figures agree with each other.

No timing is asserted anywhere: benchmarks are not tests.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from bench import pyodide_cpu
from bench.cli import main, run_benchmark
from bench.clock import ScaledClock
from bench.d1 import D1Model, Latency
from bench.figures import rate_limit_share
from bench.floor import floor, pages_needed
from bench.probe import Probe
from bench.report import target_value, write
from bench.run import expected_clips, percentile
from bench.scenarios import BenchConfig
from bench.sqlite import SqliteProcess
from bench.targets import check_targets
from local.sqlite_db import D1Error
from shared.ports import Result, Statement

# Tiny and fast: latencies of a few ms, and a bucket large enough that pacing never makes a run wait long
# (S1 and S3 run in real time).
TINY = BenchConfig(
    helix_latency_ms=4,
    helix_jitter_ms=1,
    d1_latency_ms=1,
    d1_jitter_ms=0.5,
    concurrency=8,
    rate_limit=1_200,
    s1_streamers=12,
    s2_streamers=60,
    s2_clock_factor=40,
    s2_baseline_sample=10,
    s3_clips=1_500,
    s4_streamers=30,
    s4_heavy_clips=1_500,
    s4_looping=2,
    s4_empty_page=2,
    s4_clock_factor=1,
)
REQUIRED = (
    "wall_s",
    "baseline_wall_s",
    "speedup",
    "floor_s",
    "subrequests_max",
    "subrequests_p95",
    "d1_calls_per_page",
    "http_429_share",
    "rate_limit_share",
    "lost",
    "helix_calls_needed",
    "calls_over_needed",
    "calls_per_streamer",
    "token_mints",
)


@pytest.fixture(scope="module")
def results() -> dict[str, dict[str, Any]]:
    return run_benchmark(TINY, isolate=False)


def test_every_scenario_has_the_required_figures(results: dict[str, dict[str, Any]]) -> None:
    assert list(results) == ["S1", "S2", "S3", "S4"]
    for name, figures in results.items():
        missing = [key for key in REQUIRED if key not in figures]
        assert not missing, (name, missing)
        assert figures["wall_s"] > 0 and figures["baseline_wall_s"] > 0 and figures["floor_s"] > 0


def test_s1_reports_the_median_of_its_design_runs(results: dict[str, dict[str, Any]]) -> None:
    runs = results["S1"]["wall_s_runs"]
    assert len(runs) == 5 and results["S1"]["wall_s"] == sorted(runs)[2]
    assert results["S2"]["wall_s_runs"] == [results["S2"]["wall_s"]]


def test_ratios_are_computed_from_the_figures_beside_them(results: dict[str, dict[str, Any]]) -> None:
    for figures in results.values():
        assert figures["speedup"] == pytest.approx(figures["baseline_wall_s"] / figures["wall_s"])
        assert figures["wall_over_floor"] == pytest.approx(figures["wall_s"] / figures["floor_s"])
        assert figures["http_429_share"] == pytest.approx(figures["http_429"] / figures["helix_api_requests"])
        # The token request goes to id.twitch.tv, not to the Helix API.
        assert figures["helix_api_requests"] < figures["helix_calls"]
        assert 0 < figures["rate_limit_share"] <= 1


def test_the_crawl_is_complete_and_its_own_counts_agree(results: dict[str, dict[str, Any]]) -> None:
    for name, figures in results.items():
        run = figures["run"]
        assert run["status"] == "finished", name
        assert run["jobs_done"] == run["jobs_total"] == figures["streamers"], name
        assert figures["subrequests_match_self_reported"], name
        assert run["pages"] == figures["pages"] >= figures["pages_needed"] >= figures["streamers"], name
        assert figures["lost"] == 0 and figures["expected_clips"] > 0, name
        assert figures["stored_clips"] >= figures["expected_clips"], name


def test_per_invocation_figures_are_consistent(results: dict[str, dict[str, Any]]) -> None:
    for figures in results.values():
        assert 1 <= figures["subrequests_p95"] <= figures["subrequests_max"]
        assert figures["external_max"] <= figures["subrequests_max"]
        assert figures["d1_max"] <= figures["internal_max"] <= figures["subrequests_max"]
        assert sum(figures["outcomes"].values()) == figures["consumer_invocations"]
        assert sum(figures["invocations_by_message"].values()) == figures["consumer_invocations"]
        assert figures["d1_calls"] >= figures["pages"] + figures["consumer_invocations"]
    s3 = results["S3"]
    assert s3["external_max"] <= 50 and s3["internal_max"] <= 50


def test_calls_are_measured_against_the_calls_needed(results: dict[str, dict[str, Any]]) -> None:
    for name, figures in results.items():
        first = figures["crawls"][0]
        assert figures["helix_calls_needed"] == first["needed"] >= figures["streamers"], name
        # The upkeep's calls after the crawls (Get Games, Get Clips by id) are counted apart from the crawl's.
        assert first["helix_calls"] + first["upkeep_calls"] == figures["helix_calls"], name
        assert first["helix_calls"] >= first["needed"], name
        assert figures["calls_over_needed"] == pytest.approx(first["helix_calls"] / first["needed"]), name
    # And the token, and the upkeep's Get Games (the first crawl names its games; S1's clips are too young to
    # check).
    assert (
        results["S1"]["helix_calls"]
        == results["S1"]["helix_calls_needed"] + 1 + results["S1"]["upkeep_calls"]
    )
    s3 = results["S3"]
    assert len(s3["crawls"]) == 2 and s3["crawls"][1]["needed"] >= 15
    # The second crawl starts from the span the first one found: no walk thrown away at the cap.
    assert s3["second_crawl_over_needed"] <= 1.10 < s3["calls_over_needed"]


def test_s4_plays_every_trap_and_loses_nothing(results: dict[str, dict[str, Any]]) -> None:
    s4 = results["S4"]
    assert s4["lost"] == 0 and s4["revocations"] == 1
    assert s4["token_mints"] == s4["revocations"] + 1
    assert s4["jobs"].get("done/repeated_cursor") == TINY.s4_looping
    assert s4["helix_calls"] > s4["helix_calls_needed"]  # the traps cost calls: 401s, 503s, loops
    assert s4["crawls"][0]["heaviest"] >= 15  # the heavy streamer past the cap


def test_the_baseline_is_the_naive_design(results: dict[str, dict[str, Any]]) -> None:
    s1 = results["S1"]
    # One INSERT per clip plus one read of the streamer list, all in one invocation.
    assert s1["baseline_d1_calls"] == s1["baseline_rows_upserted"] + 1
    assert s1["baseline_rows_per_d1_call"] < 1 <= s1["rows_per_d1_call"]
    assert s1["baseline_subrequests_max"] == s1["baseline_helix_calls"] + s1["baseline_d1_calls"]
    s2 = results["S2"]
    assert s2["baseline_extrapolated"] and s2["baseline_streamers"] == TINY.s2_baseline_sample
    assert not s1["baseline_extrapolated"] and s1["baseline_streamers"] == TINY.s1_streamers
    # S3's streamer has more clips than Helix hands out for one query: the naive loop cannot get them all.
    assert results["S3"]["baseline_lost"] > 0


def test_report_and_json_are_written(results: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    meta = {
        "command": "test",
        "generated_at": "now",
        "platform": "test",
        "python": "3",
        "cpus": 1,
        "load_average": "0",
        "isolated": False,
        "took_s": 1.0,
    }
    report, figures = write(tmp_path, results, check_targets(results), TINY, meta)
    document = json.loads(figures.read_text())
    assert {"S1", "S2", "S3", "S4", "targets", "meta"} <= set(document)
    text = report.read_text()
    for name in ("S1", "S2", "S3", "S4"):
        assert f"## {name}: " in text
    assert "extrapolated" in text and "| Target | Measured | Met |" in text


def test_the_command_line_writes_both_files(tmp_path: Path) -> None:
    code = main(
        [
            "--scenarios",
            "s1",
            "--s1-streamers",
            "3",
            "--helix-latency-ms",
            "2",
            "--helix-jitter-ms",
            "0",
            "--d1-latency-ms",
            "1",
            "--d1-jitter-ms",
            "0",
            "--in-process",
            "--services-in-process",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    figures = (tmp_path / "results.json").read_text()
    document = json.loads(figures)
    assert list(k for k in document if k.startswith("S")) == ["S1"]
    assert "--s1-streamers 3" in document["meta"]["command"]
    assert "--services-in-process" in document["meta"]["command"]
    assert "in the crawler's process" in (tmp_path / "report.md").read_text()
    (tmp_path / "report.md").unlink()
    assert main(["--rerender", "--out", str(tmp_path)]) == 0
    assert "## S1: " in (tmp_path / "report.md").read_text()
    assert (tmp_path / "results.json").read_text() == figures


def test_unknown_scenarios_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match="'S9'"):
        main(["--scenarios", "S9", "--in-process"])


def test_the_floor_takes_the_largest_bound() -> None:
    args: dict[str, Any] = dict(
        helix_s=0.08, d1_s=0.015, producer_steps=[(0, 1), (1, 0), (0, 2)], rate_limit=800
    )
    spread = floor([1] * 200, concurrency=50, **args)
    assert spread.bound == "concurrency" and spread.seconds == pytest.approx(0.125 + 200 * 0.11 / 50)
    heavy = floor([50], concurrency=50, **args)
    assert heavy.bound == "longest streamer" and heavy.seconds == pytest.approx(0.125 + 0.015 + 50 * 0.095)
    limited = floor([1] * 10_000, concurrency=50, **args)
    assert limited.bound == "rate limit"
    assert limited.rate_limit_s == pytest.approx(0.015 + 12 * 60 + 0.08 + 0.015)
    assert [pages_needed(n) for n in (0, 1, 100, 101)] == [1, 1, 1, 2]


def test_rate_limit_share_counts_the_windows_a_run_could_use() -> None:
    assert rate_limit_share(800, 59.0, 800) == 1.0
    assert rate_limit_share(800, 61.0, 800) == 0.5
    assert rate_limit_share(0, 0.0, 800) == 0.0


def test_percentile_is_nearest_rank() -> None:
    values = list(range(1, 101))
    assert percentile(values, 95) == 95 and percentile(values, 100) == 100 and percentile([], 95) == 0
    assert percentile([3, 3, 3, 12], 95) == 12


def test_a_streamer_owes_the_clips_of_the_lookback_before_its_first_fetch() -> None:
    candidates = {"a": [(100.0, "old"), (200.0, "new")], "b": [(100.0, "never")]}
    owed = expected_clips(candidates, {"a": 150.0 + 3600}, end=1e9, lookback_s=3600)
    assert owed == {"a": {"new"}, "b": set()}


def test_the_producer_chain_is_counted_up_to_its_first_send() -> None:
    probe = Probe()
    with probe.invocation("producer") as tally:
        for kind in ("d1", "d1", "helix", "queue", "d1", "queue"):
            probe.count(kind)
    assert tally.before_first_send == (1, 2) and (tally.helix, tally.d1, tally.queue) == (1, 3, 2)
    assert probe.producer == [tally] and probe.totals.total == 6 and not probe.consumer


def test_producer_calls_in_flight_together_make_one_step_of_the_floor() -> None:
    probe = Probe()
    with probe.invocation("producer") as tally:
        probe.count("d1")
        probe.finished("d1")
        probe.count("helix")  # the token, minted while the slice is read
        probe.count("d1")
        probe.finished("d1")
        probe.finished("helix")
        probe.count("d1")
        probe.finished("d1")
        probe.count("queue")
        probe.count("d1")
        probe.finished("d1")
    assert tally.steps == [[0, 1], [1, 1], [0, 1]]
    overlapped = floor(
        [1] * 200, concurrency=50, helix_s=0.08, d1_s=0.015, producer_steps=tally.steps, rate_limit=None
    )
    assert overlapped.producer_s == pytest.approx(0.015 + 0.08 + 0.015)


async def test_d1_round_trips_overlap_while_the_sql_does_not() -> None:
    events: list[tuple[str, object]] = []

    class Wire:
        def now(self) -> float:
            return 0.0

        async def sleep(self, seconds: float) -> None:
            events.append(("wire", seconds))
            await asyncio.sleep(0)

    class Database:
        async def batch(self, statements: Sequence[Statement]) -> list[Result]:
            events.append(("sql", statements[0].sql))
            return [Result()]

    probe = Probe()
    d1 = D1Model(Database(), Wire(), Latency(0.010), probe=probe)  # type: ignore[arg-type]
    await asyncio.gather(d1.run("SELECT 1"), d1.run("SELECT 2"))
    # Both requests are on the wire before either reaches the database.
    assert events[:2] == [("wire", 0.005), ("wire", 0.005)]
    assert [e for e in events if e[0] == "sql"] == [("sql", "SELECT 1"), ("sql", "SELECT 2")]
    assert d1.calls == probe.totals.d1 == 2


def test_the_scaled_clock_stands_still_until_started() -> None:
    clock = ScaledClock(1_000.0, factor=5)
    assert clock.now() == 1_000.0
    clock.start()
    assert clock.now() >= 1_000.0
    with pytest.raises(ValueError, match="-1"):
        ScaledClock(0.0, factor=-1)


async def test_the_database_process_runs_batches_whole_and_reports_errors_as_d1_does() -> None:
    db = await SqliteProcess.open()
    try:
        insert = Statement("INSERT INTO streamers (id, login, added_at) VALUES (?, ?, ?)", ("1", "a", "t"))
        with pytest.raises(D1Error, match="UNIQUE"):
            await db.batch([insert, insert])  # the second fails: the first is rolled back with it
        assert await db.all("SELECT id FROM streamers") == []
        results = await asyncio.gather(
            *(db.batch([Statement(insert.sql, (str(i), "a", "t"))]) for i in range(20))
        )
        assert [r[0].changes for r in results] == [1] * 20  # answers reach the callers that asked
        assert (await db.first("SELECT count(*) AS n FROM streamers"))["n"] == 20
    finally:
        await db.close()


def test_a_clock_rebuilt_from_the_same_cell_shows_the_same_time() -> None:
    clock = ScaledClock(1_000.0, factor=5)
    twin = ScaledClock(1_000.0, factor=5, start_cell=clock.start_cell)  # as the emulator's process builds it
    assert twin.now() == 1_000.0
    clock.start()
    first, second, again = clock.now(), twin.now(), clock.now()
    assert 1_000.0 <= first <= second <= again


def test_a_missed_target_never_reads_as_its_threshold() -> None:
    # 1.0046 round trips a page against "at most 1" was printed as 1.00 next to "no".
    missed = check_targets({"S1": {"d1_calls_per_page": 1.0046, "speedup": 99.996}})
    checked = {t["figure"]: t for t in missed if t["scenario"] == "S1"}
    assert target_value(checked["d1_calls_per_page"]) == "1.0046"
    assert target_value(checked["speedup"]) == "99.9960"
    met = {
        t["figure"]: t for t in check_targets({"S1": {"d1_calls_per_page": 0.9991}}) if t["scenario"] == "S1"
    }
    assert target_value(met["d1_calls_per_page"]) == "1.00"  # met: two places say enough


def test_pyodide_cpu_counts_only_invocations_that_ran_alone() -> None:
    def call(what: str, cpu: float, *, handler: str = "fetch", overlapped: bool = False) -> dict[str, Any]:
        return {
            "worker": "producer",
            "handler": handler,
            "what": what,
            "cpu_ms": cpu,
            "outside_cpu_ms": cpu / 10,
            "overlapped": overlapped,
        }

    rows = pyodide_cpu.summarise(
        [
            call("GET /runs/1", 20.0),
            call("GET /runs/2/jobs", 40.0),
            call("GET /runs", 900.0, overlapped=True),
            call("0 * * * *", 5.0, handler="scheduled"),
        ]
    )
    runs, cron = rows[0], rows[1]
    assert (runs["kind"], runs["alone"], runs["overlapped"]) == ("GET /runs", 2, 1)  # ids don't split it
    assert (runs["median_ms"], runs["max_ms"], runs["over_free"]) == (30.0, 40.0, 2)
    assert runs["outside_median_ms"] == 3.0
    assert (cron["kind"], cron["over_free"]) == ("0 * * * *", 0)
