"""The emulator's figure of the fewest Helix calls a crawl needed (local/emulator/needed.py)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from local.clock import VirtualClock
from local.emulator import HelixWorld
from local.emulator.needed import GRID_S, NeededCalls, _fewest_calls_by_every_cut, fewest_calls

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
    needed.record_query(
        {"broadcaster_id": light, "started_at": "2026-09-20T14:13:20Z", "ended_at": "2026-09-21T14:20:00Z"}
    )
    clips = len(world.clips(heavy, NOW - DAY, NOW))
    assert needed.needed() == {heavy: math.ceil(clips / 100), light: 1}
    needed.reset()
    assert needed.total() == 0


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(0, 40)), min_size=1, max_size=60),
    st.integers(20, 120),
    st.integers(5, 30),
    st.integers(0, GRID_S - 1),
)
def test_the_merged_programme_equals_the_one_over_every_grid_point(
    runs: list[tuple[int, int]], cap: int, page: int, offset: int
) -> None:
    """Quiet stretches (runs of empty steps) and busy steps alike: merging clip-free cuts changes nothing."""
    created: list[float] = []
    step = 0
    for gap, n in runs:
        step += gap
        created.extend(step * GRID_S + offset + i * GRID_S / (n + 1) for i in range(n))
        step += 1
    start, end = float(offset // 2), float(step * GRID_S + 7)
    try:
        reference = _fewest_calls_by_every_cut(created, start, end, cap, page)
    except ValueError:
        reference = math.inf
    if math.isinf(reference):
        with pytest.raises(ValueError):
            fewest_calls(created, start, end, cap, page)
    else:
        assert fewest_calls(created, start, end, cap, page) == reference


def test_five_years_of_grid_are_served_by_the_merged_programme() -> None:
    """262,000 grid steps, 20,000 clips with two days past the cap: the figure is the pages plus the cuts."""
    years = 5 * 365 * DAY
    created = sorted(
        [i * years / 17_000 for i in range(17_000)]
        + [100 * DAY + i * DAY / 1_500 for i in range(1_500)]
        + [900 * DAY + i * DAY / 1_500 for i in range(1_500)]
    )
    calls = fewest_calls(created, 0, years, 1000)
    assert math.ceil(20_000 / 100) <= calls <= 20_000 / 100 + 20_000 / 1000 + 2
