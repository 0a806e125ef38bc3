"""Export to an S3-compatible bucket: moto's S3 server on loopback, through pyarrow's S3FileSystem."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pyarrow.fs as pafs
import pytest
from moto.server import ThreadedMotoServer

from local.export import (
    TABLES,
    ExportError,
    ExportOptions,
    ExportState,
    SqliteSource,
    open_destination,
    run_export,
)
from tests.test_export_crash import Crash, FaultySource
from tests.test_export_support import HOUR_S, FileCrawl, database_rows, dataset, exported_rows, file_crawl

BUCKET = "clips-analytics"


@pytest.fixture(scope="module")
def s3_env() -> Iterator[dict[str, str]]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ACCESS_KEY_ID": "test-key",
        "AWS_SECRET_ACCESS_KEY": "test-secret",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_S3": f"http://{host}:{port}",
    }
    bucket_maker = pafs.S3FileSystem(
        access_key="test-key",
        secret_key="test-secret",
        region="us-east-1",
        endpoint_override=f"{host}:{port}",
        scheme="http",
        allow_bucket_creation=True,
    )
    bucket_maker.create_dir(BUCKET)
    yield env
    server.stop()


@pytest.fixture
async def crawl(tmp_path: Path) -> AsyncIterator[FileCrawl]:
    async with file_crawl(tmp_path / "crawl.sqlite") as crawl:
        yield crawl


def objects(filesystem: pafs.FileSystem, prefix: str) -> list[str]:
    selector = pafs.FileSelector(f"{BUCKET}/{prefix}", recursive=True, allow_not_found=True)
    found = filesystem.get_file_info(selector)
    return sorted(i.path for i in found if i.type == pafs.FileType.File)


async def test_export_to_a_bucket_and_read_it_back(crawl: FileCrawl, s3_env: dict[str, str]) -> None:
    destination = open_destination(f"s3://{BUCKET}/first", s3_env)
    await crawl.crawl()

    report = crawl.export(destination)

    assert report.destination == f"s3://{BUCKET}/first"
    keys = objects(destination.filesystem, "first")
    assert keys and all(k.endswith(".parquet") and "/.part-" not in k for k in keys)  # no temporary object
    assert any(k.startswith(f"{BUCKET}/first/clips/created_date=") for k in keys)
    for spec in TABLES:
        table = dataset(f"{BUCKET}/first", spec.name, destination.filesystem).to_table()
        assert exported_rows(table, spec) == database_rows(crawl.path, spec), spec.name


async def test_incremental_export_to_a_bucket(crawl: FileCrawl, s3_env: dict[str, str]) -> None:
    destination = open_destination(f"s3://{BUCKET}/incremental", s3_env)
    await crawl.crawl()
    crawl.export(destination)
    before = set(objects(destination.filesystem, "incremental"))
    await crawl.crawl(after_s=HOUR_S)

    report = crawl.export(destination)

    added = sorted(set(objects(destination.filesystem, "incremental")) - before)
    assert before <= set(objects(destination.filesystem, "incremental"))
    assert {t.mode for t in report.tables} == {"incremental"}
    assert sorted(f for t in report.tables for f in t.files) == added
    table = dataset(f"{BUCKET}/incremental", "clips", destination.filesystem).to_table()
    latest = {r["id"]: r for r in sorted(table.to_pylist(), key=lambda r: r["exported_at"])}
    assert sorted(
        ({k: r[k] for k in TABLES[0].columns} for r in latest.values()), key=lambda r: r["id"]
    ) == database_rows(crawl.path, TABLES[0])


async def test_full_export_to_a_bucket_replaces_the_old_objects(
    crawl: FileCrawl, s3_env: dict[str, str]
) -> None:
    destination = open_destination(f"s3://{BUCKET}/full", s3_env)
    await crawl.crawl()
    crawl.export(destination)
    await crawl.crawl(after_s=HOUR_S)
    crawl.export(destination)

    report = crawl.export(destination, full=True)

    assert report.removed_files > 0
    assert all(report.export_id in k for k in objects(destination.filesystem, "full"))
    for spec in TABLES:
        table = dataset(f"{BUCKET}/full", spec.name, destination.filesystem).to_table()
        assert exported_rows(table, spec) == database_rows(crawl.path, spec), spec.name


async def test_a_failed_export_leaves_no_object_in_the_bucket(
    crawl: FileCrawl, s3_env: dict[str, str]
) -> None:
    destination = open_destination(f"s3://{BUCKET}/crash", s3_env)
    await crawl.crawl()
    state = ExportState(crawl.path)

    with pytest.raises(Crash):
        run_export(
            FaultySource(SqliteSource(crawl.path), fails_at=6),
            destination,
            state,
            crawl.clock,
            ExportOptions(batch_rows=10),
        )
    state.close()

    assert objects(destination.filesystem, "crash") == []
    assert crawl.sql("SELECT count(*) FROM export_state")[0][0] == 0
    crawl.export(destination)
    assert objects(destination.filesystem, "crash")


def test_s3_settings_come_from_the_environment() -> None:
    env = {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "CLOUDFLARE_ACCOUNT_ID": "abc123"}
    r2 = open_destination("r2://bucket/some/prefix/", env)
    settings = r2.filesystem.__reduce__()[1][0]  # the arguments it was built with
    assert (settings["endpoint_override"], settings["scheme"], settings["region"]) == (
        "abc123.r2.cloudflarestorage.com",
        "https",
        "auto",
    )
    assert (r2.root, r2.uri) == ("bucket/some/prefix", "r2://bucket/some/prefix")
    s3 = open_destination(
        "s3://bucket", {**env, "AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "AWS_REGION": "eu-west-1"}
    )
    settings = s3.filesystem.__reduce__()[1][0]
    assert (settings["endpoint_override"], settings["scheme"], settings["region"]) == (
        "127.0.0.1:9000",
        "http",
        "eu-west-1",
    )


@pytest.mark.parametrize(
    ("out", "env", "message"),
    [
        (
            "r2://bucket/x",
            {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "hunter2"},
            "needs CLOUDFLARE_ACCOUNT_ID",
        ),
        (
            "r2://bucket/x",
            {"CLOUDFLARE_ACCOUNT_ID": "a"},
            "needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        ),
        (
            "s3://bucket/x",
            {"AWS_SECRET_ACCESS_KEY": "hunter2"},
            "set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        ),
        ("s3:///x", {}, "names no bucket"),
        ("gs://bucket/x", {}, "expected a directory, s3://bucket/prefix or r2://bucket/prefix"),
        ("s3://bucket/x", {"AWS_ENDPOINT_URL": "ftp://host"}, "is not an http(s) URL"),
    ],
)
def test_unusable_destinations_say_what_is_wrong(out: str, env: dict[str, str], message: str) -> None:
    with pytest.raises(ExportError) as raised:
        open_destination(out, env)
    assert message in str(raised.value) and "hunter2" not in str(raised.value)
