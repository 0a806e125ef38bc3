"""Which streamers `clipcrawler cost` measures: yours (from the database), a seed-like mix, or the busy
case."""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from local.activity_mix import WeekActivity, profile_of
from shared.errors import ConfigError
from shared.timefmt import parse_rfc3339

HOUR = 3600
DAILY_WITHIN_S = 24 * HOUR  # a clip or a live stream this recent: modelled as streaming every day
OCCASIONAL_WITHIN_S = 7 * 24 * HOUR  # this recent: streaming on some days; older or never: dormant
BUSY = "busy"


@dataclass(frozen=True)
class World:
    """The streamers a cost measurement crawls: one activity profile per streamer, and where they
    came from.
    """

    name: str  # "yours", "seed-like" or "busy"
    profiles: tuple[str, ...]  # per streamer: daily, bursty (occasional), dormant, waker, or busy
    source: str  # one line saying what was measured

    @property
    def streamers(self) -> int:
        return len(self.profiles)

    @property
    def busy(self) -> bool:
        return self.name == BUSY

    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(self.profiles).items()))

    def activity(self, seed: int, start: float) -> WeekActivity | None:
        """The emulator's activity for this world; None: every streamer clips around the clock."""
        return None if self.busy else WeekActivity(seed, start, self.profiles)


def seed_like(streamers: int, why: str = "") -> World:
    profiles = tuple(profile_of(i) for i in range(streamers))
    counts = Counter("dormant" if p == "waker" else p for p in profiles)
    return World(
        "seed-like",
        profiles,
        (
            f"seed-like: {streamers} streamers, {counts['daily']} streaming daily, {counts['bursty']} on "
            "some days, "
            f"{counts['dormant']} dormant" + (f" ({why})" if why else "")
        ),
    )


def busy(streamers: int) -> World:
    return World(
        BUSY,
        (BUSY,) * streamers,
        f"busy: {streamers} streamers, every one clipping around the clock (so every one stays hourly)",
    )


def yours(path: Path) -> World | None:
    """The active streamers of the database at `path` by their observed activity; None if it has none."""
    if not path.is_file():
        return None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = conn.execute(
                "SELECT tier, last_clip_at, last_live_at, last_success_at FROM streamers "
                "WHERE active = 1 ORDER BY id"
            ).fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"cannot read the streamers of {path}: {exc}") from exc
    if not rows:
        return None
    crawled = [parse_rfc3339(r[3]) for r in rows if r[3]]
    # Recency is judged from the database's own latest crawl, so one not crawled for a while still shows its
    # mix.
    as_of = max(crawled) if crawled else time.time()
    profiles = tuple(_profile(as_of, *row) for row in rows)
    tiers = Counter(r[0] for r in rows)
    counts = Counter(profiles)
    uncrawled = len(rows) - len(crawled)
    return World(
        "yours",
        profiles,
        (
            f"yours: {len(rows)} active streamers in {path}; by their latest clip or live stream: "
            f"{counts['daily']} within 24 h (modelled as streaming daily), {counts['bursty']} within 7 days "
            "or "
            f"not crawled yet ({uncrawled}) (on some days), {counts['dormant']} quieter (dormant); "
            f"schedule tiers now " + ", ".join(f"tier {t}: {n}" for t, n in sorted(tiers.items()))
        ),
    )


def _profile(
    as_of: float, tier: int, last_clip_at: str | None, last_live_at: str | None, last_success_at: str | None
) -> str:
    if last_success_at is None:
        return "bursty"  # never crawled: nothing observed yet, neither busy nor dormant
    seen = [parse_rfc3339(t) for t in (last_clip_at, last_live_at) if t]
    if not seen:
        return "dormant"
    age = as_of - max(seen)
    return "daily" if age <= DAILY_WITHIN_S else "bursty" if age <= OCCASIONAL_WITHIN_S else "dormant"
