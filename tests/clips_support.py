"""Clips written straight into the database, with known attributes, for the GET /clips and dashboard tests."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

from shared.ports import Database
from shared.timefmt import to_rfc3339

T0 = 1_789_000_000.0  # 2026-09-10T00:26:40Z: every seeded clip is created in the 10 days after it
GAMES = {"509658": "Just Chatting", "743": "Chess", "18122": "World of Warcraft"}
UNKNOWN_GAME = "515025"  # clips carry it, the games table does not know it


@dataclass(frozen=True)
class SeededClip:
    id: str
    broadcaster_id: str
    game_id: str
    created_at: str
    view_count: int
    is_featured: bool
    deleted_at: str | None


async def seed_games(db: Database, fetched_at: float = T0) -> None:
    for game_id, name in GAMES.items():
        await db.run(
            "INSERT INTO games (id, name, box_art_url, fetched_at) VALUES (?, ?, ?, ?)",
            game_id,
            name,
            f"https://static-cdn.jtvnw.net/ttv-boxart/{game_id}-{{width}}x{{height}}.jpg",
            to_rfc3339(fetched_at),
        )


async def seed_clips(
    db: Database, broadcasters: list[tuple[str, str]], count: int, *, seed: int = 3
) -> list[SeededClip]:
    """`count` clips over `broadcasters` ((id, name) pairs): varied games, times, views; some ties, some
    deleted.
    """
    rng = random.Random(seed)
    games = [*GAMES, UNKNOWN_GAME]
    clips: list[dict[str, Any]] = []
    for i in range(count):
        broadcaster_id, name = broadcasters[i % len(broadcasters)]
        created = T0 + rng.randrange(0, 10 * 86_400)
        if i % 9 == 0 and clips:  # a tie on created_at with an earlier clip: the id decides
            created_at = clips[-1]["created_at"]
        else:
            created_at = to_rfc3339(created)
        clip_id = f"Clip{i:04d}-{rng.randrange(16**6):06x}"
        clips.append(
            {
                "id": clip_id,
                "broadcaster_id": broadcaster_id,
                "broadcaster_name": name,
                "creator_id": "99",
                "creator_name": "clipper",
                "video_id": "",
                "game_id": rng.choice(games),
                "language": "en",
                "title": f"Clip number {i}",
                "view_count": rng.choice([1, 1, 1, 5, 5, rng.randrange(10_000)]),
                "created_at": created_at,
                "url": f"https://clips.twitch.tv/{clip_id}",
                "embed_url": f"https://clips.twitch.tv/embed?clip={clip_id}",
                "thumbnail_url": f"https://static-cdn.jtvnw.net/twitch-clips-thumbnails-prod/{clip_id}/preview-480x272.jpg",
                "duration": 30.0,
                "vod_offset": None,
                "is_featured": int(rng.random() < 0.2),
                "first_seen_at": created_at,
                "last_seen_at": created_at,
                "deleted_at": to_rfc3339(T0 + 11 * 86_400) if rng.random() < 0.15 else None,
            }
        )
    columns = list(clips[0])
    await db.run(
        f"INSERT INTO clips ({', '.join(columns)}) SELECT "
        + ", ".join(f"json_extract(value, '$.{c}')" for c in columns)
        + " FROM json_each(?)",
        json.dumps(clips),
    )
    return [
        SeededClip(
            c["id"],
            c["broadcaster_id"],
            c["game_id"],
            c["created_at"],
            c["view_count"],
            bool(c["is_featured"]),
            c["deleted_at"],
        )
        for c in clips
    ]
