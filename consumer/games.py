"""Games for the game ids crawls bring in: collected by each job's last write, named once per run.

Each completed job's last write adds the game ids of its clips that no reader can name to `games_wanted`, in
the same round trip (a write only for an id not seen before). The write that finishes the run also reads
them back, so that one invocation names the whole run's new games through Get Games, 100 a call, instead of
one call in every crawl that met a new game. What it cannot name (budget, Twitch's rate limit, a run closed
by a failure) stays wanted for the next run's last invocation. Never a pass over all clips.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from shared.ports import Statement
from shared.states import RunStatus
from shared.timefmt import to_rfc3339

# The job's clips (by the broadcaster's creation index) whose game is neither stored, nor recently unknown,
# nor wanted already.
_WANT = (
    "INSERT INTO games_wanted (id, wanted_at) "
    "SELECT DISTINCT c.game_id, ?4 FROM clips AS c WHERE c.broadcaster_id = ?1 AND c.created_at >= ?2 "
    "AND c.game_id != '' AND NOT EXISTS (SELECT 1 FROM games AS g WHERE g.id = c.game_id) "
    "AND NOT EXISTS (SELECT 1 FROM games_unknown AS u WHERE u.id = c.game_id AND u.asked_at > ?3) "
    "AND NOT EXISTS (SELECT 1 FROM games_wanted AS w WHERE w.id = c.game_id) "
    "ON CONFLICT (id) DO NOTHING"
)


def want(broadcaster_id: str, since: str, unknown_after: float, now: float) -> Statement:
    """Add the game ids of the streamer's clips created since `since` that no reader can name yet."""
    return Statement(_WANT, (broadcaster_id, since, to_rfc3339(unknown_after), to_rfc3339(now)))


def wanted_if_run_finished(run_id: int, limit: int) -> Statement:
    """The first `limit` wanted game ids, read only once the run is finished (by the write it rides on).

    `id > ''` lets the primary key bound the read to `limit` rows (what is left waits for the next run).
    """
    return Statement(
        "SELECT id FROM games_wanted WHERE id > ?3 "
        "AND EXISTS (SELECT 1 FROM runs WHERE id = ?1 AND status = ?2) ORDER BY id LIMIT ?4",
        (run_id, RunStatus.FINISHED, "", limit),
    )


def no_longer_wanted(game_ids: Sequence[str]) -> Statement:
    """Ids Get Games answered for (named, or recorded unknown)."""
    return Statement(
        "DELETE FROM games_wanted WHERE id IN (SELECT value FROM json_each(?1))",
        (json.dumps(list(game_ids)),),
    )


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
