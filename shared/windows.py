"""Crawl windows: which span of clip creation times a crawl covers, cut into Helix-sized pieces."""

from __future__ import annotations

from dataclasses import dataclass

from shared.config import Settings
from shared.limits import HOUR
from shared.timefmt import align_down, align_up

# Helix acts as if started_at/ended_at were cut to 10 minutes (twitchdev/issues#52), so every
# boundary is aligned outward to 10 minutes and windows may run one step past their nominal span.
HELIX_TIME_STEP = 600


@dataclass(frozen=True)
class Window:
    """Clip creation times start <= t < end, in epoch seconds."""

    start: float
    end: float

    @property
    def span(self) -> float:
        return self.end - self.start


def crawl_range(now: float, crawled_through: float | None, settings: Settings) -> Window:
    """The whole range one crawl of a streamer covers.

    It ends at the next 10-minute boundary after `now`, and starts at the earliest of: the watermark
    minus the overlap (late clips), `now` minus the lookback (fresh view counts), and for a streamer
    never crawled, `now` minus the backfill.
    """
    end = align_up(now, HELIX_TIME_STEP)
    starts = [now - settings.lookback_hours * HOUR]
    if crawled_through is None:
        starts.append(now - settings.backfill_hours * HOUR)
    else:
        starts.append(crawled_through - settings.overlap_minutes * 60)
    return Window(align_down(min(starts), HELIX_TIME_STEP), end)


def next_window(after: float, crawl: Window, span: float) -> Window | None:
    """The window that starts at `after`, at most `span` long; None once the range is covered."""
    if after >= crawl.end:
        return None
    end = min(after + span, crawl.end)
    # A sliver left by the 10-minute alignment is not worth a Helix call of its own.
    if crawl.end - end <= HELIX_TIME_STEP:
        end = crawl.end
    return Window(after, end)


def split(crawl: Window, span: float) -> list[Window]:
    """Every window of a range, oldest first."""
    windows: list[Window] = []
    window = next_window(crawl.start, crawl, span)
    while window is not None:
        windows.append(window)
        window = next_window(window.end, crawl, span)
    return windows


def on_grid(span: float) -> float:
    """A span cut down to Helix's 10-minute grid, never under one step."""
    return max(HELIX_TIME_STEP, span // HELIX_TIME_STEP * HELIX_TIME_STEP)


def span_for(clips: int, span: float, target: int, widest: float) -> float:
    """The span that should hold about `target` clips, from a complete window that held `clips` in `span`."""
    if clips <= 0:
        return on_grid(widest)
    return on_grid(min(widest, span * target / clips))


def split_span(window: Window, created: list[float], probe: int) -> float:
    """After a walk neared Helix's result cap, the span of the next window, which starts where `window` does.

    The clips already read are the window's most viewed, not all of it, so their spread only bounds how dense
    it is from below. The next window reaches as far as the first `probe` of them (older clips have had
    longer to gather views, so the oldest part is where the read ones are densest) and at most half the
    window: small enough that its walk finishes and measures the real density, instead of halving blindly.
    """
    half = on_grid(window.span / 2)
    inside = sorted(t for t in created if window.start <= t < window.end)
    if len(inside) <= probe:
        return half
    reach = inside[probe] - window.start
    return min(half, max(HELIX_TIME_STEP, -(-reach // HELIX_TIME_STEP) * HELIX_TIME_STEP))
