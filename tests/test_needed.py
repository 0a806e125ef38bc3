"""The emulator's figure of the fewest Helix calls a crawl needed (local/emulator/needed.py)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from local.clock import VirtualClock
from local.emulator import HelixWorld
from local.emulator.needed import GRID_S, NeededCalls, fewest_calls

NOW = 1_790_000_000.0
DAY = 86_400


def test_a_window_with_no_clip_still_costs_one_call() -> None:
    assert fewest_calls([], 0, DAY, 1000) == 1


def test_pages_of_100_under_the_cap() -> None:
    assert fewest_calls([float(i) for i in range(250)], 0, DAY, 1000) == 3


def test_past_the_cap_the_range_is_cut_on_the_grid() -> None:
    # 25 clips in every 10 minutes of a day: windows of 40 steps hold exactly 1,000, 100 a page.
    created = [i * DAY / 3600 for i in range(3600)]
    assert fewest_calls(created, 0, DAY, 1000) == 36
    # 17.4 an interval: no cut on the grid makes every window a whole number of pages.
    assert fewest_calls([i * DAY / 2500 for i in range(2500)], 0, DAY, 1000) == 26


def test_more_than_the_cap_in_one_grid_step_cannot_be_served() -> None:
    with pytest.raises(ValueError, match="more than 10 clips"):
        fewest_calls([1.0] * 11, 0, GRID_S, 10)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=8), st.integers(2, 6), st.integers(1, 3))
def test_the_figure_is_the_best_of_every_cut(per_step: list[int], cap: int, page: int) -> None:
    """Against brute force over every set of grid points to cut at."""
    created = [step * GRID_S + 1.0 for step, n in enumerate(per_step) for _ in range(n)]
    end = len(per_step) * GRID_S
    if max(per_step) > cap:
        with pytest.raises(ValueError):
            fewest_calls(created, 0, end, cap, page)
        return
    best = math.inf
    for mask in range(2 ** (len(per_step) - 1)):
        bounds = [0] + [i + 1 for i in range(len(per_step) - 1) if mask >> i & 1] + [len(per_step)]
        counts = [sum(per_step[a:b]) for a, b in zip(bounds, bounds[1:], strict=False)]
        if max(counts) <= cap:
            best = min(best, sum(max(1, math.ceil(c / page)) for c in counts))
    assert fewest_calls(created, 0, end, cap, page) == best


def test_overlapping_requests_of_a_crawl_count_their_range_once() -> None:
    world = HelixWorld(2, 2, (10, 30), clock=VirtualClock(NOW))
    heavy, light = (s.id for s in world.all_streamers())
    world.set_rate(heavy, 450)
    needed = NeededCalls(world)
    for _ in range(3):  # pages of one walk, and a window read again
        needed.record(heavy, NOW - DAY, NOW)
    needed.record(heavy, NOW - 2 * 3600, NOW)
    needed.record_query({"broadcaster_id": light, "started_at": "2026-09-20T14:13:20Z",
                         "ended_at": "2026-09-21T14:20:00Z"})
    clips = len(world.clips(heavy, NOW - DAY, NOW))
    assert needed.needed() == {heavy: math.ceil(clips / 100), light: 1}
    needed.reset()
    assert needed.total() == 0
