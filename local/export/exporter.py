"""One export: every table read from a Source and written to a Destination, then the watermark moved."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from local.export.destinations import Destination
from local.export.errors import ExportError
from local.export.reader import DEFAULT_BATCH_ROWS, high_water_mark, read_pages
from local.export.schemas import TABLES, TableSpec, check_partition, to_record_batch
from local.export.sources import Source
from local.export.state import ExportState, TableState
from local.export.writer import PART_FILE, TEMP_FILE, TableWriter
from shared.ports import Clock
from shared.timefmt import parse_rfc3339, to_rfc3339

DEFAULT_OVERLAP_S = 300
EXPORT_ID_TIME = "%Y%m%dT%H%M%SZ"  # export ids sort by when the export began
STALE_TEMP = timedelta(days=1)


@dataclass(frozen=True)
class ExportOptions:
    full: bool = False  # every row, and the files of earlier exports removed once this one is in place
    overlap_s: int = DEFAULT_OVERLAP_S  # how late a write may commit after the timestamp it carries
    batch_rows: int = DEFAULT_BATCH_ROWS
    tables: Sequence[TableSpec] = TABLES

    def __post_init__(self) -> None:
        if self.overlap_s < 0:
            raise ExportError(f"overlap must not be negative, got {self.overlap_s!r} s")
        if self.batch_rows < 1:
            raise ExportError(f"batch rows must be at least 1, got {self.batch_rows!r}")


@dataclass
class TableReport:
    table: str
    mode: str  # 'full' or 'incremental'
    rows: int = 0
    unchanged: int = 0  # re-read because they might have changed, skipped because they had not
    files: list[str] = field(default_factory=list)
    watermark: str | None = None


@dataclass
class ExportReport:
    export_id: str
    destination: str
    source: str
    exported_at: str
    tables: list[TableReport]
    removed_files: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    def as_dict(self) -> dict[str, Any]:
        return {
            "export_id": self.export_id,
            "destination": self.destination,
            "source": self.source,
            "exported_at": self.exported_at,
            "rows": self.rows,
            "removed_files": self.removed_files,
            "warnings": self.warnings,
            "tables": [vars(t) for t in self.tables],
        }


def run_export(
    source: Source,
    destination: Destination,
    state: ExportState,
    clock: Clock,
    options: ExportOptions = ExportOptions(),
) -> ExportReport:
    """Write what changed since the last export (everything with `full`); only success moves the watermark."""
    previous = state.load(destination.uri)
    state.forget_unfinished(destination.uri)
    exported_at = _export_time(clock, previous.values())
    export_id = exported_at.strftime(EXPORT_ID_TIME + "-") + secrets.token_hex(4)
    # A killed export's temporary files (readers never saw them); a day's margin spares one still running.
    abandoned = (exported_at - STALE_TEMP).strftime(EXPORT_ID_TIME)
    _remove(destination, options.tables, TEMP_FILE, lambda other: other < abandoned)
    report = ExportReport(export_id, destination.uri, source.name, _iso(exported_at), [])
    writers: list[TableWriter] = []
    states: list[TableState] = []
    try:
        for spec in options.tables:
            writer = TableWriter(destination, spec, export_id, row_group_rows=options.batch_rows)
            writers.append(writer)
            table_report, table_state = _export_table(
                source,
                destination,
                state,
                spec,
                writer,
                exported_at,
                export_id,
                previous.get(spec.name),
                options,
            )
            report.tables.append(table_report)
            states.append(table_state)
        for writer in writers:
            writer.publish()
        state.commit(destination.uri, states, {s.table: s.generation for s in previous.values()})
    except BaseException:
        for writer in writers:
            writer.abort()
        try:
            state.discard(destination.uri, export_id)
        except Exception:  # the next export forgets it anyway; the original error matters more
            pass
        raise
    if options.full:
        # Only now: until the new files were in place and committed, the old ones were the dataset.
        try:
            report.removed_files = _remove(
                destination, options.tables, PART_FILE, lambda other: other != export_id
            )
        except OSError as exc:
            report.warnings.append(f"could not remove every superseded file ({exc}); the next --full retries")
    return report


def _export_table(
    source: Source,
    destination: Destination,
    state: ExportState,
    spec: TableSpec,
    writer: TableWriter,
    exported_at: datetime,
    export_id: str,
    previous: TableState | None,
    options: ExportOptions,
) -> tuple[TableReport, TableState]:
    if previous is not None and previous.source != source.name and not options.full:
        raise ExportError(
            f"{destination.uri} holds {spec.name} exported from {previous.source!r}, not "
            f"{source.name!r}: export with --full to replace it, or choose another --out"
        )
    full = options.full or previous is None or (not _has_files(destination, spec) and _has_rows(source, spec))
    top = high_water_mark(source, spec)
    watermark = None if top is None else to_rfc3339(parse_rfc3339(top) - options.overlap_s)
    since = None if full or previous is None else previous.watermark
    tail_of = None if full or previous is None or previous.tail_rows == 0 else previous.generation
    marker = spec.marker_index
    report = TableReport(spec.name, "full" if full else "incremental", watermark=watermark)
    tail_rows = 0
    for page in read_pages(source, spec, changed_since=since, batch_rows=options.batch_rows):
        keys = [str(row[0]) for row in page.rows]
        seen = state.tail_digests(destination.uri, spec.name, tail_of, keys) if tail_of else {}
        tail: list[tuple[str, str]] = []
        kept: list[int] = []
        for i, (key, row) in enumerate(zip(keys, page.rows, strict=True)):
            digest = None
            # The next export reads these again (no marker, unfinished, or inside the overlap): remember them.
            if marker is None or row[marker] is None or (watermark is not None and row[marker] >= watermark):
                digest = _digest(spec, row)
                tail.append((key, digest))
            if key in seen and seen[key] == (digest or _digest(spec, row)):
                report.unchanged += 1
            else:
                kept.append(i)
        state.stage_tail(destination.uri, spec.name, export_id, tail)
        tail_rows += len(tail)
        _write(spec, writer, [page.partitions[i] for i in kept], [page.rows[i] for i in kept], exported_at)
    writer.close()
    report.rows = writer.rows
    report.files = [f.final for f in writer.files]
    return report, TableState(
        spec.name, source.name, watermark, export_id, _iso(exported_at), report.rows, tail_rows
    )


def _write(
    spec: TableSpec,
    writer: TableWriter,
    partitions: list[Any],
    rows: list[tuple[Any, ...]],
    exported_at: datetime,
) -> None:
    """Rows arrive in key order, so each partition's rows are one contiguous run."""
    start = 0
    for end in range(1, len(rows) + 1):
        if end == len(rows) or partitions[end] != partitions[start]:
            batch = to_record_batch(spec, rows[start:end], exported_at)
            writer.write(check_partition(spec, partitions[start]), batch)
            start = end


