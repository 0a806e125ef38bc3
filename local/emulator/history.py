"""Years of one channel's history as emulator activity: quiet days, eras of more or fewer clips, busy days."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

from local.emulator.world import Streamer

DAY_S = 86_400


def _unit(seed: int, *parts: object) -> float:
    digest = hashlib.sha256(":".join(str(p) for p in (seed, *parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True)
class ChannelHistory:
    """Clip rates by day over `days` days from `start`: a streamer's `clips_per_day` becomes the mean.

    A share `quiet` of the days has no clip; the others follow eras of about a month whose rate runs from a
    fifth to twice the mean (a channel grows, takes a break, comes back); `busy_days` (offsets from `start`)
    get `busy_clips` clips each, past Helix's 1,000-result cap. Outside the span the channel is silent.
    """

    seed: int
    start: float
    days: int
    quiet: float = 0.3
    busy_days: Sequence[int] = ()
    busy_clips: int = 1_300
    era_days: int = 30

    def day_rate(self, streamer: Streamer, day: int) -> float:
        """Expected clips on day `day` (an offset from `start`)."""
        if not 0 <= day < self.days:
            return 0.0
        if day in self.busy_days:
            return float(self.busy_clips)
        if _unit(self.seed, "quiet", streamer.index, day) < self.quiet:
            return 0.0
        era = _unit(self.seed, "era", streamer.index, day // self.era_days)
        # Spread 0.2-2.0 around 1.1, scaled so that the active days carry the mean rate over all days.
        return streamer.clips_per_day * (0.2 + 1.8 * era) / 1.1 / (1 - self.quiet)

    def __call__(self, streamer: Streamer, hour: int) -> float:
        day = math.floor((hour * 3600 - self.start) / DAY_S)
        if streamer.clips_per_day <= 0:
            return 0.0
        return self.day_rate(streamer, day) / streamer.clips_per_day
