"""The floor: how long a scenario would take if only latencies, concurrency and the rate limit counted."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

RATE_WINDOW_S = 60.0  # Helix refills its bucket once a minute

PAGE_SIZE = 100


def pages_needed(clips: int) -> int:
    """The fewest Get Clips calls that can return `clips` clips (an empty answer is still one call)."""
    return max(1, math.ceil(clips / PAGE_SIZE))


@dataclass(frozen=True)
class Floor:
    """The floor and the bounds it is the largest of, in seconds of scenario time."""

    seconds: float
    producer_s: float
    concurrency_s: float  # every streamer's chain of round trips, spread over the consumers
    longest_s: float  # the longest single streamer's chain: pages come one after another
    rate_limit_s: float  # the wait for enough rate-limit windows to hold every page
    bound: str  # which of the three sets the floor

    def as_dict(self) -> dict[str, float | str]:
        return {
            "seconds": self.seconds,
            "producer_s": self.producer_s,
            "concurrency_s": self.concurrency_s,
            "longest_s": self.longest_s,
            "rate_limit_s": self.rate_limit_s,
            "bound": self.bound,
        }


def floor(
    pages: Sequence[int],
    *,
    concurrency: int,
    helix_s: float,
    d1_s: float,
    producer_steps: Sequence[Sequence[int]],
    rate_limit: int | None,
) -> Floor:
    """The floor for streamers needing `pages[i]` pages each.

    A streamer's chain is one D1 round trip to claim it, then per page one Helix call and one D1
    write, one after the other (each page's cursor comes from the previous one). The producer's round
    trips up to its first queue send come first, as steps of (helix, d1) calls made at once: a step
    lasts as long as the longer of its Helix calls and its D1 calls, each kind one after the other.
    With a rate limit of L points a minute, P pages need ceil(P/L) windows.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency!r}")
    chains = [d1_s + p * (helix_s + d1_s) for p in pages]
    producer = sum(max(helix * helix_s, d1 * d1_s) for helix, d1 in producer_steps)
    spread = sum(chains) / concurrency
    longest = max(chains, default=0.0)
    total_pages = sum(pages)
    rate = 0.0
    if rate_limit and total_pages > rate_limit:
        rate = d1_s + (math.ceil(total_pages / rate_limit) - 1) * RATE_WINDOW_S + helix_s + d1_s
    bounds = {"concurrency": spread, "longest streamer": longest, "rate limit": rate}
    bound = max(bounds, key=lambda k: bounds[k])
    return Floor(producer + bounds[bound], producer, spread, longest, rate, bound)
