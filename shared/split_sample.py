"""What a split window's walk read, used to size the windows that re-read it."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from shared.windows import HELIX_TIME_STEP, Window, on_grid


@dataclass
class SplitSample:
    """The creation times of the clips a walk read before its window was split, a sample of that window.

    Helix hands out a window's most viewed clips first, spread over the window much as all its clips are, so
    where the sample is dense the window is. Once a re-read window is complete, its true count against the
    sample's count in it gives the sample's share of the clips; the next window then reaches as far as the
    sample says holds `target` clips. That cuts a busy day out of a quiet month in one step, instead of
    splitting again and again on the way to it.
    """

    window: Window
    created: list[float]
    prior: float | None = None  # the sample's share of the clips, estimated, until a re-read window says
    density: float | None = None  # clips a second in the windows before it, when it was split on them
    sampled: int = 0  # sample clips inside the complete re-read windows...
    found: int = 0  # ...and the clips those windows held
    times: list[float] = field(init=False)

    def __post_init__(self) -> None:
        self.times = sorted(t for t in self.created if self.window.start <= t < self.window.end)

    def observe(self, window: Window, clips: int) -> None:
        """A complete window of the re-read and the clips it held."""
        self.sampled += self._count(window.start, window.end)
        self.found += clips

    def span(self, start: float, target: int) -> float | None:
        """The span from `start` that holds about `target` clips; None past the sample or with no share."""
        share = self.sampled / self.found if self.sampled >= 20 and self.found > 0 else self.prior
        if start >= self.window.end or share is None:
            return None
        first = bisect.bisect_left(self.times, start)
        reach = first + int(target * share)
        if reach >= len(self.times):
            return on_grid(self.window.end - start) if self.window.end > start else None
        span = self.times[reach] - start
        return max(HELIX_TIME_STEP, span // HELIX_TIME_STEP * HELIX_TIME_STEP)

    def _count(self, start: float, end: float) -> int:
        return bisect.bisect_left(self.times, end) - bisect.bisect_left(self.times, start)
