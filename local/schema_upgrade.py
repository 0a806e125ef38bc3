"""A local database made by an older clipcrawler gets the columns and tables this one reads.

On D1, `wrangler d1 migrations apply` does this. Locally `schema.sql` used to be applied with `CREATE ... IF
NOT EXISTS` only, so a file from before a migration failed at its first statement that named a new column
("no such column: walk_state"). `PRAGMA user_version` counts the migrations a file has had: a new file gets
schema.sql and every migration counted; an older one gets the migrations after its count (a column that is
already there is skipped, for files from before the count was kept), then any column schema.sql has that it
still lacks, then schema.sql for the new tables, indexes and triggers.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import aiosqlite

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "schema.sql"
MIGRATIONS = ROOT / "migrations"
_COLUMNS = 'SELECT name, type, "notnull", dflt_value FROM pragma_table_info(?)'


def migrations() -> list[Path]:
    return sorted(MIGRATIONS.glob("*.sql"))


async def bring_up_to_date(conn: aiosqlite.Connection) -> None:
    """Apply what the file lacks, in one transaction (another process opening it meanwhile waits)."""
    known = migrations()
    if await _counted(conn) >= len(known):
        # Up to date: as before the count was kept, and no write lock (a read-only file still opens).
        await conn.executescript(SCHEMA.read_text())
        return
    await conn.execute("BEGIN IMMEDIATE")
    try:
        applied = await _counted(conn)  # again, under the lock: another process may have just done it
        if await _tables(conn) and applied < len(known):
            for path in known[applied:]:
                for statement in statements(path):
                    await _tolerant(conn, statement)
            await _add_missing_columns(conn)
        for statement in statements(SCHEMA):
            await conn.execute(statement)
        await conn.execute(f"PRAGMA user_version = {max(applied, len(known))}")
        await conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            await conn.execute("ROLLBACK")
        raise


async def _counted(conn: aiosqlite.Connection) -> int:
    row = await (await conn.execute("PRAGMA user_version")).fetchone()
    return int(row[0]) if row else 0


def statements(path: Path) -> list[str]:
    """The statements of an SQL file, in order, split where SQLite says a statement ends (triggers whole)."""
    found, pending = [], ""
    for line in path.read_text().splitlines(keepends=True):
        if not pending and (not line.strip() or line.lstrip().startswith("--")):
            continue
        pending += line
        if sqlite3.complete_statement(pending):
            found.append(pending.strip())
            pending = ""
    if pending.strip():
        raise ValueError(f"{path.name} ends inside a statement: {pending.strip()[:60]!r}")
    return found


async def _tables(conn: aiosqlite.Connection) -> set[str]:
    rows = await conn.execute_fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")
    return {str(r[0]) for r in rows}


async def _tolerant(conn: aiosqlite.Connection, statement: str) -> None:
    try:
        await conn.execute(statement)
    except sqlite3.OperationalError as exc:
        # A file from before the count was kept may have had this migration's column from schema.sql.
        if "duplicate column name" not in str(exc):
            raise


async def _add_missing_columns(conn: aiosqlite.Connection) -> None:
    """Columns schema.sql declares that an existing table lacks (0000_initial.sql followed schema.sql while
    nothing was deployed, so early files can lack columns no migration adds)."""
    reference = sqlite3.connect(":memory:")
    try:
        reference.executescript(SCHEMA.read_text())
        wanted = {
            str(table): reference.execute(_COLUMNS, (table,)).fetchall()
            for (table,) in reference.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            ).fetchall()
        }
    finally:
        reference.close()
    present = await _tables(conn)
    for table, columns in wanted.items():
        if table not in present:
            continue  # schema.sql creates it whole
        have = {str(r[0]) for r in await conn.execute_fetchall(_COLUMNS, (table,))}
        for name, kind, not_null, default in columns:
            if name in have:
                continue
            definition = f'"{name}" {kind}'
            if default is not None:
                definition += f" DEFAULT {default}"
            if not_null and default is not None:
                definition += " NOT NULL"
            await conn.execute(f'ALTER TABLE "{table}" ADD COLUMN {definition}')
