from __future__ import annotations

from shared.config import Settings
from shared.windows import (
    HELIX_TIME_STEP,
    HOUR,
    Window,
    crawl_range,
    next_window,
    span_for,
    split,
    split_span,
)

NOW = 1_790_000_000.0 + 7 * 60  # not on a 10-minute boundary
DAY = 24 * HOUR


def test_first_crawl_backfills_and_aligns_outward() -> None:
    window = crawl_range(NOW, None, Settings(backfill_hours=72))
    assert window.end >= NOW and window.end % HELIX_TIME_STEP == 0
    assert window.start <= NOW - 72 * HOUR and window.start % HELIX_TIME_STEP == 0
    assert window.end - NOW < HELIX_TIME_STEP


def test_recent_watermark_still_reaches_back_the_lookback() -> None:
    window = crawl_range(NOW, NOW - 600, Settings(lookback_hours=24, overlap_minutes=60))
    assert window.start <= NOW - 24 * HOUR


def test_old_watermark_reaches_back_to_it_minus_the_overlap() -> None:
    watermark = NOW - 5 * DAY
    window = crawl_range(NOW, watermark, Settings(overlap_minutes=60))
    assert window.start <= watermark - HOUR < window.start + HELIX_TIME_STEP


def test_split_covers_the_range_without_gaps_in_windows_of_at_most_a_day() -> None:
    crawl = crawl_range(NOW, None, Settings(backfill_hours=24 * 7))
    windows = split(crawl, DAY)
    assert windows[0].start == crawl.start and windows[-1].end == crawl.end
    assert all(a.end == b.start for a, b in zip(windows, windows[1:], strict=False))
    assert all(w.span <= DAY + HELIX_TIME_STEP for w in windows)
    assert len(windows) == 7


def test_a_lookback_window_with_alignment_slack_stays_one_window() -> None:
    crawl = crawl_range(NOW, NOW - 3600, Settings())
    assert crawl.span > DAY
    assert split(crawl, DAY) == [crawl]


def test_next_window_past_the_end_is_none() -> None:
    crawl = Window(0, 1000)
    assert next_window(1000, crawl, 500) is None


def test_a_span_is_sized_from_the_density_a_complete_window_showed() -> None:
    assert span_for(450, 6 * HOUR, 900, 24 * HOUR) == 12 * HOUR
    assert span_for(0, 6 * HOUR, 900, 24 * HOUR) == 24 * HOUR  # nothing there: as wide as allowed
    assert span_for(10_000, HOUR, 900, 24 * HOUR) == HELIX_TIME_STEP  # never under one grid step
    assert span_for(100, 4 * HOUR, 900, 24 * HOUR) == 24 * HOUR


def test_after_a_split_the_next_window_reaches_the_first_clips_read_and_at_most_half() -> None:
    window = Window(0, 24 * HOUR)
    # The clips read are dense in the first hours (old clips have more views): reach 100 of them.
    created = [i * 36.0 for i in range(200)] + [10 * HOUR + i * 60.0 for i in range(700)]
    assert split_span(window, created, 100) == 3600
    assert split_span(window, [float(i) for i in range(50)], 100) == 12 * HOUR  # too few: halve
    spread = [i * 24 * HOUR / 900 for i in range(900)]
    assert split_span(window, spread, 100) == 9600  # the 101st of 900 even clips was made 2 h 40 min in
