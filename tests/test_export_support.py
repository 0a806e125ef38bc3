"""Helpers for the tests/test_export*.py files (no tests here): a crawl into a SQLite file, and readers."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from local.clock import VirtualClock
from local.emulated import emulator_client, emulator_settings
from local.emulator import EmulatorConfig, HelixWorld, create_emulator_app
from local.export import (
    TABLES,
    Destination,
    ExportOptions,
    ExportReport,
    ExportState,
    SqliteSource,
    open_destination,
    run_export,
)
from local.export.schemas import TIMESTAMP, TableSpec
from local.runner import LocalRunner
from local.sqlite_db import SqliteDatabase
from producer.streamers import add_streamers
from shared.config import Settings
from shared.timefmt import to_rfc3339

START = 1_790_000_000.0  # 2026-09-21T14:13:20Z
HOUR_S = 3600
SPECS = {spec.name: spec for spec in TABLES}

# The documented reader query (docs/export.md): the newest version of every row.
LATEST = (
    "SELECT * EXCLUDE ({partition}) "
    "FROM read_parquet('{root}/{table}/**/*.parquet', hive_partitioning = true) "
    "QUALIFY row_number() OVER (PARTITION BY id ORDER BY exported_at DESC) = 1"
)


@dataclass
class FileCrawl:
    """A local deployment whose database is a file, as `clipcrawler export` needs."""

    path: Path
    clock: VirtualClock
    world: HelixWorld
    http: httpx.AsyncClient
    db: SqliteDatabase
    runner: LocalRunner

    async def crawl(self, after_s: float = 0) -> None:
        self.clock.advance(after_s)
        await self.runner.crawl()
        # Stands in for Get Games until the crawl fills `games` itself: each new game id gets a row.
        await self.db.run(
            "INSERT INTO games (id, name, box_art_url, fetched_at) SELECT DISTINCT game_id, 'Game ' || "
            "game_id, "
            "'https://static-cdn.jtvnw.net/ttv-boxart/' || game_id || '-{width}x{height}.jpg', ? FROM clips "
            "WHERE game_id NOT IN (SELECT id FROM games)",
            to_rfc3339(self.clock.now()),
        )

    def export(self, out: Path | Destination, **options: Any) -> ExportReport:
        destination = out if isinstance(out, Destination) else local_destination(out)
        source = SqliteSource(self.path)
        state = ExportState(self.path)
        try:
            return run_export(source, destination, state, self.clock, ExportOptions(**options))
        finally:
            state.close()
            source.close()

    def sql(self, statement: str, *params: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.path) as conn:
            return conn.execute(statement, params).fetchall()


@asynccontextmanager
async def file_crawl(path: Path, *, streamers: int = 6, seed: int = 7) -> AsyncIterator[FileCrawl]:
    clock = VirtualClock(START)
    world = HelixWorld(seed, streamers, clock=clock)
    config = EmulatorConfig()
    settings = emulator_settings(Settings(), config).with_(http_backoff_seconds=0)
    db = await SqliteDatabase.open(path)
    http = emulator_client(create_emulator_app(world, config))
    try:
        await add_streamers(db, http, settings, clock, [s.login for s in world.all_streamers()])
        yield FileCrawl(path, clock, world, http, db, LocalRunner(db, http, settings, clock, seed=seed))
    finally:
        await http.aclose()
        await db.close()


def local_destination(out: Path) -> Destination:
    return open_destination(str(out), {})


def database_rows(path: Path, spec: TableSpec, where: str = "", *params: Any) -> list[dict[str, Any]]:
    """The table's rows as Arrow would give them back: UTC datetimes, booleans, sorted by id."""
    columns = ", ".join(f"t.{c}" for c in spec.columns)
    with sqlite3.connect(path) as conn:
        rows = conn.execute(f"SELECT {columns} FROM {spec.from_sql} {where} ORDER BY t.id", params).fetchall()
    return [{f.name: _as_arrow(f, v) for f, v in zip(spec.schema, row, strict=True)} for row in rows]


def _as_arrow(field: pa.Field, value: Any) -> Any:
    if value is None:
        return None
    if field.type == TIMESTAMP:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    if pa.types.is_boolean(field.type):
        return bool(value)
    return value


def dataset(root: Path | str, table: str, filesystem: pafs.FileSystem | None = None) -> ds.Dataset:
    return ds.dataset(f"{root}/{table}", format="parquet", partitioning="hive", filesystem=filesystem)


def exported_rows(table: pa.Table, spec: TableSpec) -> list[dict[str, Any]]:
    """Rows of an exported table without the export's own columns, sorted by id."""
    return sorted(table.select(spec.columns).to_pylist(), key=lambda r: r["id"])


def latest_rows(root: Path, spec: TableSpec) -> list[dict[str, Any]]:
    """The documented latest-row-per-id query, run by DuckDB."""
    if not any((root / spec.name).rglob("*.parquet")):
        return []  # an empty table has no files (DuckDB refuses a glob that matches none)
    sql = LATEST.format(root=root.as_posix(), table=spec.name, partition=spec.partition_name)
    return exported_rows(duckdb.sql(sql).to_arrow_table(), spec)


def visible_files(root: Path) -> set[str]:
    """What a reader globbing `**/*.parquet` sees."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*.parquet")}


def all_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def wrangler_dump(database: Path, out: Path, *, schema: bool = True, d1_migrations: bool = True) -> Path:
    """A file shaped like `wrangler d1 export --remote --output` writes: schema, then one INSERT per row."""
    lines = ["PRAGMA defer_foreign_keys=TRUE;"]
    if schema and d1_migrations:
        lines.append(
            "CREATE TABLE d1_migrations(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE, "
            "applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL);"
        )
    if d1_migrations:
        lines.append(
            'INSERT INTO "d1_migrations" ("id","name","applied_at") '
            "VALUES(1,'0001_init.sql','2026-09-01 00:00:00');"
        )
    with sqlite3.connect(database) as conn:
        tables = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite_%' ORDER BY rowid"
        ).fetchall()
        for name, sql in tables:
            if schema:
                lines.append(f"{sql};")
            columns = [r[1] for r in conn.execute(f'PRAGMA table_info("{name}")')]
            quoted = ",".join(f'"{c}"' for c in columns)
            values = " || ',' || ".join(f'quote("{c}")' for c in columns)
            lines += [
                f'INSERT INTO "{name}" ({quoted}) VALUES({row});'
                for (row,) in conn.execute(f'SELECT {values} FROM "{name}"')
            ]
        if schema:
            lines += [
                f"{sql};"
                for (sql,) in conn.execute(
                    "SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
                )
            ]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out
