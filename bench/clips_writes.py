"""What the indexes of GET /clips cost the crawl: D1 rows written by the clip upsert, with and without them
(and clips_check_due, 0004's).

    python -m bench.clips_writes [--out bench/clips_writes.md]
    (needs `npm ci`: Miniflare's D1 is the meter)

The crawler's own upsert statement (shared/store.py) writes a page of 100 new clips, then the same page
with every view count moved (what a re-crawl of young clips does), then with only the title changed. Each
runs on Miniflare's D1 with schema.sql as it is, and with the indexes migrations 0003 and 0004 added (and
0003's view_digits triggers) dropped. The game_id is set only where it changed (store._MOVE_GAME).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from local.d1_meter import MiniflareD1
from shared.clips import COLUMNS
from shared.ports import Statement
from shared.store import _MOVE_GAME, EXACT_VIEW_COUNTS, ClipWrites

REPORT = Path(__file__).resolve().parent / "clips_writes.md"
# bench/week.md (adaptive schedule, 200 streamers): the calibration's clip upserts wrote 15,441 rows for 8,289
# changed clips, 4 rows per new clip (table + 3 indexes) and 1 per rewrite; the week's mean day wrote 18,100
# rows by clip upserts and 43,751 in all, of the Free plan's 100,000.
CALIBRATION_ROWS, CALIBRATION_CHANGES = 15_441, 8_289
MEAN_DAY_UPSERT_ROWS, MEAN_DAY_ROWS, FREE_ROWS = 18_100, 43_751, 100_000
NOW = "2026-09-21T14:00:00Z"
PAGE = 100
ADDED = (
    "clips_game_created",
    "clips_views_magnitude",
    "clips_broadcaster_views_magnitude",
    "clips_deleted_created",
    "clips_deleted_views",
    "clips_deleted_broadcaster",
    "clips_deleted_game",
    "clips_featured_game_views",
    "clips_check_due",
)
TRIGGERS = ("clips_view_digits_inserted", "clips_view_digits_moved")


def page(views: int, title: str = "t", game_shift: int = 0) -> str:
    clips: list[dict[str, Any]] = []
    for i in range(PAGE):
        clip = {c: "x" for c in COLUMNS}
        clip.update(
            id=f"Clip{i:04d}",
            broadcaster_id="1",
            game_id=str(500 + game_shift + i % 7),
            video_id="",
            title=title,
            view_count=views + i,
            created_at=f"2026-09-21T1{i % 4}:00:00Z",
            duration=30.0,
            vod_offset=None,
            is_featured=False,
        )
        clips.append(clip)
    return json.dumps(clips)


PAGES = (
    page(10),
    page(50_000),
    page(50_000, title="renamed"),
    page(60_000, title="renamed"),
    page(60_000, title="renamed", game_shift=1),
)
WRITES = (
    "100 new clips",
    "100 view counts gaining digits",
    "100 titles changed",
    "100 view counts moved within their digits",
    "100 games changed",
)


async def measure(drop: bool) -> list[int]:
    db = await MiniflareD1.open()
    try:
        for index in ADDED if drop else ():
            await db.run(f"DROP INDEX {index}")
        for trigger in TRIGGERS if drop else ():
            await db.run(f"DROP TRIGGER {trigger}")
        await db.run("INSERT INTO streamers (id, login, added_at) VALUES ('1', 'a', ?)", NOW)
        await db.run("INSERT INTO runs (kind, status, created_at) VALUES ('manual', 'running', ?)", NOW)
        await db.run(
            "INSERT INTO jobs (run_id, streamer_id, status, lease_token, due_at, created_at) "
            "VALUES (1, '1', 'running', 'lease', ?, ?)",
            NOW,
            NOW,
        )
        written = []
        for body in PAGES:
            # The page write's two clip statements: the upsert, and the game move (game_id only where it
            # changed).
            upsert = ClipWrites.CHANGED_ONLY.statement(
                now=NOW,
                page=body,
                job_id=1,
                run_id=1,
                streamer_id="1",
                lease_token="lease",
                views=EXACT_VIEW_COUNTS,
            )
            results = await db.batch([upsert, Statement(_MOVE_GAME, (body, 1, 1, "1", "lease"))])
            written.append(sum(r.rows_written for r in results))
        return written
    finally:
        await db.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.clips_writes", description=" ".join(__doc__.split("\n\n")[0].split())
    )
    parser.add_argument("--out", type=Path, default=REPORT, help="the report (Markdown); '-' for stdout only")
    args = parser.parse_args(argv)
    before = asyncio.run(measure(drop=True))
    after = asyncio.run(measure(drop=False))
    lines = [
        "# What the indexes of GET /clips cost the crawl",
        "",
        "Command: `python -m bench.clips_writes` (Miniflare's D1 meters `rows_written`).",
        "",
        f"D1 rows written by one upsert of {PAGE} clips (shared/store.py's statement):",
        "",
        "| write | without 0003's and 0004's indexes | with them | per clip, added |",
        "|---|---:|---:|---:|",
    ]
    for name, b, a in zip(WRITES, before, after, strict=True):
        lines.append(f"| {name} | {b:,} | {a:,} | {(a - b) / PAGE:+.1f} |")
    # Split the calibration into new clips and rewrites (4 and 1 rows each), then scale it to the mean day.
    new = (CALIBRATION_ROWS - CALIBRATION_CHANGES) / 3
    rewrites = CALIBRATION_CHANGES - new
    scale = MEAN_DAY_UPSERT_ROWS / CALIBRATION_ROWS
    added = scale * (new * (after[0] - before[0]) + rewrites * (after[3] - before[3])) / PAGE
    total = MEAN_DAY_ROWS + added  # a clip gains a digit a few times in its life: left out of the estimate
    lines += [
        "",
        f"Estimate for bench/week.md's mean day (200 streamers, adaptive schedule): about "
        f"{new * scale:,.0f} new clips and {rewrites * scale:,.0f} rewrites a day, so about {added:,.0f} "
        "more "
        f"rows written: {total:,.0f} of the Free plan's {FREE_ROWS:,} ({1 - total / FREE_ROWS:.0%} headroom, "
        f"was {1 - MEAN_DAY_ROWS / FREE_ROWS:.0%}). An estimate from the calibration's split, not a re-run "
        "of bench.week.",
        "",
    ]
    report = "\n".join(lines)
    print(report)
    if str(args.out) != "-":
        args.out.write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
