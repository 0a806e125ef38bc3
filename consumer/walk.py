"""The page walk of one crawl window: what it has read, and whether to follow, end, or split it."""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.burst import Stretch, window_total
from shared.config import Settings
from shared.states import StopReason
from shared.windows import HELIX_TIME_STEP, Window

PAGE_SIZE = 100

FOLLOW, END, SPLIT = "follow", "end", "split"
# A history walk splits after its second page when the window's estimated total passes the cap this much.
OVERFLOW = 1.3


@dataclass(frozen=True)
class Step:
    """What to do after a page: FOLLOW its cursor, END the window (with why), or SPLIT it."""

    action: str
    reason: str = ""


@dataclass
class WindowWalk:
    """One window's walk. Cursors and ids seen are kept in memory only: a continuation starts them afresh."""

    window: Window
    pages: int = 0  # pages read in this window, the resumed ones included
    clips: int = 0  # distinct clips read in this window, the resumed ones included
    cursors: set[str] = field(default_factory=set)
    ids: set[str] = field(default_factory=set)
    created: list[float] = field(default_factory=list)  # creation times of the distinct clips read here
    refollowed: set[str] = field(default_factory=set)
    last_gain_full: bool = False  # the latest page that added clips was a full one
    density: float | None = None  # clips a second in the windows before: set on a history walk's windows
    estimate: float | None = None  # the window's clips, estimated when it was split early...
    busiest: Stretch | None = None  # ...and the stretch where its sample crowds

    def read(
        self,
        cursor: str | None,
        page_ids: list[str],
        created: list[float],
        had_data: bool,
        settings: Settings,
    ) -> Step:
        """Take one page (its clip ids and their creation times) and decide what comes next."""
        self.pages += 1
        fresh = [(i, t) for i, t in zip(page_ids, created, strict=True) if i not in self.ids]
        self.ids.update(i for i, _ in fresh)
        self.created.extend(t for _, t in fresh)
        self.clips += len(fresh)
        if fresh:
            self.last_gain_full = len(page_ids) >= PAGE_SIZE
        if not cursor or not had_data:
            return Step(END, "end")  # Helix can hand out a cursor with an empty page near the end of a list
        if cursor in self.cursors and not fresh:
            # A loop: this page added nothing, and its cursor leads to a page already read. Follow it once
            # more only if the walk was still in full pages (a loop mid-list may be a one-off); a loop at the
            # end of a list (Twitch's endless ones, CommanderRoot/twitch-tools#136) ends the window here.
            if not self.last_gain_full or cursor in self.refollowed:
                return Step(END, StopReason.REPEATED_CURSOR)
            self.refollowed.add(cursor)
        split_at = settings.split_at_pages
        near_cap = self.pages >= split_at and self.clips >= (split_at - 1) * PAGE_SIZE
        if (near_cap or self._overflows(split_at)) and self.window.span > HELIX_TIME_STEP:
            return Step(SPLIT)  # Helix returns about 1,000 results per query: the rest needs smaller windows
        if self.pages >= settings.page_cap:
            # Pages that keep coming without nearing the cap (short ones, or a loop): a wide window is read
            # again in smaller ones, down to min_split_minutes; a window that small keeps what it gave.
            if self.window.span > settings.min_split_minutes * 60 + HELIX_TIME_STEP:
                return Step(SPLIT)
            return Step(END, StopReason.PAGE_CAP)
        self.cursors.add(cursor)
        return Step(FOLLOW)

    def _overflows(self, split_at: int) -> bool:
        """Whether the clips read so far say the window holds well over the cap: the pages still to come
        before the split would be read again anyway."""
        if self.density is None or self.pages < 2 or self.pages >= split_at or not self.last_gain_full:
            return False
        times = sorted(t for t in self.created if self.window.start <= t < self.window.end)
        total, busiest = window_total(times, self.window.start, self.window.end, self.density)
        if total <= OVERFLOW * split_at * PAGE_SIZE:
            return False
        self.estimate, self.busiest = total, busiest
        return True
