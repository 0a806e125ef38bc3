from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from local.export import CLIPS, JOBS, RUNS, TABLES
from tests.test_export_support import (
    HOUR_S,
    FileCrawl,
    all_files,
    database_rows,
    dataset,
    exported_rows,
    file_crawl,
    latest_rows,
    visible_files,
)


@pytest.fixture
async def crawl(tmp_path: Path) -> AsyncIterator[FileCrawl]:
    async with file_crawl(tmp_path / "crawl.sqlite") as crawl:
        yield crawl


def assert_latest_equals_database(crawl: FileCrawl, out: Path) -> None:
    for spec in TABLES:
        assert latest_rows(out, spec) == database_rows(crawl.path, spec), spec.name


async def test_first_export_is_exactly_the_database(crawl: FileCrawl, tmp_path: Path) -> None:
    await crawl.crawl()
    out = tmp_path / "export"
    report = crawl.export(out)

    assert [(t.table, t.mode) for t in report.tables] == [
        ("clips", "full"),
        ("runs", "full"),
        ("jobs", "full"),
        ("games", "full"),
    ]
    for spec in TABLES:
        expected = database_rows(crawl.path, spec)
        assert len(expected) > 0
        table = dataset(out, spec.name).to_table()
        assert exported_rows(table, spec) == expected, spec.name
        assert table.num_rows == len(expected)  # no row twice
        for path in out.joinpath(spec.name).rglob("*.parquet"):
            # The explicit schema survives the round trip: types, UTC timestamps and NOT NULL columns.
            assert pq.read_schema(path).equals(spec.file_schema, check_metadata=False), path
    duck = duckdb.sql(f"SELECT * FROM read_parquet('{out}/clips/**/*.parquet', hive_partitioning = true)")
    types = dict(zip(duck.columns, map(str, duck.types), strict=True))
    assert (types["view_count"], types["created_at"], types["duration"], types["is_featured"]) == (
        "BIGINT",
        "TIMESTAMP WITH TIME ZONE",
        "DOUBLE",
        "BOOLEAN",
    )
    assert types["vod_offset"] == "BIGINT" and types["created_date"] == "DATE"
    assert exported_rows(duck.to_arrow_table(), CLIPS) == database_rows(crawl.path, CLIPS)


async def test_files_are_partitioned_by_creation_date_and_run_date(crawl: FileCrawl, tmp_path: Path) -> None:
    await crawl.crawl()
    crawl.export(tmp_path / "export")

    clips = dataset(tmp_path / "export", "clips").to_table().to_pylist()
    assert len({c["created_date"] for c in clips}) >= 2  # a 24 h lookback spans two days
    assert all(c["created_at"].strftime("%Y-%m-%d") == c["created_date"] for c in clips)
    runs = dataset(tmp_path / "export", "runs").to_table().to_pylist()
    run_dates = {r["id"]: r["created_at"].strftime("%Y-%m-%d") for r in runs}
    jobs = dataset(tmp_path / "export", "jobs").to_table().to_pylist()
    assert jobs and all(j["run_date"] == run_dates[j["run_id"]] for j in jobs)


async def test_incremental_export_adds_only_the_rows_that_changed(crawl: FileCrawl, tmp_path: Path) -> None:
    out = tmp_path / "export"
    await crawl.crawl()
    crawl.export(out)
    first_files = visible_files(out)

    await crawl.crawl(after_s=HOUR_S)  # an hour on: view counts moved, a few clips are new
    report = crawl.export(out)

    assert {t.table: t.mode for t in report.tables} == {
        "clips": "incremental",
        "runs": "incremental",
        "jobs": "incremental",
        "games": "incremental",
    }
    new_files = visible_files(out) - first_files
    assert new_files and first_files <= visible_files(out)
    added = {
        spec.name: pq.ParquetDataset(
            [str(out / f) for f in new_files if f.startswith(spec.name + "/")], partitioning="hive"
        ).read()
        for spec in TABLES
    }
    now = crawl.sql("SELECT max(last_seen_at) FROM clips")[0][0]
    changed = database_rows(crawl.path, CLIPS, "WHERE t.last_seen_at = ?", now)
    assert 0 < len(changed) < len(database_rows(crawl.path, CLIPS))  # some clips did not change
    assert exported_rows(added["clips"], CLIPS) == changed
    assert exported_rows(added["runs"], RUNS) == database_rows(crawl.path, RUNS, "WHERE t.id = 2")
    assert exported_rows(added["jobs"], JOBS) == database_rows(crawl.path, JOBS, "WHERE t.run_id = 2")
    assert report.tables[0].rows == len(changed) and report.tables[0].unchanged > 0
    assert_latest_equals_database(crawl, out)


