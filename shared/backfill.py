"""History backfills: the range a `--since` reaches, and how wide a backfill's windows may grow."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from shared.config import Settings
from shared.errors import InvalidInput
from shared.limits import HOUR
from shared.timefmt import align_down, align_up, parse_rfc3339, to_rfc3339
from shared.windows import HELIX_TIME_STEP, Window

# Twitch went on air in June 2011 (clips came in 2016): a backfill reaching earlier is a typo, not history.
EARLIEST = parse_rfc3339("2011-06-01T00:00:00Z")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_since(text: str, now: float, name: str = "--since") -> float:
    """A date (2021-03-01, midnight UTC) or an RFC 3339 time, checked to lie between 2011 and `now`."""
    if _DATE.fullmatch(text.strip()):
        try:
            parsed = datetime.strptime(text.strip(), "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:
            raise InvalidInput(f"{name} has value {text!r}, which is not a calendar date") from None
        since = parsed.timestamp()
    else:
        try:
            since = parse_rfc3339(text.strip())
        except InvalidInput:
            raise InvalidInput(
                f"{name} has value {text!r}; expected a date like 2021-03-01 "
                "or a time like 2021-03-01T12:00:00Z"
            ) from None
    if since < EARLIEST:
        raise InvalidInput(f"{name} has value {text!r}, before Twitch existed ({to_rfc3339(EARLIEST)})")
    if since >= now:
        raise InvalidInput(f"{name} has value {text!r}, which is not in the past")
    return since


def backfill_range(since: float, now: float) -> Window:
    """From `since` up to now, both aligned outward to Helix's 10-minute grid."""
    return Window(align_down(since, HELIX_TIME_STEP), align_up(now, HELIX_TIME_STEP))


def widest_window(settings: Settings, fixed_range: bool) -> float:
    """How wide one window may grow: a fixed (backfill) range reaches years, so its windows may be months."""
    if fixed_range:
        return max(settings.max_window_hours, settings.backfill_window_days * 24) * HOUR
    return settings.max_window_hours * HOUR


def window_target(settings: Settings, fixed_range: bool) -> int:
    """The clips a window is sized to hold: a backfill's density swings over its years, so it aims lower."""
    cap_target = (settings.split_at_pages - 1) * 100
    return min(cap_target, settings.backfill_window_clips) if fixed_range else cap_target
