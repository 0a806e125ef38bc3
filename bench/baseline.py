"""The naive design the seed system started from: one loop, one Helix page at a time, one INSERT per clip."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from shared.clips import COLUMNS, parse_clip
from shared.config import Settings
from shared.helix import PAGE_SIZE
from shared.ports import Clock, Database
from shared.timefmt import to_rfc3339

INSERT_CLIP = (
    f"INSERT INTO clips ({', '.join(COLUMNS)}, first_seen_at, last_seen_at) "
    f"VALUES ({', '.join('?' for _ in COLUMNS)}, ?, ?) "
    f"ON CONFLICT (id) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in COLUMNS if c != 'id')}, "
    "last_seen_at = excluded.last_seen_at"
)


@dataclass
class NaiveCrawl:
    """What the loop did."""

    streamers: int = 0
    pages: int = 0
    inserts: int = 0
    waits_429: int = 0


async def crawl_naive(
    db: Database, http: httpx.AsyncClient, settings: Settings, clock: Clock, lookback_s: float
) -> NaiveCrawl:
    """Every active streamer, in order, in this one invocation; every clip a D1 round trip of its own."""
    done = NaiveCrawl()
    auth = await http.post(
        settings.twitch_auth_url.rstrip("/") + "/token",
        data={
            "client_id": settings.twitch_client_id,
            "client_secret": settings.twitch_client_secret,
            "grant_type": "client_credentials",
        },
    )
    auth.raise_for_status()
    token = auth.json()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "Client-Id": settings.twitch_client_id}
    url = settings.twitch_api_url.rstrip("/") + "/clips"
    # Like the seed: no ended_at (Helix then means a week after started_at), so nothing recent is cut off.
    started_at = to_rfc3339(clock.now() - lookback_s)
    for streamer in await db.all("SELECT id FROM streamers WHERE active = 1 ORDER BY id"):
        done.streamers += 1
        cursor: str | None = None
        while True:
            params = {"broadcaster_id": streamer["id"], "started_at": started_at, "first": str(PAGE_SIZE)}
            if cursor:
                params["after"] = cursor
            response = await http.get(url, params=params, headers=headers)
            if response.status_code == 429:
                done.waits_429 += 1
                reset = float(response.headers.get("ratelimit-reset") or clock.now() + 1)
                await clock.sleep(reset - clock.now())
                continue
            response.raise_for_status()
            body = response.json()
            done.pages += 1
            now = to_rfc3339(clock.now())
            for clip in body["data"]:
                row = parse_clip(clip)
                await db.run(INSERT_CLIP, *(row[c] for c in COLUMNS), now, now)
                done.inserts += 1
            cursor = (body.get("pagination") or {}).get("cursor")
            if not cursor:
                break
    return done
