"""The fewest Helix calls that would serve every clip a crawl asked for: what its calls are measured against.

Per broadcaster, the windows of its Get Clips requests are merged into the ranges the crawl covered.
Serving a range takes one call per page of 100 clips of a window, one call for a window with none, and
no window may hold more than Helix's ~1,000-result cap; windows start and end on the 10-minute grid
Helix works on. The fewest calls over every way to cut the range into such windows is found exactly,
by dynamic programming over the grid's points, merged where no clip lies between them (fast over years).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping

from local.emulator.world import HelixWorld
from shared.timefmt import align_down, parse_rfc3339

GRID_S = 600
PAGE_SIZE = 100


class NeededCalls:
    """Records the windows of Get Clips requests by broadcaster; `needed()` is the figure for them."""

    def __init__(self, world: HelixWorld, result_cap: int = 1000, page_size: int = PAGE_SIZE) -> None:
        self.world = world
        self.result_cap = result_cap
        self.page_size = page_size
        self.windows: dict[str, list[tuple[float, float]]] = {}

    def record(self, broadcaster_id: str, start: float, end: float) -> None:
        """A Get Clips request for this broadcaster's clips created in [start, end)."""
        if end > start:
            self.windows.setdefault(broadcaster_id, []).append((start, end))

    def record_query(self, query: Mapping[str, str]) -> None:
        """A request seen from outside (its query string), its times cut to the grid as Helix does."""
        broadcaster, started, ended = (query.get(k) for k in ("broadcaster_id", "started_at", "ended_at"))
        if broadcaster and started and ended:
            self.record(
                broadcaster,
                align_down(parse_rfc3339(started), GRID_S),
                align_down(parse_rfc3339(ended), GRID_S),
            )

    def reset(self) -> None:
        """Start a new crawl's count."""
        self.windows.clear()

    def needed(self) -> dict[str, int]:
        """By broadcaster, the fewest calls serving every clip now visible in the ranges it was asked for."""
        return {
            broadcaster: sum(self.range_calls(broadcaster, a, b) for a, b in _merged(windows))
            for broadcaster, windows in self.windows.items()
        }

    def total(self) -> int:
        return sum(self.needed().values())

    def range_calls(self, broadcaster_id: str, start: float, end: float) -> int:
        """The fewest calls for one contiguous range."""
        created = sorted(parse_rfc3339(c["created_at"]) for c in self.world.clips(broadcaster_id, start, end))
        if len(created) <= self.result_cap:
            return self._calls(len(created))
        return fewest_calls(created, start, end, self.result_cap, self.page_size)

    def _calls(self, clips: int) -> int:
        return max(1, math.ceil(clips / self.page_size))


def fewest_calls(created: list[float], start: float, end: float, cap: int, page_size: int = PAGE_SIZE) -> int:
    """Fewest calls to read sorted creation times in [start, end) in grid windows of at most `cap` clips each.

    Exact, and fast over years: see `_fewest_over_counts`. Raises ValueError when one grid step alone holds
    more than `cap`: no crawl could serve those.
    """
    points = [start, *range(int(math.ceil(start / GRID_S) * GRID_S), int(end), GRID_S), end]
    counts = sorted({bisect.bisect_left(created, p) for p in points if start <= p <= end})
    for before, after in zip(counts, counts[1:], strict=False):
        if after - before > cap:
            raise ValueError(f"more than {cap} clips in one {GRID_S} s step between {start} and {end}")
    return _fewest_over_counts(counts, cap, page_size)


def _fewest_over_counts(counts: list[int], cap: int, page_size: int) -> int:
    """The dynamic programme over cut points, given the clips before each one (distinct, ascending).

    Grid points with the same count of clips before them are interchangeable cuts (every window's count, so
    its cost, is the same whichever is taken), so one stands for all: the programme runs over clips, not over
    the years of 10-minute steps. `best` never decreases along the points (the cut of a longer prefix, cut
    short, serves a shorter one at no more cost), and a window's cost is one of the page counts 1..cap/page,
    each taken by a contiguous run of start points; the earliest point of each run is then the best of it.
    So each point tries cap/page candidates, found by bisection, instead of every point within the cap.
    """
    best = [0] * len(counts)
    pages = -(-cap // page_size)
    for j in range(1, len(counts)):
        options = []
        for k in range(1, pages + 1):
            i = bisect.bisect_left(counts, counts[j] - min(cap, k * page_size), 0, j)
            if i < j:  # else no start point leaves this window so few clips
                options.append(best[i] + k)
        best[j] = min(options)
    return best[-1] if len(counts) > 1 else 1


def _fewest_calls_by_every_cut(
    created: list[float], start: float, end: float, cap: int, page_size: int = PAGE_SIZE
) -> float:
    """The plain programme over every grid point: slow over years; the reference the fast one is tested on."""
    points = [start, *range(int(math.ceil(start / GRID_S) * GRID_S), int(end), GRID_S), end]
    points = sorted(set(p for p in points if start <= p <= end))
    index = [bisect.bisect_left(created, p) for p in points]
    best = [0] + [math.inf] * (len(points) - 1)
    for j in range(1, len(points)):
        i = j - 1
        while i >= 0 and index[j] - index[i] <= cap:
            best[j] = min(best[j], best[i] + max(1, math.ceil((index[j] - index[i]) / page_size)))
            i -= 1
    return best[-1]


def _merged(windows: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Overlapping or touching windows joined into ranges."""
    ranges: list[tuple[float, float]] = []
    for start, end in sorted(windows):
        if ranges and start <= ranges[-1][1]:
            ranges[-1] = (ranges[-1][0], max(ranges[-1][1], end))
        else:
            ranges.append((start, end))
    return ranges
