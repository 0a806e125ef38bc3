"""shared/burst.py: the busiest stretch of a window's sample, and the window's total judged from it."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from shared.burst import busiest_stretch, window_total

DAY = 86_400.0


def excess(times: list[float], i: int, j: int, span: float) -> float:
    return (j - i + 1) / len(times) - (times[j] - times[i]) / span


@given(st.lists(st.floats(0, 100 * DAY), min_size=1, max_size=60), st.floats(DAY / 10, 30 * DAY))
def test_the_busiest_stretch_is_the_best_of_every_stretch(raw: list[float], widest: float) -> None:
    times, span = sorted(raw), 100 * DAY
    found = busiest_stretch(times, 0.0, span, widest)
    best = max(
        [
            excess(times, i, j, span)
            for i in range(len(times))
            for j in range(i, len(times))
            if times[j] - times[i] <= widest
        ]
        + [0.0]
    )
    got = 0.0 if found.clips == 0 else found.clips / len(times) - found.span / span
    assert abs(got - best) < 1e-9
    assert found.span <= widest and found.clips <= len(times)


def sample_of(times: list[float], n: int, seed: int = 1) -> list[float]:
    return sorted(random.Random(seed).sample(times, n))


def test_an_even_window_is_judged_near_its_density_and_one_with_a_busy_day_well_over() -> None:
    rng = random.Random(3)
    quiet = [rng.uniform(0, 80 * DAY) for _ in range(800)]  # 10 a day
    total, _ = window_total(sample_of(quiet, 200), 0.0, 80 * DAY, 10 / DAY)
    assert 800 <= total <= 1_050  # an even spread reads a little high, never near 1,300
    busy = quiet + [rng.uniform(40 * DAY, 41 * DAY) for _ in range(1_300)]
    total, stretch = window_total(sample_of(busy, 200), 0.0, 80 * DAY, 10 / DAY)
    assert 1_700 <= total <= 2_600  # 2,100 in truth
    assert 39 * DAY <= stretch.start and stretch.end <= 42 * DAY


def test_a_sample_all_in_one_stretch_is_judged_unbounded() -> None:
    total, stretch = window_total([5 * DAY + i for i in range(100)], 0.0, 80 * DAY, 10 / DAY)
    assert total == float("inf") and stretch.clips == 100
