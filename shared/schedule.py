"""The adaptive schedule: how often each streamer is crawled, from how recently it showed activity.

Streamers with recent clips, or live now, are crawled every hour; quieter ones less often. Nothing is
lost by crawling less often: a crawl reaches back to the streamer's watermark (minus the overlap), so
a longer gap only means a longer window.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.errors import ConfigError
from shared.limits import HOUR
from shared.timefmt import align_down


@dataclass(frozen=True)
class Tiers:
    """Tier i is crawled every `every_hours[i]`; activity within `active_within_hours[i]` earns tier i."""

    every_hours: tuple[int, ...] = (1, 3, 12)
    active_within_hours: tuple[int, ...] = (2, 48)

    @classmethod
    def parse(cls, every: str, active_within: str) -> Tiers:
        """From settings like "1,3,12" and "2,48"."""
        try:
            tiers = cls(
                tuple(int(x) for x in every.split(",")), tuple(int(x) for x in active_within.split(","))
            )
        except ValueError as exc:
            raise ConfigError(
                f"tiers must be comma-separated whole hours, got {every!r} / {active_within!r}"
            ) from exc
        if len(tiers.active_within_hours) != len(tiers.every_hours) - 1:
            raise ConfigError(
                f"{len(tiers.every_hours)} tiers need {len(tiers.every_hours) - 1} activity limits, "
                f"got {active_within!r}"
            )
        if any(h < 1 for h in tiers.every_hours) or list(tiers.every_hours) != sorted(tiers.every_hours):
            raise ConfigError(f"tier intervals must be increasing whole hours >= 1, got {every!r}")
        if list(tiers.active_within_hours) != sorted(tiers.active_within_hours):
            raise ConfigError(f"activity limits must be increasing, got {active_within!r}")
        return tiers

    def choose(self, now: float, last_activity: float | None) -> int:
        """The tier a streamer belongs in, given its latest sign of activity (a clip made, or live)."""
        if last_activity is not None:
            for tier, hours in enumerate(self.active_within_hours):
                if now - last_activity <= hours * HOUR:
                    return tier
        return len(self.every_hours) - 1

    def next_crawl_at(self, now: float, tier: int) -> float:
        """When the streamer is next due: on the hour, so the cron tick at that hour finds it due."""
        return align_down(now + self.every_hours[tier] * HOUR, HOUR)


def latest(*times: float | None) -> float | None:
    present = [t for t in times if t is not None]
    return max(present) if present else None
