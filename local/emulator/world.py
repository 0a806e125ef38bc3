"""A deterministic Twitch: streamers and clips are pure functions of the seed and of absolute time."""

from __future__ import annotations

import hashlib
import math
import random
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from statistics import NormalDist
from typing import Any

from local.emulator.deletions import ClipDeletions, deleted_during
from local.emulator.games import CATALOGUE, Game, GameCatalogue
from shared.ports import Clock
from shared.timefmt import to_rfc3339

HOUR_S = 3600
_VOD_BLOCK_S = 6 * HOUR_S
_CACHE_BUCKETS = 200_000
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX_LEN = 17
_CDN = "https://static-cdn.jtvnw.net"
_TAG_BYTES = 4

_ADJECTIVES = (
    "Fun Poised Brave Clever Tiny Happy Sleepy Lucky Wild Quiet Shiny Bold Fancy Gentle Noisy Swift"
    " Lazy Proud Silly Calm Eager Fierce Jolly Zany Witty Spicy Sneaky Glossy Crispy Fluffy"
).split()
_NOUNS = (
    "Giraffe Otter Panda Falcon Walrus Badger Koala Lemur Ferret Moose Pigeon Turtle Raccoon Squid"
    " Mango Pretzel Noodle Waffle Cactus Comet Pickle Donut Lobster Narwhal"
).split()
_EMOTES = (
    "GingerPower Kappa PogChamp BibleThump ResidentSleeper Kreygasm SeemsGood NotLikeThis DansGame"
    " FrankerZ HeyGuys TriHard VoHiYo CoolCat OSFrog PJSalt WutFace"
).split()
_TITLE_WORDS = (
    "insane clutch no way fail gg wp chat what happened ace lag rage wholesome moment best ever"
    " unlucky speedrun boss fight secret glitch 1v5 comeback jumpscare"
).split()
_LANGUAGES = ("en", "en", "en", "ja", "ja", "de", "es", "fr", "pt", "ko", "other")
_STANDARD_NORMAL = NormalDist()

# Given a streamer and an hour (hours since the epoch), how many times its mean hourly clip rate it has
# then: 0 means off air. None keeps every streamer on its stationary rate around the clock.
Activity = Callable[["Streamer", int], float]


@dataclass(frozen=True)
class Streamer:
    """One channel; `clips_per_day` is the mean rate of new clips."""

    index: int
    id: str
    login: str
    display_name: str
    clips_per_day: float
    language: str
    games: tuple[str, ...]
    created_at: float

    @property
    def broadcaster_type(self) -> str:
        """ "partner", "affiliate" or "": the busier the channel, the likelier its programme."""
        return "partner" if self.clips_per_day >= 25 else "affiliate" if self.clips_per_day >= 15 else ""

    def to_user(self) -> dict[str, Any]:
        """This streamer as a Get Users entry, with every field an app token sees (no `email`)."""
        return {
            "id": self.id,
            "login": self.login,
            "display_name": self.display_name,
            "type": "",
            "broadcaster_type": self.broadcaster_type,
            "description": f"{self.display_name} streams here.",
            "profile_image_url": f"{_CDN}/jtv_user_pictures/{self.login}-profile_image-300x300.png",
            "offline_image_url": f"{_CDN}/jtv_user_pictures/{self.login}-channel_offline_image-1920x1080.png",
            # Deprecated by Twitch ("any data in this field is not valid"), but still in every answer.
            "view_count": 0,
            "created_at": to_rfc3339(self.created_at),
        }


