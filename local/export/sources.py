"""Where exported rows come from: a Source answers SQL with rows of values, ideally from one snapshot."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from local.export.errors import ExportError


class Source(Protocol):
    """Read-only SQL over the crawler's tables. `name` keys the watermark: 'local' or 'd1'."""

    name: str
    description: str

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    def close(self) -> None: ...


class SqliteSource:
    """A SQLite file read through one read transaction, so every page comes from the same snapshot.

    In WAL mode (how `SqliteDatabase.open` leaves a file) this neither blocks nor sees a crawl that writes
    meanwhile.
    """

    def __init__(self, path: str | Path, *, name: str = "local", description: str | None = None) -> None:
        self.name = name
        self.description = description or f"SQLite database {str(path)!r}"
        if not Path(path).is_file():
            raise ExportError(f"no database at {str(path)!r}")
        try:
            self._conn = sqlite3.connect(
                f"file:{quote(str(Path(path).resolve()))}?mode=ro", uri=True, isolation_level=None, timeout=30
            )
            self._conn.execute("BEGIN")
            self._conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # the snapshot starts here
        except sqlite3.Error as exc:
            raise ExportError(f"cannot read {self.description}: {exc}") from exc

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._conn.execute(sql, tuple(params)).fetchall()
        except sqlite3.Error as exc:
            raise ExportError(f"{self.description}: {exc}") from exc

    def close(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")
        self._conn.close()
