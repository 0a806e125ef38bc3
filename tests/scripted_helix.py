"""A Helix stand-in that serves scripted pages, for the pagination traps the emulator doesn't play."""

from __future__ import annotations

from typing import Any

import httpx

from shared.ports import OutgoingMessage


def make_clip(clip_id: str, broadcaster_id: str = "42", **changes: Any) -> dict[str, Any]:
    clip = {
        "id": clip_id,
        "url": f"https://clips.twitch.tv/{clip_id}",
        "embed_url": f"https://e/{clip_id}",
        "broadcaster_id": broadcaster_id,
        "broadcaster_name": "Streamer",
        "creator_id": "7",
        "creator_name": "Fan",
        "video_id": "1234",
        "game_id": "509658",
        "language": "en",
        "title": f"clip {clip_id}",
        "view_count": 10,
        "created_at": "2026-09-21T12:00:00Z",
        "thumbnail_url": "https://t.jpg",
        "duration": 30.0,
        "vod_offset": 60,
        "is_featured": False,
    }
    clip.update(changes)
    return clip


class ScriptedHelix:
    """Pages keyed by the `after` cursor they answer (None = the first page)."""

    def __init__(self, pages: dict[str | None, tuple[list[Any], str | None]]) -> None:
        self.pages = pages
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path.endswith("/token"):
            return httpx.Response(200, json={"access_token": "tok", "expires_in": 5_000_000})
        if request.url.path.endswith("/games"):  # every game id is a game named after it
            return httpx.Response(
                200,
                json={
                    "data": [
                        {"id": i, "name": f"Game {i}", "box_art_url": "", "igdb_id": ""}
                        for i in request.url.params.get_list("id")
                    ]
                },
            )
        data, cursor = self.pages[request.url.params.get("after")]
        return httpx.Response(
            200,
            json={"data": data, "pagination": {"cursor": cursor} if cursor else {}},
            headers={"Ratelimit-Limit": "800", "Ratelimit-Remaining": "700", "Ratelimit-Reset": "1790000060"},
        )

    @property
    def clip_calls(self) -> int:
        return sum(1 for r in self.requests if r.url.path.endswith("/clips"))


class RecordingQueue:
    """A QueueSender that keeps what it was given."""

    def __init__(self) -> None:
        self.sent: list[OutgoingMessage] = []
        self.calls = 0

    async def send_batch(self, messages: list[OutgoingMessage]) -> None:
        self.calls += 1
        self.sent.extend(messages)
