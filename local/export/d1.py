"""A deployed D1 as a Source: through `wrangler d1 export` output, or through the D1 HTTP API."""

from __future__ import annotations

import re
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from local.export.errors import ExportError
from local.export.sources import SqliteSource
from local.schema_upgrade import SCHEMA

CLOUDFLARE_API = "https://api.cloudflare.com/client/v4"
RETRIED_STATUSES = (429, 500, 502, 503, 504)
MAX_WAIT_S = 60.0
# The dump's own transaction statements: the loader runs the whole file as one transaction instead.
_TRANSACTION = re.compile(r"\s*(BEGIN|COMMIT|END|ROLLBACK)\b", re.IGNORECASE)
_MISSING_TABLE = re.compile(r"no such table")


class D1DumpSource(SqliteSource):
    """The SQL file `wrangler d1 export --remote --output x.sql` writes, loaded into a scratch SQLite file."""

    def __init__(self, dump: str | Path) -> None:
        self.scratch = Path(tempfile.mkdtemp(prefix="clipcrawler-d1-"))  # removed by close()
        try:
            load_dump(Path(dump), self.scratch / "d1.sqlite")
            super().__init__(self.scratch / "d1.sqlite", name="d1", description=f"D1 export {str(dump)!r}")
        except BaseException:
            shutil.rmtree(self.scratch, ignore_errors=True)
            raise

    def close(self) -> None:
        try:
            super().close()
        finally:
            shutil.rmtree(self.scratch, ignore_errors=True)


def load_dump(dump: Path, into: Path) -> int:
    """Run a SQL dump into a new SQLite file, statement by statement (never the whole file in memory).

    A dump made with `--no-schema` gets this project's schema.sql the first time a table is missing; rows of
    tables the project does not have (`d1_migrations`) are then passed over. Returns the statements run.
    """
    if not dump.is_file():
        raise ExportError(
            f"no D1 export at {str(dump)!r}: make one with "
            "`wrangler d1 export <database> --remote --output <file>.sql`"
        )
    conn = sqlite3.connect(into, isolation_level=None)
    schema_applied = False
    count = 0
    try:
        conn.execute("PRAGMA journal_mode = OFF")  # a scratch copy: nothing to recover after a crash
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("BEGIN")
        for statement in _statements(dump):
            if _TRANSACTION.match(statement):
                continue
            count += 1
            try:
                schema_applied = _execute(conn, statement, schema_applied)
            except sqlite3.Error as exc:
                # The statement itself is not quoted: a dump holds app_tokens, and errors get printed.
                raise ExportError(f"{str(dump)!r}: statement {count} failed: {exc}") from exc
        conn.execute("COMMIT")
    except UnicodeDecodeError as exc:
        raise ExportError(f"{str(dump)!r} is not a UTF-8 SQL file: {exc}") from exc
    finally:
        conn.close()
    return count


def _execute(conn: sqlite3.Connection, statement: str, schema_applied: bool) -> bool:
    """Run one statement of the dump; returns whether the project's schema has been applied."""
    try:
        conn.execute(statement)
        return schema_applied
    except sqlite3.OperationalError as exc:
        if not _MISSING_TABLE.search(str(exc)):
            raise
    if schema_applied:
        return True  # a table the project does not have (d1_migrations): nothing the export reads
    conn.execute("COMMIT")
    conn.executescript(SCHEMA.read_text())
    conn.execute("BEGIN")
    return _execute(conn, statement, True)


def _statements(dump: Path) -> Iterator[str]:
    """Complete SQL statements, one at a time; a statement may span lines (a title with a newline)."""
    pending: list[str] = []
    with dump.open(encoding="utf-8") as lines:
        for line in lines:
            pending.append(line)
            if line.rstrip().endswith(";") and sqlite3.complete_statement("".join(pending)):
                yield "".join(pending)
                pending = []
    rest = "".join(pending).strip()
    if rest and not rest.startswith("--"):
        yield rest


class D1HttpSource:
    """Queries a deployed D1 through Cloudflare's HTTP API (`/raw`: rows as arrays).

    There is no snapshot across calls: the export reads each table's high-water mark before paging, so a row
    that changes while it pages is caught by the next export (see docs/export.md).
    """

    name = "d1"

    def __init__(
        self,
        http: httpx.Client,
        account_id: str,
        database_id: str,
        api_token: str,
        *,
        base_url: str = CLOUDFLARE_API,
        attempts: int = 5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        settings = (
            ("CLOUDFLARE_ACCOUNT_ID", account_id),
            ("CLIPCRAWLER_D1_DATABASE_ID", database_id),
            ("CLOUDFLARE_API_TOKEN", api_token),
        )
        missing = [name for name, value in settings if not value]
        if missing:
            raise ExportError(f"--source d1-api needs {' and '.join(missing)}")
        self._http = http
        self._url = f"{base_url.rstrip('/')}/accounts/{account_id}/d1/database/{database_id}/raw"
        self._headers = {"Authorization": f"Bearer {api_token}"}
        self._attempts = attempts
        self._sleep = sleep
        self.description = f"D1 database {database_id!r} (HTTP API)"

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        # The API takes parameters as strings; the export's SQL casts the integer ones back.
        response = self._post({"sql": sql, "params": [str(p) for p in params]})
        try:
            payload = response.json()
        except ValueError:
            payload = {}
        if response.status_code != 200 or not payload.get("success"):
            errors = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in payload.get("errors") or [])
            detail = errors or "no error detail"
            raise ExportError(f"{self.description}: HTTP {response.status_code}: {detail}")
        try:
            result = payload["result"][0]
            return [tuple(row) for row in result["results"]["rows"]]
        except (KeyError, IndexError, TypeError) as exc:
            raise ExportError(f"{self.description}: unexpected response shape: {exc!r}") from exc

    def _post(self, body: dict[str, Any]) -> httpx.Response:
        """POST, waiting out 429s and retrying 5xx: a big export makes many calls to a rate-limited API."""
        for attempt in range(1, self._attempts + 1):
            last = attempt == self._attempts
            try:
                response = self._http.post(self._url, json=body, headers=self._headers)
            except httpx.TransportError as exc:
                if last:
                    raise ExportError(f"{self.description}: {type(exc).__name__}: {exc}") from exc
                self._sleep(min(2.0**attempt, MAX_WAIT_S))
                continue
            if response.status_code not in RETRIED_STATUSES or last:
                return response
            retry_after = response.headers.get("retry-after", "")
            self._sleep(min(float(retry_after) if retry_after.isdigit() else 2.0**attempt, MAX_WAIT_S))
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        pass
