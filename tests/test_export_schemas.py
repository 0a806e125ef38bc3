from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from local.export import CLIPS, JOBS, RUNS, TABLES, ExportError, TableSpec
from local.export.d1 import _statements
from local.export.schemas import TIMESTAMP, check_partition, to_record_batch
from local.sqlite_db import SCHEMA

EXPORTED_AT = datetime(2026, 9, 21, 15, 0, tzinfo=UTC)
TIMESTAMP_COLUMNS = {
    "created_at",
    "first_seen_at",
    "last_seen_at",
    "backfill_from",
    "backfill_to",
    "enqueued_at",
    "finished_at",
    "lease_expires_at",
    "due_at",
    "crawl_from",
    "crawl_to",
    "window_start",
    "window_end",
    "cursor_at",
    "newest_clip_at",
    "started_at",
    "deleted_at",
    "next_check_at",
    "fetched_at",
}


@pytest.mark.parametrize("spec", TABLES, ids=lambda s: s.name)
def test_the_arrow_schema_follows_schema_sql(spec: TableSpec) -> None:
    """A column added to schema.sql must be added to the export too; this fails until it is."""
    with sqlite3.connect(":memory:") as conn:
        conn.executescript(SCHEMA.read_text())
        declared = conn.execute(
            'SELECT name, type, "notnull", pk FROM pragma_table_info(?)', (spec.name,)
        ).fetchall()
    assert [name for name, *_ in declared if name not in spec.internal] == spec.columns
    assert set(spec.internal) <= {name for name, *_ in declared}
    for name, sql_type, not_null, pk in (d for d in declared if d[0] not in spec.internal):
        field = spec.schema.field(name)
        assert field.nullable == (not (not_null or pk)), name
        expected = {"INTEGER": pa.int64(), "REAL": pa.float64(), "TEXT": pa.string()}[sql_type]
        if name in TIMESTAMP_COLUMNS:
            expected = TIMESTAMP
        if name == "is_featured":
            expected = pa.bool_()
        assert field.type == expected, name


def clip_row(**changes: object) -> tuple[object, ...]:
    row = {
        "id": "Clip-1",
        "broadcaster_id": "1",
        "broadcaster_name": "b",
        "creator_id": "2",
        "creator_name": "c",
        "video_id": "",
        "game_id": "3",
        "language": "en",
        "title": "t",
        "view_count": 7,
        "created_at": "2026-09-20T10:00:00Z",
        "url": "u",
        "embed_url": "e",
        "thumbnail_url": "th",
        "duration": 30,
        "vod_offset": None,
        "is_featured": 1,
        "first_seen_at": "2026-09-21T14:13:20Z",
        "last_seen_at": "2026-09-21T14:13:20Z",
        "deleted_at": None,
    }
    row.update(changes)
    return tuple(row.values())


def test_rows_become_typed_columns() -> None:
    rows = [clip_row(), clip_row(id="Clip-2", vod_offset=12, is_featured=0)]
    batch = to_record_batch(CLIPS, rows, EXPORTED_AT)

    assert batch.schema == CLIPS.file_schema
    first, second = batch.to_pylist()
    assert first["created_at"] == datetime(2026, 9, 20, 10, 0, tzinfo=UTC)
    assert (first["duration"], first["vod_offset"], first["is_featured"]) == (30.0, None, True)
    assert (second["vod_offset"], second["is_featured"], second["exported_at"]) == (12, False, EXPORTED_AT)


def test_an_empty_page_is_an_empty_batch() -> None:
    assert to_record_batch(RUNS, [], EXPORTED_AT).num_rows == 0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"created_at": "yesterday"}, "clips.created_at: a value is not a timestamp"),
        ({"view_count": "many"}, "clips.view_count: a value is not a int64"),
        ({"title": None}, "clips.title is NULL for id 'Clip-1', but the column is NOT NULL"),
    ],
)
def test_values_that_do_not_fit_the_schema_are_named(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ExportError, match=message):
        to_record_batch(CLIPS, [clip_row(**changes)], EXPORTED_AT)


@pytest.mark.parametrize("value", ["../../etc", "2026-09-21/x", None, "2026-9-1"])
def test_only_a_date_can_name_a_partition(value: object) -> None:
    with pytest.raises(ExportError, match="expected YYYY-MM-DD"):
        check_partition(JOBS, value)
    assert check_partition(JOBS, "2026-09-21") == "2026-09-21"


def test_dump_statements_may_span_lines_and_hold_semicolons(tmp_path: Path) -> None:
    dump = tmp_path / "d.sql"
    dump.write_text(
        "PRAGMA defer_foreign_keys=TRUE;\nINSERT INTO t VALUES('a;\nb;', 1);\n"
        "CREATE TABLE x (\n  id TEXT\n);\n-- trailing comment\n",
        encoding="utf-8",
    )

    assert list(_statements(dump)) == [
        "PRAGMA defer_foreign_keys=TRUE;\n",
        "INSERT INTO t VALUES('a;\nb;', 1);\n",
        "CREATE TABLE x (\n  id TEXT\n);\n",
    ]
