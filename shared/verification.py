"""When a clip that left the lookback is next verified with Get Clips by id: front-loaded, then periodic."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from shared.errors import ConfigError

DAY = 86_400.0
T = TypeVar("T")


@dataclass(frozen=True)
class CheckSchedule:
    """Checks at these offsets after creation (seconds, ascending), then every `period` after the last.

    Offsets inside the lookback are dropped: the crawl re-reads those clips anyway, and a clip missing from
    a broadcaster query proves nothing (the ~1,000-result cap and the ranking by views can hide it).
    """

    offsets: tuple[float, ...]
    period: float

    @classmethod
    def parse(cls, days: str, lookback_seconds: float) -> CheckSchedule:
        """From CLIPCRAWLER_VERIFY_SCHEDULE_DAYS ("1,7,30": the last is also the period after it)."""
        try:
            values = [float(part) for part in days.split(",") if part.strip()]
        except ValueError:
            raise ConfigError(
                f"CLIPCRAWLER_VERIFY_SCHEDULE_DAYS has value {days!r}; expected days such as '1,7,30'"
            ) from None
        if not values or any(not math.isfinite(v) or v <= 0 for v in values) or values != sorted(set(values)):
            raise ConfigError(
                f"CLIPCRAWLER_VERIFY_SCHEDULE_DAYS has value {days!r}; expected positive days "
                "in ascending order, such as '1,7,30'"
            )
        offsets = tuple(v * DAY for v in values if v * DAY >= lookback_seconds)
        period = values[-1] * DAY
        return cls(offsets or (_first_multiple_after(lookback_seconds, period),), period)

    @property
    def first(self) -> float:
        """The first check's offset after creation."""
        return self.offsets[0]

    def next_after(self, created_at: float, after: float) -> float:
        """The first check instant strictly after `after`, for a clip created at `created_at`."""
        for offset in self.offsets:
            if created_at + offset > after:
                return created_at + offset
        last = self.offsets[-1]
        periods = math.floor((after - created_at - last) / self.period) + 1
        return created_at + last + max(1, periods) * self.period

    def gap_after(self, created_at: float, deleted_at: float) -> float:
        """How long after `deleted_at` the schedule next looks at the clip: the check period that bounds a
        mark.
        """
        return self.next_after(created_at, deleted_at) - deleted_at


def _first_multiple_after(lookback: float, period: float) -> float:
    return period * (math.floor(lookback / period) + 1)


def chunks(items: Sequence[T], size: int) -> list[list[T]]:
    """`items` in consecutive lists of at most `size` (one Helix call's ids each)."""
    return [list(items[i : i + size]) for i in range(0, len(items), size)]