@dataclass(frozen=True, slots=True)
class _Clip:
    """The static part of a clip; what changes with time is computed in `render`."""

    id: str
    broadcaster_id: str
    broadcaster_name: str
    creator_id: str
    creator_name: str
    game_id: str
    language: str
    title: str
    created_at: int
    duration: float
    video_id: str
    vod_offset: int
    is_featured: bool
    appear_delay_s: int
    video_delay_s: int
    offset_delay_s: int
    base_views: int
    views_per_hour: float

    def visible(self, now: float) -> bool:
        return now >= self.created_at + self.appear_delay_s

    def views(self, now: float, views_settle_s: float | None = None) -> int:
        age_s = max(0.0, now - self.created_at)
        # Linear growth by default; with views_settle_s, growth fades exponentially (most views come early).
        grown = age_s if views_settle_s is None else views_settle_s * (1 - math.exp(-age_s / views_settle_s))
        return self.base_views + math.floor(self.views_per_hour * grown / HOUR_S)

    def render(self, now: float, views_settle_s: float | None = None) -> dict[str, Any]:
        age_s = max(0.0, now - self.created_at)
        video_id = self.video_id if age_s >= self.video_delay_s else ""
        vod_offset = self.vod_offset if video_id and age_s >= self.offset_delay_s else None
        return {
            "id": self.id,
            "url": f"https://clips.twitch.tv/{self.id}",
            "embed_url": f"https://clips.twitch.tv/embed?clip={self.id}",
            "broadcaster_id": self.broadcaster_id,
            "broadcaster_name": self.broadcaster_name,
            "creator_id": self.creator_id,
            "creator_name": self.creator_name,
            "video_id": video_id,
            "game_id": self.game_id,
            "language": self.language,
            "title": self.title,
            "view_count": self.views(now, views_settle_s),
            "created_at": to_rfc3339(self.created_at),
            "thumbnail_url": f"{_CDN}/twitch-clips-thumbnails-prod/{self.id}/preview-480x272.jpg",
            "duration": self.duration,
            "vod_offset": vod_offset,
            "is_featured": self.is_featured,
        }


@dataclass(frozen=True)
class OnAir:
    """A stream on air now: since when, and which game."""

    since: float
    game_id: str


class RankedClips:
    """Clips in Get Clips order (most viewed now first, ties by id); only the slices read are rendered."""

    def __init__(self, clips: list[_Clip], now: float, views_settle_s: float | None) -> None:
        self._now = now
        self._settle = views_settle_s
        self._clips = sorted(clips, key=lambda c: (-c.views(now, views_settle_s), c.id))

    def __len__(self) -> int:
        return len(self._clips)

    def __getitem__(self, span: slice) -> list[dict[str, Any]]:
        return [clip.render(self._now, self._settle) for clip in self._clips[span]]


