"""Writes a table's rows as Hive-partitioned Parquet under hidden temporary names, then renames them in place.

Readers never see a file being written: `.part-<export>-<n>.parquet.tmp` is skipped by pyarrow (leading
dot) and by `*.parquet` globs (DuckDB, Spark); only a complete file is renamed to `part-<export>-<n>.parquet`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from local.export.destinations import Destination
from local.export.schemas import TableSpec

EXPORT_ID = r"\d{8}T\d{6}Z-[0-9a-f]{8}"
PART_FILE = re.compile(rf"part-(?P<export>{EXPORT_ID})-\d{{5}}\.parquet")
TEMP_FILE = re.compile(rf"\.part-(?P<export>{EXPORT_ID})-\d{{5}}\.parquet\.tmp")
COMPRESSION = "zstd"


@dataclass
class WrittenFile:
    partition: str
    temp: str
    final: str
    rows: int = 0
    published: bool = False


class TableWriter:
    """One table of one export: a file per run of rows in one partition, row groups of `row_group_rows`."""

    def __init__(
        self, destination: Destination, spec: TableSpec, export_id: str, *, row_group_rows: int = 10_000
    ) -> None:
        self.destination = destination
        self.spec = spec
        self.export_id = export_id
        self.row_group_rows = row_group_rows
        self.files: list[WrittenFile] = []
        self._writer: pq.ParquetWriter | None = None
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    def write(self, partition: str, batch: pa.RecordBatch) -> None:
        """Append rows of one partition; a new partition closes the current file and starts another."""
        if batch.num_rows == 0:
            return
        if self._writer is None or self.files[-1].partition != partition:
            self._finish_file()
            self._start_file(partition)
        self._pending.append(batch)
        self._pending_rows += batch.num_rows
        self.files[-1].rows += batch.num_rows
        if self._pending_rows >= self.row_group_rows:
            self._flush()

    def close(self) -> None:
        """Finish the last file; everything is still under its temporary name."""
        self._finish_file()

    def publish(self) -> None:
        """Rename every finished file to its final name (on S3: copy, then delete the temporary object)."""
        for file in self.files:
            if not file.published:
                self.destination.filesystem.move(file.temp, file.final)
                file.published = True

    def abort(self) -> None:
        """Best effort after a failure: close, then delete this export's files, temporary or renamed."""
        writer, self._writer, self._pending = self._writer, None, []
        if writer is not None:
            try:
                writer.close()
            except Exception:  # the failure being handled may be this very stream
                pass
        for file in self.files:
            try:
                self.destination.filesystem.delete_file(file.final if file.published else file.temp)
            except OSError:
                pass

    def _start_file(self, partition: str) -> None:
        directory = self.destination.path(self.spec.name, f"{self.spec.partition_name}={partition}")
        self.destination.make_dirs(directory)
        name = f"part-{self.export_id}-{len(self.files) + 1:05d}.parquet"
        file = WrittenFile(partition, f"{directory}/.{name}.tmp", f"{directory}/{name}")
        self.files.append(file)
        self._writer = pq.ParquetWriter(
            file.temp, self.spec.file_schema, filesystem=self.destination.filesystem, compression=COMPRESSION
        )

    def _flush(self) -> None:
        if self._pending and self._writer is not None:
            self._writer.write_table(pa.Table.from_batches(self._pending), row_group_size=self.row_group_rows)
        self._pending, self._pending_rows = [], 0

    def _finish_file(self) -> None:
        if self._writer is not None:
            self._flush()
            self._writer.close()
            self._writer = None
