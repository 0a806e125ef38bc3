"""The export carries clips.deleted_at and the games table, and a later export sees a deletion or a rename."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from local.export import CLIPS, GAMES, TABLES
from shared.timefmt import to_rfc3339
from tests.test_export_support import HOUR_S, FileCrawl, database_rows, file_crawl, latest_rows


@pytest.fixture
async def crawl(tmp_path: Path) -> AsyncIterator[FileCrawl]:
    async with file_crawl(tmp_path / "crawl.sqlite") as crawl:
        yield crawl


async def test_a_deleted_clip_and_a_renamed_game_reach_the_next_export(
    crawl: FileCrawl, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    await crawl.crawl()
    first = crawl.export(out)
    assert {t.table: t.rows for t in first.tables}["games"] == len(database_rows(crawl.path, GAMES)) > 0
    assert all(r["deleted_at"] is None for r in latest_rows(out, CLIPS))

    crawl.clock.advance(HOUR_S)
    now = to_rfc3339(crawl.clock.now())
    clip_id, game_id = crawl.sql("SELECT id, game_id FROM clips ORDER BY id LIMIT 1")[0]
    # How the deletion check records it: deleted_at set, and last_seen_at moved so the export sees the row.
    crawl.sql("UPDATE clips SET deleted_at = ?, last_seen_at = ? WHERE id = ?", now, now, clip_id)
    crawl.sql("UPDATE games SET name = 'Renamed', fetched_at = ? WHERE id = ?", now, game_id)
    report = crawl.export(out)

    assert {t.table: t.rows for t in report.tables}["clips"] == 1
    assert {t.table: t.rows for t in report.tables}["games"] == 1
    for spec in TABLES:
        assert latest_rows(out, spec) == database_rows(crawl.path, spec), spec.name
    deleted = [r for r in latest_rows(out, CLIPS) if r["deleted_at"] is not None]
    assert [(r["id"], r["deleted_at"]) for r in deleted] == [
        (clip_id, datetime.fromtimestamp(crawl.clock.now(), tz=UTC).replace(microsecond=0))
    ]

    # The join docs/export.md shows: every clip with its game's name (NULL where the game is unknown).
    named = duckdb.sql(
        f"WITH clips AS (SELECT * FROM read_parquet('{out}/clips/**/*.parquet', hive_partitioning = true) "
        "QUALIFY row_number() OVER (PARTITION BY id ORDER BY exported_at DESC) = 1), "
        f"games AS (SELECT * FROM read_parquet('{out}/games/**/*.parquet', hive_partitioning = true) "
        "QUALIFY row_number() OVER (PARTITION BY id ORDER BY exported_at DESC) = 1) "
        "SELECT clips.id, games.name FROM clips LEFT JOIN games ON games.id = clips.game_id "
        "WHERE clips.id = ?",
        params=[clip_id],
    ).fetchall()
    assert named == [(clip_id, "Renamed")]