class HelixWorld:
    """Streamers and their clips, identical for any window, on any run, given the same seed."""

    def __init__(
        self,
        seed: int = 1,
        streamers: int = 200,
        clips_per_day: tuple[int, int] = (10, 30),
        *,
        clock: Clock,
        activity: Activity | None = None,
        views_settle_s: float | None = None,
        games: Iterable[Game] = CATALOGUE,
        deletions: ClipDeletions | None = None,
    ) -> None:
        assert streamers >= 0 and 0 <= clips_per_day[0] <= clips_per_day[1], (streamers, clips_per_day)
        self.seed = seed
        self.clock = clock
        self.activity = activity
        self.views_settle_s = views_settle_s
        self.games = GameCatalogue(games)
        if len(self.games.ids) < 3:
            raise ValueError("a world needs at least 3 games: each streamer plays 3")
        self.deletions = deletions or ClipDeletions()
        self._pinned_deletions: dict[str, tuple[float, float | None]] = {}
        self._streamers = [_make_streamer(seed, i, clips_per_day, self.games.ids) for i in range(streamers)]
        self._by_id = {s.id: s.index for s in self._streamers}
        self._by_login = {s.login: s.index for s in self._streamers}
        self._cache: OrderedDict[tuple[int, int, float], list[_Clip]] = OrderedDict()

    def all_streamers(self) -> list[Streamer]:
        return list(self._streamers)

    def streamer_by_id(self, broadcaster_id: str) -> Streamer | None:
        index = self._by_id.get(broadcaster_id)
        return None if index is None else self._streamers[index]

    def streamer_by_login(self, login: str) -> Streamer | None:
        index = self._by_login.get(login.lower())
        return None if index is None else self._streamers[index]

    def game_ids(self) -> tuple[str, ...]:
        return self.games.ids

    def set_rate(self, broadcaster_id: str, clips_per_day: float) -> None:
        """Override one streamer's mean clip rate; 0 makes a streamer with no clips."""
        index = self._by_id[broadcaster_id]
        self._streamers[index] = replace(self._streamers[index], clips_per_day=float(clips_per_day))

    def clips(
        self, broadcaster_id: str, start: float, end: float, *, include_deleted: bool = False
    ) -> list[dict[str, Any]]:
        """Every clip visible now with start <= created_at < end, oldest first; deleted ones only if asked."""
        streamer = self.streamer_by_id(broadcaster_id)
        if streamer is None:
            return []
        now = self.clock.now()
        return [
            clip.render(now, self.views_settle_s)
            for clip in self._visible(streamer, start, end, now, include_deleted=include_deleted)
        ]

    def ranked_clips(
        self, broadcaster_id: str, start: float, end: float, *, featured: bool | None = None
    ) -> RankedClips:
        """The clips `clips` returns (less the (non-)featured ones if asked), in Get Clips order."""
        streamer = self.streamer_by_id(broadcaster_id)
        now = self.clock.now()
        found = [] if streamer is None else self._visible(streamer, start, end, now)
        return RankedClips(
            [c for c in found if featured is None or c.is_featured is featured], now, self.views_settle_s
        )

    def ranked_game_clips(
        self, game_id: str, start: float, end: float, *, featured: bool | None = None
    ) -> RankedClips:
        """The clips `game_clips` returns (less the (non-)featured ones if asked), in Get Clips order."""
        now = self.clock.now()
        found = [
            c
            for s in self._streamers
            if game_id in s.games
            for c in self._visible(s, start, end, now)
            if c.game_id == game_id and (featured is None or c.is_featured is featured)
        ]
        return RankedClips(found, now, self.views_settle_s)

    def is_live(self, broadcaster_id: str) -> bool:
        """Live now: clips come from streams, so a streamer clipped this hour or the last one is on air."""
        return self.on_air(broadcaster_id) is not None

    def on_air(self, broadcaster_id: str) -> OnAir | None:
        """The stream on air now (see `is_live`), or None.

        A stream is the broadcast of the VOD clips of this 6-hour block share, so it began at the start
        of the block (a new one begins at the next), and it plays the game of its latest clip.
        """
        streamer = self.streamer_by_id(broadcaster_id)
        if streamer is None:
            return None
        now = self.clock.now()
        hour = math.floor(now / HOUR_S)
        for h in (hour, hour - 1):
            made = [c for c in self._bucket(streamer, h) if c.created_at <= now]
            if made:
                return OnAir(float(now // _VOD_BLOCK_S * _VOD_BLOCK_S), made[-1].game_id)
        return None

    def game_clips(self, game_id: str, start: float, end: float) -> list[dict[str, Any]]:
        """Every visible clip of one game, across all streamers, in the window."""
        now = self.clock.now()
        return [
            clip.render(now, self.views_settle_s)
            for streamer in self._streamers
            if game_id in streamer.games
            for clip in self._visible(streamer, start, end, now)
            if clip.game_id == game_id
        ]

    def clip(self, clip_id: str) -> dict[str, Any] | None:
        """The clip with this id if it is visible now and not deleted, else None."""
        found = self._find(clip_id)
        now = self.clock.now()
        if found is None or not found.visible(now) or self._deleted(found, now):
            return None
        return found.render(now, self.views_settle_s)

    def delete_clip(self, clip_id: str, at: float | None = None, until: float | None = None) -> None:
        """Delete one clip at `at` (default: now) until `until` (default: for good), whatever the rate."""
        gone = self.clock.now() if at is None else at
        if until is not None and until <= gone:
            raise ValueError(f"clip {clip_id!r} would come back at {until!r}, not after it goes at {gone!r}")
        self._pinned_deletions[clip_id] = (gone, until)

    def deletion(self, clip_id: str) -> tuple[float, float | None] | None:
        """When this clip is deleted and when it comes back; None if it never is or does not exist."""
        found = self._find(clip_id)
        return None if found is None else self._deletion(found)

    def _find(self, clip_id: str) -> _Clip | None:
        location = _decode_suffix(self.seed, clip_id)
        if location is None or location[0] >= len(self._streamers):
            return None
        index, hour, _ = location
        return next((c for c in self._bucket(self._streamers[index], hour) if c.id == clip_id), None)

    def _deletion(self, clip: _Clip) -> tuple[float, float | None] | None:
        pinned = self._pinned_deletions.get(clip.id)
        return pinned if pinned is not None else self.deletions.interval(clip.id, clip.created_at)

    def _deleted(self, clip: _Clip, now: float) -> bool:
        if not self._pinned_deletions and not self.deletions.active:
            return False
        return deleted_during(self._deletion(clip), now)

    def _visible(
        self, streamer: Streamer, start: float, end: float, now: float, *, include_deleted: bool = False
    ) -> list[_Clip]:
        # A clip is visible only after it was created, so nothing at or after `now` can be.
        end = min(end, now)
        found: list[_Clip] = []
        for hour in range(math.floor(start / HOUR_S), math.ceil(end / HOUR_S)):
            found.extend(
                c for c in self._bucket(streamer, hour) if start <= c.created_at < end and c.visible(now)
            )
        if include_deleted or (not self._pinned_deletions and not self.deletions.active):
            return found
        return [c for c in found if not self._deleted(c, now)]

    def _bucket(self, streamer: Streamer, hour: int) -> list[_Clip]:
        factor = 1.0 if self.activity is None else self.activity(streamer, hour)
        if factor < 0:
            raise ValueError(f"activity of {streamer.login} at hour {hour} must be >= 0, got {factor!r}")
        key = (streamer.index, hour, streamer.clips_per_day * factor)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        u = _rng(self.seed, "count", streamer.index, hour).random()
        count = _poisson(u, streamer.clips_per_day * factor / 24)
        clips = sorted(
            (_make_clip(self.seed, streamer, hour, k) for k in range(count)),
            key=lambda c: (c.created_at, c.id),
        )
        self._cache[key] = clips
        if len(self._cache) > _CACHE_BUCKETS:
            self._cache.popitem(last=False)
        return clips


def _rng(seed: int, *parts: object) -> random.Random:
    return random.Random(":".join(str(p) for p in (seed, *parts)))


def _poisson(u: float, mean: float) -> int:
    """Poisson(mean) by inverse CDF at u (normal approximation above 100), monotone in the rate."""
    if mean <= 0:
        return 0
    if mean > 100:
        return max(0, round(mean + math.sqrt(mean) * _STANDARD_NORMAL.inv_cdf(min(max(u, 1e-12), 1 - 1e-12))))
    k, term = 0, math.exp(-mean)
    cdf = term
    while u > cdf and term > 0:
        k += 1
        term *= mean / k
        cdf += term
    return k


def _make_streamer(seed: int, i: int, clips_per_day: tuple[int, int], game_ids: tuple[str, ...]) -> Streamer:
    rng = _rng(seed, "streamer", i)
    return Streamer(
        index=i,
        id=str(10_000_000 + i * 7919),
        login=f"streamer{i:05d}",
        display_name=f"Streamer{i}",
        clips_per_day=round(rng.uniform(*clips_per_day), 2),
        language=rng.choice(_LANGUAGES),
        games=tuple(rng.sample(game_ids, 3)),
        created_at=float(rng.randint(1_300_000_000, 1_600_000_000)),
    )


def _make_clip(seed: int, streamer: Streamer, hour: int, k: int) -> _Clip:
    rng = _rng(seed, "clip", streamer.index, hour, k)
    words = rng.choice(_ADJECTIVES) + rng.choice(_ADJECTIVES) + rng.choice(_NOUNS) + rng.choice(_EMOTES)
    clip_id = f"{words}-{_encode_suffix(seed, streamer.index, hour, k)}"
    created_at = hour * HOUR_S + rng.randrange(HOUR_S)
    duration = round(rng.uniform(5.0, 60.0), 1)
    has_video = rng.random() >= 0.15
    block = created_at // _VOD_BLOCK_S
    creator = rng.randrange(5000)
    return _Clip(
        id=clip_id,
        broadcaster_id=streamer.id,
        broadcaster_name=streamer.display_name,
        creator_id=str(500_000_000 + creator * 13),
        creator_name=f"Viewer{creator}",
        game_id=streamer.games[0] if rng.random() < 0.7 else rng.choice(streamer.games[1:]),
        language=streamer.language,
        title=" ".join(rng.choices(_TITLE_WORDS, k=rng.randint(1, 6))),
        created_at=created_at,
        duration=duration,
        video_id=str(1_000_000_000 + _digest_int(seed, "vod", streamer.index, block) % 9_000_000_000)
        if has_video
        else "",
        vod_offset=max(0, created_at - block * _VOD_BLOCK_S - math.ceil(duration)),
        is_featured=rng.random() < 0.05,
        appear_delay_s=rng.randint(5, 120),
        video_delay_s=rng.randint(25 * 60, 35 * 60),
        offset_delay_s=rng.randint(15 * 60, 25 * 60),
        base_views=int(rng.expovariate(1 / 40)) + 1,
        views_per_hour=rng.lognormvariate(math.log(20), 0.8),
    )


def _digest_int(seed: int, *parts: object) -> int:
    text = ":".join(str(p) for p in (seed, *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


# The id suffix carries (streamer, hour, k) so any run can find a clip by id without having generated it
# first; a keyed tag and a mask keep it opaque and reject ids from other seeds.
def _encode_suffix(seed: int, index: int, hour: int, k: int) -> str:
    payload = index.to_bytes(3, "big") + hour.to_bytes(3, "big") + k.to_bytes(2, "big")
    tag = hashlib.sha256(f"{seed}:".encode() + payload).digest()[:_TAG_BYTES]
    mask = hashlib.sha256(b"mask" + tag).digest()[: len(payload)]
    number = int.from_bytes(tag + bytes(a ^ b for a, b in zip(payload, mask, strict=False)), "big")
    digits = []
    while number:
        number, rest = divmod(number, 62)
        digits.append(_BASE62[rest])
    return "".join(reversed(digits)).rjust(_SUFFIX_LEN, "0")


def _decode_suffix(seed: int, clip_id: str) -> tuple[int, int, int] | None:
    suffix = clip_id.rpartition("-")[2]
    if len(suffix) != _SUFFIX_LEN or any(ch not in _BASE62 for ch in suffix):
        return None
    number = 0
    for ch in suffix:
        number = number * 62 + _BASE62.index(ch)
    if number >= 1 << (8 * (_TAG_BYTES + 8)):
        return None
    raw = number.to_bytes(_TAG_BYTES + 8, "big")
    tag, masked = raw[:_TAG_BYTES], raw[_TAG_BYTES:]
    mask = hashlib.sha256(b"mask" + tag).digest()[: len(masked)]
    payload = bytes(a ^ b for a, b in zip(masked, mask, strict=False))
    if hashlib.sha256(f"{seed}:".encode() + payload).digest()[:_TAG_BYTES] != tag:
        return None
    index, hour, k = payload[:3], payload[3:6], payload[6:]
    return int.from_bytes(index, "big"), int.from_bytes(hour, "big"), int.from_bytes(k, "big")
