"""GET /clips at a million clips: each filter, timed through the producer's app, median of 20 (not a test).

    python -m bench.clips_api [--clips 1000000] [--db PATH] [--rebuild] [--repeat 20] [--out
    bench/clips_api.md]

Builds (once; kept at --db) a local SQLite database shaped like a busy archive: 2,000 streamers over five
years, heavy-tailed view counts (most clips have a handful of views), 60 games of very unequal size (a few
not in `games`), 5% featured, 3% deleted. Each case is one GET /clips through the ASGI app over aiosqlite,
as `clipcrawler serve` answers it, so the time includes validation, the query and the JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from local.clock import VirtualClock
from local.sqlite_db import SCHEMA, SqliteDatabase
from producer.app import create_app
from producer.context import AppContext
from shared.config import Settings
from shared.ports import Ports
from shared.timefmt import to_rfc3339

NOW = 1_790_000_000.0  # 2026-09-21T14:13:20Z
DAY = 86_400
YEARS = 5
STREAMERS = 2_000
GAMES = 60
UNNAMED_GAMES = 5  # game ids clips carry that `games` does not know
TOKEN = "bench-token-of-16-chars-or-more"
TARGET_MS = 50.0
REPORT = Path(__file__).resolve().parent / "clips_api.md"
BUSY_STREAMER = "10000000"  # the first streamer gets the most clips (Zipf)
BIG_GAME, MID_GAME, SMALL_GAME = "1000", "1024", "1040"  # ~43,000, ~6,200, ~3,400 clips


def build(path: Path, clips: int, seed: int = 15) -> None:
    """Write the database in one transaction; indexes are created by schema.sql before the rows go in."""
    rng = random.Random(seed)
    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(SCHEMA.read_text())
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("BEGIN")
    added = to_rfc3339(NOW - YEARS * 365 * DAY)
    conn.executemany(
        "INSERT INTO streamers (id, login, display_name, added_at) VALUES (?, ?, ?, ?)",
        ((str(10_000_000 + i), f"streamer{i:05d}", f"Streamer{i}", added) for i in range(STREAMERS)),
    )
    conn.executemany(
        "INSERT INTO games (id, name, box_art_url, fetched_at) VALUES (?, ?, ?, ?)",
        (
            (
                str(1000 + g),
                f"Game {g}",
                f"https://static-cdn.jtvnw.net/ttv-boxart/{1000 + g}-{{width}}x{{height}}.jpg",
                to_rfc3339(NOW),
            )
            for g in range(GAMES - UNNAMED_GAMES)
        ),
    )
    streamer_weights = [1 / (i + 1) ** 0.8 for i in range(STREAMERS)]
    game_weights = [1 / (g + 1) ** 1.2 for g in range(GAMES)]
    columns = (
        "id, broadcaster_id, broadcaster_name, creator_id, creator_name, video_id, game_id, language, "
        "title, view_count, created_at, url, embed_url, thumbnail_url, duration, vod_offset, is_featured, "
        "first_seen_at, last_seen_at, deleted_at"
    )
    batch = 50_000
    for start in range(0, clips, batch):
        owners = rng.choices(range(STREAMERS), streamer_weights, k=min(batch, clips - start))
        games = rng.choices(range(GAMES), game_weights, k=len(owners))
        rows = []
        for offset, (owner, game) in enumerate(zip(owners, games, strict=True)):
            i = start + offset
            clip = f"Bench{i:07d}Clip-{rng.getrandbits(48):012x}"
            created = to_rfc3339(NOW - rng.randrange(YEARS * 365 * DAY))
            views = int(rng.paretovariate(1.1)) if rng.random() < 0.97 else rng.randrange(10_000, 3_000_000)
            deleted = to_rfc3339(NOW - rng.randrange(30 * DAY)) if rng.random() < 0.03 else None
            rows.append(
                (
                    clip,
                    str(10_000_000 + owner),
                    f"Streamer{owner}",
                    str(500_000_000 + rng.randrange(10**6)),
                    f"Viewer{rng.randrange(10**6)}",
                    "",
                    str(1000 + game),
                    "en",
                    f"Bench clip {i}",
                    views,
                    created,
                    f"https://clips.twitch.tv/{clip}",
                    f"https://clips.twitch.tv/embed?clip={clip}",
                    f"https://static-cdn.jtvnw.net/twitch-clips-thumbnails-prod/{clip}/preview-480x272.jpg",
                    30.0,
                    None,
                    int(rng.random() < 0.05),
                    created,
                    created,
                    deleted,
                )
            )
        conn.executemany(f"INSERT INTO clips ({columns}) VALUES ({', '.join('?' * 20)})", rows)
    conn.execute("COMMIT")
    conn.close()


CASES: list[tuple[str, dict[str, str]]] = [
    ("no filter, newest", {}),
    ("no filter, most viewed", {"sort": "views"}),
    ("streamer (busiest), newest", {"streamer": BUSY_STREAMER}),
    ("streamer (busiest), most viewed", {"streamer": BUSY_STREAMER, "sort": "views"}),
    ("streamer by login, newest", {"streamer": "streamer01234"}),
    ("game (biggest), newest", {"game": BIG_GAME}),
    ("game (biggest), most viewed", {"game": BIG_GAME, "sort": "views"}),
    ("game (small) by name, newest", {"game": "Game 40"}),
    ("game (small), most viewed", {"game": SMALL_GAME, "sort": "views"}),
    # Just over the probe's 5,000 clips: the game's clips are found by walking all clips by views.
    ("game (~6,000 clips), most viewed", {"game": MID_GAME, "sort": "views"}),
    ("game (~6,000 clips), featured, most viewed", {"game": MID_GAME, "featured": "true", "sort": "views"}),
    ("game (biggest), featured, most viewed", {"game": BIG_GAME, "featured": "true", "sort": "views"}),
    ("created in one day, newest", {"created_from": "2025-03-01", "created_to": "2025-03-01"}),
    (
        "created in one day, most viewed",
        {"created_from": "2025-03-01", "created_to": "2025-03-01", "sort": "views"},
    ),
    (
        "created in 90 days, most viewed",
        {"created_from": "2025-01-01", "created_to": "2025-03-31", "sort": "views"},
    ),
    (
        "created in 8 days, most viewed",
        {"created_from": "2025-03-01", "created_to": "2025-03-08", "sort": "views"},
    ),
    ("featured, newest", {"featured": "true"}),
    ("featured, most viewed", {"featured": "true", "sort": "views"}),
    ("not featured, newest", {"featured": "false"}),
    ("deleted only, newest", {"deleted": "only"}),
    ("deleted only, most viewed", {"deleted": "only", "sort": "views"}),
    ("deleted included, newest", {"deleted": "include"}),
    ("streamer + game, newest", {"streamer": BUSY_STREAMER, "game": BIG_GAME}),
    (
        "streamer + game + 1 year, most viewed",
        {
            "streamer": BUSY_STREAMER,
            "game": BIG_GAME,
            "created_from": "2024-01-01",
            "created_to": "2024-12-31",
            "sort": "views",
        },
    ),
    ("game + featured + deleted only, newest", {"game": BIG_GAME, "featured": "true", "deleted": "only"}),
    ("no filter, newest, 100 per page", {"limit": "100"}),
]


async def measure(path: Path, repeat: int) -> list[tuple[str, dict[str, str], float, float, int]]:
    """(case, params, median ms, max ms, clips answered) per case, plus deep pages by cursor."""
    db = await SqliteDatabase.open(path, apply_schema=False)
    clock = VirtualClock(NOW)
    ports = Ports(db=db, queue=None, clock=clock)  # type: ignore[arg-type]  # GET /clips sends nothing
    context = AppContext(ports=ports, settings=Settings(), api_token=TOKEN)

    async def factory(request: object) -> AppContext:
        return context

    results = []
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(factory)), base_url="http://bench"
    ) as client:

        async def timed(params: dict[str, str]) -> tuple[float, dict[str, Any]]:
            began = time.perf_counter()
            response = await client.get("/clips", params=params, headers=headers)
            elapsed = (time.perf_counter() - began) * 1000
            if response.status_code != 200:
                raise SystemExit(
                    f"GET /clips {params} answered {response.status_code}: {response.text[:300]}"
                )
            return elapsed, response.json()

        cases = list(CASES)
        for sort in ("newest", "views"):  # the 50th page, reached by following next_after
            params: dict[str, str] = {"sort": sort}
            for _ in range(49):
                _, body = await timed(params)
                params = {"sort": sort, "after": body["next_after"]}
            cases.append((f"page 50 by cursor, {'newest' if sort == 'newest' else 'most viewed'}", params))
        for name, params in cases:
            await timed(params)  # warm the page cache: the median is of a warm database, as a serving one is
            times = []
            for _ in range(repeat):
                elapsed, body = await timed(params)
                times.append(elapsed)
            results.append((name, params, statistics.median(times), max(times), len(body["clips"])))
    await db.close()
    return results


def render(
    clips: int,
    repeat: int,
    results: list[tuple[str, dict[str, str], float, float, int]],
    build_s: float | None,
    size_mb: float,
) -> str:
    over = [r for r in results if r[2] >= TARGET_MS]
    lines = [
        "# GET /clips at a million clips",
        "",
        f"Command: `python -m bench.clips_api --clips {clips}` (`.venv/bin/python`; the database is built "
        "once and "
        "kept in the temp directory, `--rebuild` builds it again).",
        "",
        f"Database: {clips:,} clips of {STREAMERS:,} streamers over {YEARS} years (Zipf-sized streamers and "
        f"games; {GAMES} games, {UNNAMED_GAMES} of them not in `games`), heavy-tailed views, 5% featured, 3% "
        f"deleted; {size_mb:,.0f} MB on disk"
        + (f", built in {build_s:.0f} s." if build_s is not None else ", built by an earlier run."),
        "Each case is one GET /clips (default page of 25 unless said) through the producer's ASGI app over "
        f"aiosqlite, after one warm-up request; median and worst of {repeat}. Target: median under "
        f"{TARGET_MS:.0f} ms for each.",
        "",
        "Result: "
        + ("every case is under the target" if not over else f"{len(over)} case(s) over the target")
        + ".",
        "",
        "| case | parameters | median ms | worst ms | clips |",
        "|---|---|---:|---:|---:|",
    ]
    for name, params, median, worst, count in results:
        shown = ", ".join(f"{k}={v if k != 'after' else '…'}" for k, v in params.items()) or "–"
        lines.append(f"| {name} | `{shown}` | {median:.1f} | {worst:.1f} | {count} |")
    lines += [
        "",
        "Machine: shared with other jobs (2 cores); figures are of one run, not a controlled lab.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.clips_api", description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=1_000_000)
    parser.add_argument(
        "--db", type=Path, default=None, help="where the database is kept (default: temp dir)"
    )
    parser.add_argument("--rebuild", action="store_true", help="build the database even if it exists")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--out", type=Path, default=REPORT, help="the report (Markdown); '-' for stdout only")
    args = parser.parse_args(argv)
    path = args.db or Path(tempfile.gettempdir()) / f"clipcrawler-bench-clips-{args.clips}.sqlite"
    build_s = None
    if args.rebuild or not path.exists():
        began = time.perf_counter()
        print(f"building {args.clips:,} clips at {path} ...", file=sys.stderr)
        build(path, args.clips)
        build_s = time.perf_counter() - began
    results = asyncio.run(measure(path, args.repeat))
    report = render(args.clips, args.repeat, results, build_s, path.stat().st_size / 1e6)
    print(report)
    if str(args.out) != "-":
        args.out.write_text(report)
    return 0 if all(r[2] < TARGET_MS for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
