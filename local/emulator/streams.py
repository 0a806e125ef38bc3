"""Get Streams in the emulated world: who is on air now, with every field Twitch returns."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

from local.emulator.world import HelixWorld, Streamer
from shared.timefmt import to_rfc3339

_PREVIEWS = "https://static-cdn.jtvnw.net/previews-ttv/live_user_"
# Twitch's automatic language tag, in the language's own name.
_LANGUAGE_TAGS = {
    "en": "English",
    "ja": "日本語",
    "de": "Deutsch",
    "es": "Español",
    "fr": "Français",
    "pt": "Português",
    "ko": "한국어",
}
_TAGS = ("Chill", "Competitive", "NoBackseating", "Speedrun", "Casual", "Ranked", "Interactive", "Cozy")
_TITLE_WORDS = (
    "ranked grind",
    "chill vibes",
    "first playthrough",
    "road to top 500",
    "viewer games",
    "late night",
    "new season",
    "challenge run",
    "just vibing",
    "come hang out",
)


@dataclass(frozen=True)
class StreamFilters:
    """The filters of Get Streams; an empty one does not filter."""

    user_ids: tuple[str, ...] = ()
    user_logins: tuple[str, ...] = ()
    game_ids: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()


def live_streams(world: HelixWorld, filters: StreamFilters) -> list[dict[str, Any]]:
    """The streams on air now that pass the filters, most viewers first (ties by user id)."""
    streams = [stream for streamer in _candidates(world, filters) if (stream := live_stream(world, streamer))]
    if filters.game_ids:
        streams = [s for s in streams if s["game_id"] in filters.game_ids]
    if filters.languages:
        streams = [s for s in streams if s["language"] in filters.languages]
    return sorted(streams, key=lambda s: (-s["viewer_count"], s["user_id"]))


def live_stream(world: HelixWorld, streamer: Streamer) -> dict[str, Any] | None:
    """The streamer's stream as a Get Streams entry, or None while it is off air."""
    on_air = world.on_air(streamer.id)
    if on_air is None:
        return None
    since, game_id = on_air.since, on_air.game_id
    session = math.floor(since)
    game_name = world.games.name_of(game_id)
    tags = [
        t
        for t in (
            _LANGUAGE_TAGS.get(streamer.language),
            _pick(_TAGS, world.seed, "tag", streamer.id, session),
        )
        if t
    ]
    return {
        "id": str(10_000_000_000 + _digest(world.seed, "stream", streamer.id, session) % 90_000_000_000),
        "user_id": streamer.id,
        "user_login": streamer.login,
        "user_name": streamer.display_name,
        "game_id": game_id,
        "game_name": game_name,
        "type": "live",
        "title": f"{game_name}: {_pick(_TITLE_WORDS, world.seed, 'title', streamer.id, session)}",
        "viewer_count": _viewers(world, streamer),
        "started_at": to_rfc3339(since),
        "language": streamer.language,
        "thumbnail_url": f"{_PREVIEWS}{streamer.login}-{{width}}x{{height}}.jpg",
        # Twitch deprecated both: tag_ids is always [] (use tags) and is_mature always false.
        "tag_ids": [],
        "tags": tags,
        "is_mature": False,
    }


def _candidates(world: HelixWorld, filters: StreamFilters) -> list[Streamer]:
    if not filters.user_ids and not filters.user_logins:
        return world.all_streamers()
    found: dict[str, Streamer] = {}
    asked = [world.streamer_by_id(i) for i in filters.user_ids]
    asked += [world.streamer_by_login(login) for login in filters.user_logins]
    for streamer in asked:
        if streamer is not None:
            found.setdefault(streamer.id, streamer)
    return list(found.values())


def _viewers(world: HelixWorld, streamer: Streamer) -> int:
    # Busier channels draw more viewers; the count drifts from hour to hour, so the ranking does too.
    hour = math.floor(world.clock.now() / 3600)
    drift = 0.5 + (_digest(world.seed, "viewers", streamer.id, hour) % 1000) / 1000
    return max(1, round(20 * drift * math.pow(streamer.clips_per_day, 1.5)))


def _pick(options: tuple[str, ...], seed: int, *key: object) -> str:
    return options[_digest(seed, *key) % len(options)]


def _digest(seed: int, *parts: object) -> int:
    text = ":".join(str(p) for p in (seed, *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