def _digest(spec: TableSpec, row: tuple[Any, ...]) -> str:
    # Floats normalised: D1's HTTP API may send a REAL 30.0 as 30.
    values = [
        float(v) if v is not None and pa.types.is_floating(f.type) else v
        for f, v in zip(spec.schema, row, strict=True)
    ]
    return hashlib.blake2b(repr(values).encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def _has_files(destination: Destination, spec: TableSpec) -> bool:
    """False when the destination lost the table's files (deleted, or a new bucket): export it whole again."""
    files = destination.files(destination.path(spec.name))
    return any(PART_FILE.fullmatch(path.rsplit("/", 1)[-1]) for path in files)


def _has_rows(source: Source, spec: TableSpec) -> bool:
    """An empty table has no files to lose: its next export can stay incremental."""
    return bool(source.query(f"SELECT 1 FROM {spec.from_sql} LIMIT 1"))


def _remove(
    destination: Destination,
    tables: Sequence[TableSpec],
    pattern: re.Pattern[str],
    doomed: Callable[[str], bool],
) -> int:
    """Delete the tables' files matching `pattern` whose export id is `doomed`; nothing else is touched."""
    removed = 0
    for spec in tables:
        for path in destination.files(destination.path(spec.name)):
            match = pattern.fullmatch(path.rsplit("/", 1)[-1])
            if match and doomed(match["export"]):
                destination.filesystem.delete_file(path)
                removed += 1
    return removed


def _export_time(clock: Clock, previous: Iterable[TableState]) -> datetime:
    """Now, but always after the previous export: `exported_at` orders the versions of a row."""
    now = datetime.fromtimestamp(clock.now(), tz=UTC)
    latest = max((datetime.fromisoformat(s.exported_at) for s in previous), default=None)
    return now if latest is None or now > latest else latest + timedelta(microseconds=1)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
