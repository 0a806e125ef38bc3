"""A local database an older clipcrawler made is brought up to date when this one opens it.

Before, a file from before a migration failed at the first statement naming its column: a user who upgraded
saw `SQLite error: no such column: walk_state` from `clipcrawler crawl` and had no way on but a new file.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from local.schema_upgrade import SCHEMA, migrations
from local.sqlite_db import SqliteDatabase
from tests.cli_support import run, user_env


def columns(path: Path | str) -> dict[str, set[str]]:
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {
            t: {r[0] for r in conn.execute("SELECT name FROM pragma_table_info(?)", (t,))}
            for t in tables
            if not t.startswith("sqlite_")
        }


def user_version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


def made_by_an_older_version(path: Path, applied: int, *, counted: bool) -> None:
    """The first `applied` migrations, as a clipcrawler of that time left the file (`counted`: one that
    kept the count), with a streamer and a clip in it."""
    with sqlite3.connect(path) as conn:
        for migration in migrations()[:applied]:
            conn.executescript(migration.read_text())
        conn.execute(
            "INSERT INTO streamers (id, login, display_name, active, added_at) "
            "VALUES ('1', 'old', 'Old', 1, '2026-01-01T00:00:00Z')"
        )
        given = {"id": "OldClip", "broadcaster_id": "1", "created_at": "2026-01-01T00:00:00Z"}
        given["view_count"] = 12345
        row = {
            name: given.get(name, 0 if kind.upper() in ("INTEGER", "REAL") else "")
            for name, kind, not_null, default in conn.execute(
                'SELECT name, type, "notnull", dflt_value FROM pragma_table_info(\'clips\')'
            )
            if name in given or (not_null and default is None)
        }
        conn.execute(
            f"INSERT INTO clips ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", list(row.values())
        )
        if counted:
            conn.execute(f"PRAGMA user_version = {applied}")


def fresh_columns(tmp_path: Path) -> dict[str, set[str]]:
    with sqlite3.connect(tmp_path / "fresh.sqlite") as conn:
        conn.executescript(SCHEMA.read_text())
    return columns(tmp_path / "fresh.sqlite")


async def test_a_file_from_before_the_count_was_kept_gets_every_column_and_keeps_its_rows(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.sqlite"
    made_by_an_older_version(path, 6, counted=False)  # before walk_state (0006) and the token refusal (0007)
    assert "walk_state" not in columns(path)["jobs"]
    db = await SqliteDatabase.open(path, create=False)
    try:
        assert await db.all("SELECT id, view_count FROM clips") == [{"id": "OldClip", "view_count": 12345}]
        assert await db.all("SELECT walk_state FROM jobs") == []
    finally:
        await db.close()
    assert columns(path) == fresh_columns(tmp_path)
    assert user_version(path) == len(migrations())


async def test_the_first_migrations_file_gets_the_rest_and_their_data_steps(tmp_path: Path) -> None:
    path = tmp_path / "first.sqlite"
    made_by_an_older_version(path, 1, counted=True)
    db = await SqliteDatabase.open(path, create=False)
    try:
        # 0003 adds view_digits and fills it for the clips already there.
        assert await db.all("SELECT view_digits FROM clips") == [{"view_digits": 5}]
    finally:
        await db.close()
    assert columns(path) == fresh_columns(tmp_path)
    assert user_version(path) == len(migrations())


async def test_a_new_file_counts_every_migration_and_opens_again_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite"
    for _ in range(2):
        db = await SqliteDatabase.open(path)
        await db.close()
    assert user_version(path) == len(migrations())
    assert columns(path) == fresh_columns(tmp_path)


def test_the_cli_crawls_into_a_file_an_older_version_made(tmp_path: Path) -> None:
    made_by_an_older_version(tmp_path / "old.sqlite", 5, counted=False)
    result = run(
        ["--db", "old.sqlite", "demo", "--streamers", "3", "--json"], cwd=tmp_path, env=user_env(), timeout=90
    )
    assert result.code == 0, result.err
    assert "no such column" not in result.err
    with sqlite3.connect(tmp_path / "old.sqlite") as conn:
        assert conn.execute("SELECT count(*) FROM clips WHERE id = 'OldClip'").fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM jobs WHERE status = 'done'").fetchone()[0] >= 3
