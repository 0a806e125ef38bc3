"""consumer/split_trail.py: nested splits, and the walk state a continuation carries."""

from __future__ import annotations

import pytest

from consumer.split_trail import SplitTrail, WalkState
from shared.split_sample import SplitSample
from shared.windows import Window

DAY = 86_400.0


def test_an_inner_split_narrows_the_walk_until_passed_then_the_outer_sample_sizes_it_again() -> None:
    outer = SplitSample(Window(0, 80 * DAY), [i * DAY / 4 for i in range(320)], prior=0.5, density=10 / DAY)
    trail = SplitTrail([outer])
    assert trail.ceiling(120 * DAY) == 40 * DAY
    trail.split(SplitSample(Window(10 * DAY, 16 * DAY), [10 * DAY + i * 600 for i in range(864)]))
    assert trail.ceiling(120 * DAY) == 3 * DAY
    assert trail.completed(Window(10 * DAY, 16 * DAY), 1_200) is None  # still inside the outer split
    assert len(trail.samples) == 1 and trail.ceiling(120 * DAY) == 40 * DAY
    # The outer sample's 24 clips in those 6 days held 1,200: a share of 1/50, so 200 clips are 4 of them.
    assert trail.span(16 * DAY, 200) == pytest.approx(DAY)
    # Past the outer split: it comes back, with the density before it, to size the next windows.
    assert trail.completed(Window(16 * DAY, 80 * DAY), 1_000) is outer and outer.density == 10 / DAY
    assert not trail and trail.ceiling(120 * DAY) == 120 * DAY and trail.span(80 * DAY, 200) is None


def test_the_walk_state_survives_a_round_trip_and_a_value_it_cannot_read_starts_afresh() -> None:
    sample = SplitSample(Window(600.0, 90_000.0), [700.0, 1_300.0, 50_000.0], prior=0.1, density=0.002)
    sample.observe(Window(600.0, 2_000.0), 20)
    state = WalkState(SplitTrail([sample]), (640, 3_600.0), [1_000.4, 2_000.0])
    back = WalkState.from_json(state.to_json())
    assert back.measured == (640, 3_600.0) and back.created == [1_000.0, 2_000.0]
    (got,) = back.trail.samples
    assert (got.window, got.times, got.prior, got.density, got.sampled, got.found) == (
        sample.window,
        sample.times,
        0.1,
        0.002,
        2,
        20,
    )
    for bad in (None, "", "not json", "[]", '{"splits": [{"window": 3}]}', '{"measured": "x"}'):
        fresh = WalkState.from_json(bad)
        assert not fresh.trail and fresh.measured == (0, 0.0) and fresh.created == []
