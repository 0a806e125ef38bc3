"""Who streams when: the seed-like mix of daily, occasional and dormant streamers, as an emulator activity."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence

from local.emulator.world import Streamer

HOUR = 3600
DAY = 24 * HOUR
START = 1_790_035_200.0  # 2026-09-22T00:00:00Z, a midnight, so simulated days are UTC days
PROFILES = ("daily", "bursty", "dormant", "waker")


def profile_of(index: int) -> str:
    """A quarter stream daily; the rest are bursty (a few days a week) or dormant (one in three
    wakes once).
    """
    return ("daily", "bursty", "bursty", "dormant")[index % 4] if index % 12 != 3 else "waker"


def _unit(seed: int, *parts: object) -> float:
    digest = hashlib.sha256(":".join(str(p) for p in (seed, *parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class WeekActivity:
    """Per streamer and hour: off air (0), or on air with its day's clips packed into a 3-6 h stream."""

    def __init__(self, seed: int, start: float = START, profiles: Sequence[str] | None = None) -> None:
        self.seed = seed
        self.start_day = math.floor(start / DAY)
        # By streamer index; without a list, the seed-like mix of profile_of.
        self.profile: Callable[[int], str] = profile_of if profiles is None else (lambda i: profiles[i])

    def streams_on(self, streamer: Streamer, day: int) -> bool:
        profile = self.profile(streamer.index)
        if profile == "daily":
            return True
        if profile == "bursty":
            return _unit(self.seed, "burst", streamer.index, day) < 0.3
        if profile == "waker":
            return day - self.start_day == 3 + streamer.index % 3
        return False

    def __call__(self, streamer: Streamer, hour: int) -> float:
        day, hour_of_day = divmod(hour, 24)
        if not self.streams_on(streamer, day):
            return 0.0
        begin = math.floor(_unit(self.seed, "begin", streamer.index) * 24)
        length = 3 + math.floor(_unit(self.seed, "length", streamer.index) * 4)
        return 24 / length if (hour_of_day - begin) % 24 < length else 0.0
