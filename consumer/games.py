"""Games for the game ids a crawl brought in: looked up once, through Get Games, never by a pass over all
clips."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from shared.ports import Statement
from shared.timefmt import to_rfc3339

# The job's clips (by the broadcaster's creation index) whose game is neither stored nor recently unknown.
_MISSING = (
    "SELECT DISTINCT c.game_id AS id FROM clips AS c WHERE c.broadcaster_id = ?1 AND c.created_at >= ?2 "
    "AND c.game_id != '' AND NOT EXISTS (SELECT 1 FROM games AS g WHERE g.id = c.game_id) "
    "AND NOT EXISTS (SELECT 1 FROM games_unknown AS u WHERE u.id = c.game_id AND u.asked_at > ?3) LIMIT ?4"
)


def missing(broadcaster_id: str, since: str, unknown_after: float, limit: int) -> Statement:
    """Game ids of the streamer's clips created since `since` that no reader can name yet."""
    return Statement(_MISSING, (broadcaster_id, since, to_rfc3339(unknown_after), limit))


def store(games: Sequence[dict[str, Any]], now: float) -> Statement:
    """Upsert Get Games entries (box art stays Twitch's {width}x{height} template)."""
    rows = [
        {
            "id": g["id"],
            "name": g["name"],
            "box_art_url": _text(g.get("box_art_url")),
            "igdb_id": _text(g.get("igdb_id")),
        }
        for g in games
    ]
    return Statement(
        "INSERT INTO games (id, name, box_art_url, igdb_id, fetched_at) "
        "SELECT json_extract(value, '$.id'), json_extract(value, '$.name'), json_extract(value, "
        "'$.box_art_url'), "
        "json_extract(value, '$.igdb_id'), ?1 FROM json_each(?2) WHERE true "
        "ON CONFLICT (id) DO UPDATE SET name = excluded.name, box_art_url = excluded.box_art_url, "
        "igdb_id = excluded.igdb_id, fetched_at = excluded.fetched_at",
        (to_rfc3339(now), json.dumps(rows, ensure_ascii=False)),
    )


def store_unknown(game_ids: Sequence[str], now: float) -> Statement:
    """Ids Get Games left out: not asked again until games_retry_days have passed."""
    return Statement(
        "INSERT INTO games_unknown (id, asked_at) SELECT value, ?1 FROM json_each(?2) WHERE true "
        "ON CONFLICT (id) DO UPDATE SET asked_at = excluded.asked_at",
        (to_rfc3339(now), json.dumps(list(game_ids))),
    )


def _text(value: object) -> str:
    return value[:1_000] if isinstance(value, str) else ""