async def test_the_documented_pyarrow_recipe_gives_the_newest_rows(crawl: FileCrawl, tmp_path: Path) -> None:
    out = tmp_path / "export"
    await crawl.crawl()
    crawl.export(out)
    await crawl.crawl(after_s=HOUR_S)
    crawl.export(out)

    table = ds.dataset(out / "clips", format="parquet", partitioning="hive").to_table()
    newest = table.group_by("id").aggregate([("exported_at", "max")])
    clips = table.join(
        newest, keys=["id", "exported_at"], right_keys=["id", "exported_at_max"], join_type="inner"
    )

    assert table.num_rows > clips.num_rows
    assert exported_rows(clips, CLIPS) == database_rows(crawl.path, CLIPS)


async def test_an_export_with_nothing_changed_writes_no_file(crawl: FileCrawl, tmp_path: Path) -> None:
    out = tmp_path / "export"
    await crawl.crawl()
    crawl.export(out)
    before = all_files(out)

    report = crawl.export(out)

    assert report.rows == 0 and all_files(out) == before
    assert [t.unchanged for t in report.tables] == [len(database_rows(crawl.path, s)) for s in TABLES]


async def test_a_change_in_the_same_second_as_the_last_export_is_exported(
    crawl: FileCrawl, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    await crawl.crawl()
    crawl.export(out)
    clip_id, seen = crawl.sql("SELECT id, last_seen_at FROM clips ORDER BY id LIMIT 1")[0]
    # Same second as every other row, and as the export: only its content tells it apart.
    crawl.sql("UPDATE clips SET view_count = view_count + 1 WHERE id = ?", clip_id)
    assert crawl.sql("SELECT last_seen_at FROM clips WHERE id = ?", clip_id)[0][0] == seen

    report = crawl.export(out)

    assert report.tables[0].rows == 1
    assert_latest_equals_database(crawl, out)


async def test_a_write_that_commits_after_the_export_with_an_older_timestamp_is_exported(
    crawl: FileCrawl, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    await crawl.crawl()
    crawl.export(out)
    clip_id = crawl.sql("SELECT id FROM clips ORDER BY id LIMIT 1")[0][0]
    # A consumer stamped its page, then its batch committed after the export had read: the marker is
    # older than the newest one the export saw, but within the overlap.
    crawl.sql(
        "UPDATE clips SET title = 'late', last_seen_at = strftime('%Y-%m-%dT%H:%M:%SZ', "
        "(SELECT max(last_seen_at) FROM clips), '-120 seconds') WHERE id = ?",
        clip_id,
    )

    report = crawl.export(out)

    assert report.tables[0].rows == 1
    assert_latest_equals_database(crawl, out)


async def test_unfinished_runs_and_jobs_are_exported_again_once_they_change(
    crawl: FileCrawl, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    await crawl.runner.tick()  # the run is open and its jobs queued: nothing drained yet
    crawl.export(out)
    assert {r["status"] for r in dataset(out, "runs").to_table().to_pylist()} == {"running"}
    assert {j["status"] for j in dataset(out, "jobs").to_table().to_pylist()} == {"queued"}

    await crawl.runner.drain()
    report = crawl.export(out)

    assert {t.table: t.rows for t in report.tables}["jobs"] == len(database_rows(crawl.path, JOBS))
    assert_latest_equals_database(crawl, out)
    assert {r["status"] for r in latest_rows(out, RUNS)} == {"finished"}


async def test_a_finished_run_that_changes_without_a_new_timestamp_is_exported(
    crawl: FileCrawl, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    await crawl.crawl()
    crawl.export(out)
    # What retrying a run whose failed jobs cannot be reopened does: counters move, finished_at does not.
    crawl.sql("UPDATE runs SET d1_calls = d1_calls + 1 WHERE id = 1")

    report = crawl.export(out)

    assert {t.table: t.rows for t in report.tables} == {"clips": 0, "runs": 1, "jobs": 0, "games": 0}
    assert_latest_equals_database(crawl, out)


async def test_a_reopened_job_is_exported_while_open_and_again_when_done(
    crawl: FileCrawl, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    await crawl.crawl()
    crawl.export(out)
    await crawl.crawl(after_s=3 * HOUR_S)
    crawl.export(out)  # run 1's jobs are now far behind the watermark
    # What retrying a failed job does: it is unfinished again, however old.
    crawl.sql("UPDATE jobs SET status = 'queued', error = NULL, finished_at = NULL WHERE id = 1")

    assert {t.table: t.rows for t in crawl.export(out).tables}["jobs"] == 1
    assert_latest_equals_database(crawl, out)
    crawl.sql(
        "UPDATE jobs SET status = 'done', finished_at = ? WHERE id = 1",
        crawl.sql("SELECT max(finished_at) FROM jobs")[0][0],
    )
    assert {t.table: t.rows for t in crawl.export(out).tables}["jobs"] == 1
    assert_latest_equals_database(crawl, out)


async def test_full_export_rewrites_everything_and_removes_earlier_files(
    crawl: FileCrawl, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    await crawl.crawl()
    crawl.export(out)
    await crawl.crawl(after_s=HOUR_S)
    crawl.export(out)

    report = crawl.export(out, full=True)

    assert report.removed_files > 0 and {t.mode for t in report.tables} == {"full"}
    assert all(report.export_id in f for f in visible_files(out))
    for spec in TABLES:
        table = dataset(out, spec.name).to_table()
        assert exported_rows(table, spec) == database_rows(crawl.path, spec), spec.name
        assert table.num_rows == len(database_rows(crawl.path, spec))
    await crawl.crawl(after_s=HOUR_S)
    assert crawl.export(out).tables[0].mode == "incremental"  # the full export left a usable watermark
    assert_latest_equals_database(crawl, out)


async def test_a_destination_that_lost_its_files_gets_everything_again(
    crawl: FileCrawl, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    await crawl.crawl()
    crawl.export(out)
    for path in out.rglob("*.parquet"):
        path.unlink()

    report = crawl.export(out)

    assert {t.mode for t in report.tables} == {"full"}
    assert_latest_equals_database(crawl, out)


async def test_small_pages_read_every_row_once_even_when_keys_tie(crawl: FileCrawl, tmp_path: Path) -> None:
    await crawl.crawl()
    # Many clips created in the same second: the keyset must break ties (on rowid) without skipping any.
    crawl.sql("UPDATE clips SET created_at = '2026-09-21T01:00:00Z' WHERE rowid % 3 = 0")
    out = tmp_path / "export"

    report = crawl.export(out, batch_rows=7)

    assert_latest_equals_database(crawl, out)
    assert sum(t.rows for t in report.tables) == sum(len(database_rows(crawl.path, s)) for s in TABLES)
    groups = [pq.ParquetFile(p).metadata for p in out.rglob("*.parquet")]
    assert max(m.row_group(i).num_rows for m in groups for i in range(m.num_row_groups)) <= 7


async def test_watermark_is_kept_in_the_database_per_destination(crawl: FileCrawl, tmp_path: Path) -> None:
    await crawl.crawl()
    crawl.export(tmp_path / "a")
    crawl.export(tmp_path / "b")

    states = crawl.sql("SELECT destination, table_name, source, watermark FROM export_state ORDER BY 1, 2")

    newest = crawl.sql("SELECT max(last_seen_at) FROM clips")[0][0]
    assert [(d.rsplit("/", 1)[-1], t, s) for d, t, s, _ in states] == [
        (d, t, "local") for d in ("a", "b") for t in ("clips", "games", "jobs", "runs")
    ]
    clips_marks = {w for _, t, _, w in states if t == "clips"}
    assert len(clips_marks) == 1 and clips_marks.pop() < newest  # it trails the newest change by the overlap
    assert {w for _, t, _, w in states if t == "runs"} == {None}  # runs are compared by digest, not by time


def test_exported_at_is_a_utc_timestamp_column_on_every_table() -> None:
    for spec in TABLES:
        assert spec.file_schema.names[-1] == "exported_at"
        assert spec.file_schema.field("exported_at").type == pa.timestamp("us", tz="UTC")
