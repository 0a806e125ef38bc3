"""How many clips a window holds, judged from its first pages: a busy stretch stands out in the sample.

Helix hands out a window's most viewed clips first, spread over it much as all its clips are. Where the
sample crowds into a short stretch, the window holds a burst (a busy day in a quiet month); the clips outside
that stretch are as dense as the windows before, so the sample's share outside it scales them up to the
window's total. A walk that would only reach Helix's ~1,000-result cap after ten pages is split after two.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Stretch:
    """A stretch of a window's sample: the sample clips in it, and where it begins and ends."""

    clips: int
    start: float
    end: float

    @property
    def span(self) -> float:
        return self.end - self.start


def busiest_stretch(times: Sequence[float], start: float, end: float, widest: float) -> Stretch:
    """The stretch at most `widest` long whose share of the sample most exceeds its share of [start, end);
    an empty one for an even spread. `times` sorted, inside the window."""
    n, span = len(times), end - start
    best, found = 0.0, Stretch(0, start, start)
    if n == 0 or span <= 0:
        return found
    # For a stretch from times[i] to times[j]: excess = (j - i + 1) / n - (times[j] - times[i]) / span,
    # so for each i the best j maximises (j + 1) / n - times[j] / span among those within `widest`.
    ahead: deque[int] = deque()
    j = -1
    for i in range(n):
        while j + 1 < n and times[j + 1] - times[i] <= widest:
            j += 1
            value = (j + 1) / n - times[j] / span
            while ahead and (ahead[-1] + 1) / n - times[ahead[-1]] / span <= value:
                ahead.pop()
            ahead.append(j)
        while ahead[0] < i:
            ahead.popleft()
        k = ahead[0]
        excess = (k - i + 1) / n - (times[k] - times[i]) / span
        if excess > best:
            best, found = excess, Stretch(k - i + 1, times[i], times[k])
    return found


def window_total(times: Sequence[float], start: float, end: float, density: float) -> tuple[float, Stretch]:
    """The clips [start, end) holds, from a sample of its most viewed (sorted `times`) and the density of
    the windows before it (clips a second): those outside the busiest stretch, over their share; and that
    stretch."""
    stretch = busiest_stretch(times, start, end, (end - start) / 8)
    outside = len(times) - stretch.clips
    if outside <= 0:
        return float("inf"), stretch
    return density * (end - start - stretch.span) * len(times) / outside, stretch
