"""What the incremental export remembers, in SQLite: a watermark and a tail per destination and table.

`watermark`: rows whose change marker is at or after it are read again next time (it trails the newest
marker by the overlap, for writes that commit after the export read them). `export_tail`: the digest of
each such row as that export saw it, so next time the rows that did not change are skipped, not written twice.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import astuple, dataclass
from pathlib import Path

from local.export.errors import ExportError
from local.schema_upgrade import SCHEMA

_UPSERT_STATE = (
    "INSERT INTO export_state (destination, table_name, source, watermark, generation, exported_at, rows, "
    "tail_rows) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (destination, table_name) DO UPDATE SET "
    "source = excluded.source, watermark = excluded.watermark, generation = excluded.generation, "
    "exported_at = excluded.exported_at, rows = excluded.rows, tail_rows = excluded.tail_rows"
)


@dataclass(frozen=True)
class TableState:
    """What the last successful export of one table to one destination recorded."""

    table: str
    source: str
    watermark: str | None  # None: no marker, or the table was empty; the next export reads it all
    generation: str  # the export id whose export_tail rows are current
    exported_at: str
    rows: int
    tail_rows: int


class ExportState:
    """Reads and writes export_state / export_tail; each write is one short transaction."""

    def __init__(self, path: str | Path) -> None:
        try:
            self._conn = sqlite3.connect(str(path), isolation_level=None, timeout=30)
            self._conn.executescript(SCHEMA.read_text())
        except sqlite3.Error as exc:
            raise ExportError(f"cannot keep the export watermark in {str(path)!r}: {exc}") from exc

    def close(self) -> None:
        self._conn.close()

    def load(self, destination: str) -> dict[str, TableState]:
        rows = self._conn.execute(
            "SELECT table_name, source, watermark, generation, exported_at, rows, tail_rows "
            "FROM export_state WHERE destination = ?",
            (destination,),
        ).fetchall()
        return {r[0]: TableState(*r) for r in rows}

    def forget_unfinished(self, destination: str) -> int:
        """Drop tail rows that no committed export owns (a crashed one staged them)."""
        return self._conn.execute(
            "DELETE FROM export_tail WHERE destination = ? AND generation IS NOT (SELECT s.generation "
            "FROM export_state AS s WHERE s.destination = export_tail.destination "
            "AND s.table_name = export_tail.table_name)",
            (destination,),
        ).rowcount

    def tail_digests(
        self, destination: str, table: str, generation: str, keys: Sequence[str]
    ) -> dict[str, str]:
        """The digests the last export recorded for these rows (only rows in its tail have one)."""
        rows = self._conn.execute(
            "SELECT row_key, digest FROM export_tail WHERE destination = ? AND table_name = ? "
            "AND generation = ? AND row_key IN (SELECT value FROM json_each(?))",
            (destination, table, generation, json.dumps(list(keys))),
        ).fetchall()
        return dict(rows)

    def stage_tail(
        self, destination: str, table: str, generation: str, items: Sequence[tuple[str, str]]
    ) -> None:
        """Record this export's tail; it counts only once `commit` names `generation`."""
        if not items:
            return
        with self._transaction():
            self._conn.executemany(
                "INSERT INTO export_tail (destination, table_name, generation, row_key, digest) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET digest = excluded.digest",
                [(destination, table, generation, key, digest) for key, digest in items],
            )

    def commit(self, destination: str, states: Sequence[TableState], expected: dict[str, str]) -> None:
        """Record every table at once, unless another export committed since this one began."""
        with self._transaction():
            for state in states:
                row = self._conn.execute(
                    "SELECT generation FROM export_state WHERE destination = ? AND table_name = ?",
                    (destination, state.table),
                ).fetchone()
                if (row[0] if row else None) != expected.get(state.table):
                    raise ExportError(
                        f"another export to {destination} finished while this one ran; "
                        "run one export per destination at a time"
                    )
                self._conn.execute(_UPSERT_STATE, (destination, *astuple(state)))
                self._conn.execute(
                    "DELETE FROM export_tail WHERE destination = ? AND table_name = ? AND generation <> ?",
                    (destination, state.table, state.generation),
                )

    def discard(self, destination: str, generation: str) -> None:
        """Forget the tail a failed export staged."""
        with self._transaction():
            self._conn.execute(
                "DELETE FROM export_tail WHERE destination = ? AND generation = ?", (destination, generation)
            )

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        # IMMEDIATE: take the write lock up front (a crawl may be writing the same file) and wait for it.
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")
