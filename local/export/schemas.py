"""The exported tables: explicit Arrow schemas, how each is read, partitioned and told apart when changed."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from local.export.errors import ExportError

TIMESTAMP = pa.timestamp("us", tz="UTC")  # what Parquet, DuckDB and Spark all read as a UTC instant
STORED_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # shared.timefmt.to_rfc3339
EXPORTED_AT = pa.field("exported_at", TIMESTAMP, nullable=False)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _text(name: str, nullable: bool = False) -> pa.Field:
    return pa.field(name, pa.string(), nullable=nullable)


def _count(name: str, nullable: bool = False) -> pa.Field:
    return pa.field(name, pa.int64(), nullable=nullable)


def _time(name: str, nullable: bool = False) -> pa.Field:
    return pa.field(name, TIMESTAMP, nullable=nullable)


@dataclass(frozen=True)
class TableSpec:
    """One exported table.

    Rows are read in `key` order (keyset pagination, so each page is one indexed range) and that order keeps
    a partition's rows together. `marker` is the column that moves whenever a row changes, NULL while the row
    is unfinished and may change without it moving; with no marker every row is compared by digest.
    """

    name: str
    schema: pa.Schema  # the database's columns, in schema.sql's order; `exported_at` is added on write
    from_sql: str  # the table is `t`
    key: tuple[tuple[str, bool], ...]  # (SQL expression, is an integer) in ORDER BY order
    partition_name: str
    partition_sql: str
    marker: str | None
    internal: tuple[str, ...] = ()  # schema.sql columns deliberately left out of the export

    @property
    def columns(self) -> list[str]:
        return list(self.schema.names)

    @property
    def file_schema(self) -> pa.Schema:
        return self.schema.append(EXPORTED_AT)

    @property
    def marker_index(self) -> int | None:
        return None if self.marker is None else self.schema.get_field_index(self.marker)


CLIPS = TableSpec(
    name="clips",
    schema=pa.schema(
        [
            _text("id"),
            _text("broadcaster_id"),
            _text("broadcaster_name"),
            _text("creator_id"),
            _text("creator_name"),
            _text("video_id"),
            _text("game_id"),
            _text("language"),
            _text("title"),
            _count("view_count"),
            _time("created_at"),
            _text("url"),
            _text("embed_url"),
            _text("thumbnail_url"),
            pa.field("duration", pa.float64(), nullable=False),
            _count("vod_offset", nullable=True),
            pa.field("is_featured", pa.bool_(), nullable=False),
            _time("first_seen_at"),
            _time("last_seen_at"),
            _time("deleted_at", nullable=True),
        ]
    ),
    # view_digits is derived from view_count (for the most-viewed indexes); next_check_at is when the next
    # deletion check is due: the crawler's own schedule, moved by every check without the clip
    # changing, so it would make the export's rows differ from their markers. Not a fact about the clip.
    internal=("view_digits", "next_check_at"),
    from_sql="clips AS t",
    # clips_created covers (created_at, rowid): one index range per page, partitions arrive in order.
    key=(("t.created_at", False), ("t.rowid", True)),
    partition_name="created_date",
    partition_sql="substr(t.created_at, 1, 10)",
    marker="last_seen_at",  # set on insert and by every upsert that changed the row
)

RUNS = TableSpec(
    name="runs",
    schema=pa.schema(
        [
            _count("id"),
            _text("slot", nullable=True),
            _text("kind"),
            _text("status"),
            _time("created_at"),
            _time("backfill_from", nullable=True),
            _time("backfill_to", nullable=True),
            _text("only_streamers", nullable=True),
            _text("fanout_cursor"),
            _time("enqueued_at", nullable=True),
            _time("finished_at", nullable=True),
            *(
                _count(n)
                for n in (
                    "jobs_total",
                    "jobs_done",
                    "jobs_failed",
                    "pages",
                    "clips_seen",
                    "clips_new",
                    "clips_updated",
                    "clips_skipped",
                    "helix_calls",
                    "d1_calls",
                    "queue_sends",
                )
            ),
        ]
    ),
    from_sql="runs AS t",
    key=(("t.id", True),),
    partition_name="run_date",
    partition_sql="substr(t.created_at, 1, 10)",
    # None: a finished run can still change (retrying its failed jobs bumps its counters and may leave it
    # finished), and no column says when. Runs are few (one an hour), so every row is compared by digest.
    marker=None,
)

JOBS = TableSpec(
    name="jobs",
    schema=pa.schema(
        [
            _count("id"),
            _count("run_id"),
            _text("streamer_id"),
            _text("status"),
            _count("attempts"),
            _count("reclaims"),
            _count("invocations"),
            _text("lease_token", nullable=True),
            _time("lease_expires_at", nullable=True),
            _time("due_at"),
            _time("crawl_from", nullable=True),
            _time("crawl_to", nullable=True),
            _time("window_start", nullable=True),
            _time("window_end", nullable=True),
            _text("cursor", nullable=True),
            _time("cursor_at", nullable=True),
            _time("newest_clip_at", nullable=True),
            *(
                _count(n)
                for n in (
                    "window_pages",
                    "pages",
                    "clips_seen",
                    "clips_new",
                    "clips_updated",
                    "clips_skipped",
                    "helix_calls",
                    "d1_calls",
                    "queue_sends",
                    "subrequests",
                    "max_subrequests",
                )
            ),
            _text("stop_reason", nullable=True),
            _text("error", nullable=True),
            _time("created_at"),
            _time("started_at", nullable=True),
            _time("finished_at", nullable=True),
            _count("window_span", nullable=True),
            _count("window_clips"),
            _text("walk_state", nullable=True),
        ]
    ),
    from_sql="jobs AS t JOIN runs AS r ON r.id = t.run_id",
    key=(("t.id", True),),
    partition_name="run_date",  # the date of the job's run, so a run's jobs sit together
    partition_sql="substr(r.created_at, 1, 10)",
    # Set once, when the job is done or failed; retrying a failed job sets it back to NULL. An unfinished
    # job (NULL) is re-read every time.
    marker="finished_at",
)

GAMES = TableSpec(
    name="games",
    schema=pa.schema(
        [_text("id"), _text("name"), _text("box_art_url"), _text("igdb_id"), _time("fetched_at")]
    ),
    from_sql="games AS t",
    # games_fetched covers (fetched_at, rowid), as clips_created does for clips.
    key=(("t.fetched_at", False), ("t.rowid", True)),
    partition_name="fetched_date",
    partition_sql="substr(t.fetched_at, 1, 10)",
    marker="fetched_at",  # set whenever Get Games answers for the game, so a renamed game is read again
)

TABLES = (CLIPS, RUNS, JOBS, GAMES)


def check_partition(spec: TableSpec, value: Any) -> str:
    """A partition value becomes part of a path: only a plain date is allowed."""
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise ExportError(
            f"{spec.name}: cannot partition on {spec.partition_name}={value!r}; expected YYYY-MM-DD"
        )
    return value


def to_record_batch(spec: TableSpec, rows: Sequence[Sequence[Any]], exported_at: datetime) -> pa.RecordBatch:
    """Database rows (values in `spec.columns` order) -> one record batch of `spec.file_schema`."""
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(spec.schema)
    arrays = [_column(spec, field, values, rows) for field, values in zip(spec.schema, columns, strict=True)]
    arrays.append(pa.repeat(pa.scalar(exported_at, TIMESTAMP), len(rows)))
    return pa.RecordBatch.from_arrays(arrays, schema=spec.file_schema)


def _column(
    spec: TableSpec, field: pa.Field, values: Sequence[Any], rows: Sequence[Sequence[Any]]
) -> pa.Array:
    try:
        if field.type == TIMESTAMP:
            text = pa.array(values, pa.string())
            array = pc.strptime(text, format=STORED_FORMAT, unit="us").cast(TIMESTAMP)
        elif pa.types.is_boolean(field.type):
            array = pa.array(values, pa.int64()).cast(pa.bool_())
        else:
            array = pa.array(values, field.type)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ExportError(f"{spec.name}.{field.name}: a value is not a {field.type}: {exc}") from exc
    if not field.nullable and array.null_count:
        index = next(i for i, v in enumerate(values) if v is None)
        raise ExportError(
            f"{spec.name}.{field.name} is NULL for id {rows[index][0]!r}, but the column is NOT NULL"
        )
    return array
