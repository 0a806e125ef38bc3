"""A deployed D1 as the source: `wrangler d1 export` output, or the D1 HTTP API; same files as from SQLite."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from local.export import TABLES, ExportError, ExportOptions, ExportState, open_destination, run_export
from local.export.d1 import D1DumpSource, D1HttpSource, load_dump
from local.export.sources import Source
from local.schema_upgrade import SCHEMA
from tests.test_export_support import (
    HOUR_S,
    FileCrawl,
    database_rows,
    dataset,
    exported_rows,
    file_crawl,
    latest_rows,
    wrangler_dump,
)
from tests.workers_harness.launch import node_env

ACCOUNT, DATABASE, TOKEN = "acc0123", "5f1c-d1-uuid", "cf-api-token-do-not-print"
WRANGLER = Path(__file__).resolve().parent.parent / "node_modules" / ".bin" / "wrangler"


@pytest.fixture
async def crawl(tmp_path: Path) -> AsyncIterator[FileCrawl]:
    async with file_crawl(tmp_path / "crawl.sqlite") as crawl:
        await crawl.crawl()
        # A title with a newline, a quote and semicolons: a statement that spans lines in the dump.
        crawl.sql("UPDATE clips SET title = 'gg;' || char(10) || 'it''s over; wp' WHERE rowid = 1")
        yield crawl


def export_from(source: Source, out: Path, state_db: Path, crawl: FileCrawl, **options: Any) -> Any:
    state = ExportState(state_db)
    try:
        destination = open_destination(str(out), {})
        return run_export(source, destination, state, crawl.clock, ExportOptions(**options))
    finally:
        state.close()
        source.close()


def failure(status: int, code: int, message: str) -> httpx.Response:
    return httpx.Response(status, json={"success": False, "errors": [{"code": code, "message": message}]})


def fake_d1(database: Path, calls: list[dict[str, Any]]) -> httpx.Client:
    """Cloudflare's /raw query endpoint, answering from a SQLite copy of the D1 database."""
    conn = sqlite3.connect(database, check_same_thread=False)

    def handle(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        calls.append(body)
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return failure(403, 10000, "Authentication error")
        if request.url.path != f"/client/v4/accounts/{ACCOUNT}/d1/database/{DATABASE}/raw":
            return failure(404, 7404, "not found")
        try:
            cursor = conn.execute(body["sql"], body.get("params", []))
        except sqlite3.Error as exc:
            return failure(400, 7500, str(exc))
        results = {"columns": [d[0] for d in cursor.description], "rows": [list(r) for r in cursor]}
        return httpx.Response(
            200,
            json={
                "success": True,
                "errors": [],
                "messages": [],
                "result": [{"success": True, "meta": {}, "results": results}],
            },
        )

    return httpx.Client(transport=httpx.MockTransport(handle))


def http_source(client: httpx.Client, token: str = TOKEN) -> D1HttpSource:
    return D1HttpSource(client, ACCOUNT, DATABASE, token, base_url="https://api.cloudflare.com/client/v4/")


async def test_a_wrangler_export_gives_the_same_files_as_the_database(
    crawl: FileCrawl, tmp_path: Path
) -> None:
    dump = wrangler_dump(crawl.path, tmp_path / "d1.sql")

    report = export_from(D1DumpSource(dump), tmp_path / "out", tmp_path / "state.sqlite", crawl)

    assert report.source == "d1"
    for spec in TABLES:
        assert exported_rows(dataset(tmp_path / "out", spec.name).to_table(), spec) == database_rows(
            crawl.path, spec
        ), spec.name


async def test_a_data_only_export_gets_the_project_schema(crawl: FileCrawl, tmp_path: Path) -> None:
    dump = wrangler_dump(crawl.path, tmp_path / "data-only.sql", schema=False)  # --no-schema

    export_from(D1DumpSource(dump), tmp_path / "out", tmp_path / "state.sqlite", crawl)

    for spec in TABLES:
        assert latest_rows(tmp_path / "out", spec) == database_rows(crawl.path, spec), spec.name


async def test_successive_wrangler_exports_are_incremental(crawl: FileCrawl, tmp_path: Path) -> None:
    out, state = tmp_path / "out", tmp_path / "state.sqlite"
    export_from(D1DumpSource(wrangler_dump(crawl.path, tmp_path / "1.sql")), out, state, crawl)
    await crawl.crawl(after_s=HOUR_S)

    source = D1DumpSource(wrangler_dump(crawl.path, tmp_path / "2.sql"))
    report = export_from(source, out, state, crawl)

    now = crawl.sql("SELECT max(last_seen_at) FROM clips")[0][0]
    assert report.tables[0].mode == "incremental"
    assert report.tables[0].rows == len(database_rows(crawl.path, TABLES[0], "WHERE t.last_seen_at = ?", now))
    for spec in TABLES:
        assert latest_rows(out, spec) == database_rows(crawl.path, spec), spec.name
    assert not source.scratch.exists()  # the loaded copy is gone


def test_a_broken_dump_names_the_statement_but_not_its_values(tmp_path: Path) -> None:
    dump = tmp_path / "broken.sql"
    dump.write_text(
        "CREATE TABLE app_tokens (client_id TEXT PRIMARY KEY, access_token TEXT);\n"
        "INSERT INTO app_tokens VALUES ('c', 'secret-token', 'one too many');\n"
    )

    with pytest.raises(ExportError, match=r"statement 2 failed: table app_tokens has 2 columns") as raised:
        load_dump(dump, tmp_path / "scratch.sqlite")
    assert "secret-token" not in str(raised.value)
    with pytest.raises(ExportError, match="no D1 export at"):
        D1DumpSource(tmp_path / "missing.sql")


async def test_a_dump_written_by_wrangler_itself_loads(crawl: FileCrawl, tmp_path: Path) -> None:
    """The real thing: wrangler fills a local D1 (Miniflare) and exports it; no account or network."""
    if shutil.which("node") is None or not WRANGLER.exists():
        pytest.skip("needs Node.js and node_modules/.bin/wrangler (`npm ci`)")
    project = tmp_path / "project"
    project.mkdir()
    # d1 export has no --persist-to: it reads the local database under the project's .wrangler/.
    (project / "wrangler.toml").write_text(
        'name = "export-test"\ncompatibility_date = "2025-09-29"\n\n'
        '[[d1_databases]]\nbinding = "DB"\ndatabase_name = "clipcrawler"\n'
        'database_id = "00000000-0000-4000-8000-000000000000"\n'
    )
    env = node_env(tmp_path)
    data = wrangler_dump(crawl.path, tmp_path / "data.sql", schema=False, d1_migrations=False)
    for args in (
        ["execute", "DB", "--local", "--file", str(SCHEMA)],
        ["execute", "DB", "--local", "--file", str(data)],
        ["export", "DB", "--local", "--output", str(tmp_path / "wrangler.sql")],
    ):
        done = subprocess.run(
            [str(WRANGLER), "d1", *args],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert done.returncode == 0, f"wrangler d1 {' '.join(args)}:\n{done.stdout}\n{done.stderr}"

    export_from(D1DumpSource(tmp_path / "wrangler.sql"), tmp_path / "out", tmp_path / "state.sqlite", crawl)

    for spec in TABLES:
        assert exported_rows(dataset(tmp_path / "out", spec.name).to_table(), spec) == database_rows(
            crawl.path, spec
        ), spec.name


async def test_the_d1_http_api_gives_the_same_files_as_the_database(crawl: FileCrawl, tmp_path: Path) -> None:
    calls: list[dict[str, Any]] = []
    with fake_d1(crawl.path, calls) as client:
        export_from(http_source(client), tmp_path / "out", tmp_path / "state.sqlite", crawl, batch_rows=25)

    for spec in TABLES:
        assert exported_rows(dataset(tmp_path / "out", spec.name).to_table(), spec) == database_rows(
            crawl.path, spec
        ), spec.name
    assert len(calls) > len(database_rows(crawl.path, TABLES[0])) / 25  # paged, 25 rows at a time
    assert all(isinstance(p, str) for call in calls for p in call["params"])  # the API takes strings


def test_the_d1_http_api_source_waits_out_rate_limits() -> None:
    answers = [
        httpx.Response(429, headers={"Retry-After": "7"}, json={"success": False, "errors": []}),
        httpx.Response(503, json={"success": False, "errors": []}),
        httpx.Response(
            200,
            json={
                "success": True,
                "errors": [],
                "messages": [],
                "result": [{"success": True, "meta": {}, "results": {"columns": ["n"], "rows": [[1]]}}],
            },
        ),
    ]
    slept: list[float] = []
    client = httpx.Client(transport=httpx.MockTransport(lambda request: answers.pop(0)))

    source = D1HttpSource(client, ACCOUNT, DATABASE, TOKEN, sleep=slept.append)

    assert source.query("SELECT 1 AS n") == [(1,)] and slept == [7.0, 4.0]
    answers[:] = [failure(429, 971, "limited") for _ in range(5)]
    with pytest.raises(ExportError, match="HTTP 429: 971: limited"):
        source.query("SELECT 1")


async def test_d1_http_api_errors_are_reported_without_the_token(crawl: FileCrawl, tmp_path: Path) -> None:
    with fake_d1(crawl.path, []) as client:
        with pytest.raises(ExportError, match="HTTP 403: 10000: Authentication error") as raised:
            http_source(client, token="wrong-token").query("SELECT 1")
        assert TOKEN not in str(raised.value) and "wrong-token" not in str(raised.value)
        with pytest.raises(ExportError, match="HTTP 400: 7500: no such table: nope"):
            http_source(client).query("SELECT * FROM nope")
    with pytest.raises(ExportError, match="needs CLOUDFLARE_ACCOUNT_ID and CLOUDFLARE_API_TOKEN"):
        D1HttpSource(httpx.Client(), "", DATABASE, "")


async def test_a_destination_exported_from_one_source_refuses_another(
    crawl: FileCrawl, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    crawl.export(out)
    dump = wrangler_dump(crawl.path, tmp_path / "d1.sql")

    with pytest.raises(ExportError, match="holds clips exported from 'local', not 'd1': export with --full"):
        export_from(D1DumpSource(dump), out, crawl.path, crawl)
    report = export_from(D1DumpSource(dump), out, crawl.path, crawl, full=True)
    assert report.removed_files > 0
    for spec in TABLES:
        assert latest_rows(out, spec) == database_rows(crawl.path, spec), spec.name
