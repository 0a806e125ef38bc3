"""Verification of clips that left the lookback: Get Clips by id marks the missing ones deleted, never drops
them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from shared.batch import Batch, BatchResults
from shared.helix import IDS_PER_CALL
from shared.ports import Row, Statement
from shared.timefmt import parse_rfc3339, to_rfc3339
from shared.verification import CheckSchedule

_DUE_COLUMNS = "id, created_at, deleted_at, next_check_at"


@dataclass(frozen=True)
class DueClip:
    """A clip whose check is due by the horizon; `deleted` is its mark as stored."""

    id: str
    created_at: float
    due_at: float
    deleted: bool


def due_clips(
    broadcaster_id: str, before: str, now: float, schedule: CheckSchedule, early: float, limit: int
) -> Batch:
    """The streamer's clips due by `now + early`: never checked ones by creation, the rest by due time.

    `before` is where the completed crawl's range began. A clip after it was just read from Get Clips, which
    is as good as a check: it stays due for the first crawl that no longer covers it. One after it due within
    `early` either way is read too, to ride along on a call that goes out anyway: crawl by crawl, a stream's
    clips leave the range an hour's worth at a time (and the range's overlap holds a few due already), and
    without the ride-along each hour's would cost a call of its own.
    """
    horizon, first = now + early, schedule.first
    by_creation = _DueQuery(broadcaster_id, before, limit, "created_at", unchecked=True)
    by_due_time = _DueQuery(broadcaster_id, before, limit, "next_check_at", unchecked=False)
    return (
        Batch()
        .add(by_creation.out_of_range(horizon - first), "unchecked")
        .add(by_due_time.out_of_range(horizon), "scheduled")
        .add(by_creation.in_range_due_after(horizon - first, now - early - first), "unchecked_in_range")
        .add(by_due_time.in_range_due_after(horizon, now - early), "scheduled_in_range")
    )


@dataclass(frozen=True)
class _DueQuery:
    """One streamer's clips whose `due` column is at most an edge, in its order: creation for clips never
    checked (due `first` after it), the next check's time for the rest."""

    broadcaster_id: str
    before: str
    limit: int
    due: str
    unchecked: bool

    def out_of_range(self, edge: float) -> Statement:
        """Due by `edge`, created before the crawl's range."""
        return self._select("created_at < ?4", to_rfc3339(edge))

    def in_range_due_after(self, edge: float, after: float) -> Statement:
        """Due by `edge` but not by `after`, created inside the crawl's range: a ride-along only."""
        return self._select(f"created_at >= ?4 AND {self.due} > ?5", to_rfc3339(edge), to_rfc3339(after))

    def _select(self, where: str, *edges: str) -> Statement:
        return Statement(
            f"SELECT {_DUE_COLUMNS} FROM clips WHERE broadcaster_id = ?1 "
            f"{'AND next_check_at IS NULL ' if self.unchecked else ''}AND {self.due} <= ?2 AND {where} "
            f"ORDER BY {self.due} LIMIT ?3",
            (self.broadcaster_id, edges[0], self.limit, self.before, *edges[1:]),
        )


_OUT_OF_RANGE = ("unchecked", "scheduled")
_IN_RANGE = ("unchecked_in_range", "scheduled_in_range")


def plan(results: BatchResults, now: float, schedule: CheckSchedule, capacity: int) -> list[DueClip]:
    """The clips to check now, most overdue first; none unless one out of the crawl's range is due already.

    Clips due within the early horizon, and those the crawl just read, ride along only on a call that goes
    out anyway, so a streamer whose clips fall due one by one costs about one call per horizon, not one per
    crawl.
    """
    out_of_range = [_due(row, schedule) for label in _OUT_OF_RANGE for row in results.rows(label)]
    if not any(d.due_at <= now for d in out_of_range):
        return []
    due = out_of_range + [_due(row, schedule) for label in _IN_RANGE for row in results.rows(label)]
    due.sort(key=lambda d: (d.due_at, d.id))
    return due[:capacity]


def _due(row: Row, schedule: CheckSchedule) -> DueClip:
    created = parse_rfc3339(row["created_at"])
    due = parse_rfc3339(row["next_check_at"]) if row["next_check_at"] else created + schedule.first
    return DueClip(row["id"], created, due, row["deleted_at"] is not None)


@dataclass(frozen=True)
class Checked:
    """One clip's answer: whether Twitch still has it, and when to look again."""

    clip: DueClip
    present: bool
    next_check_at: float


def answered(clips: Sequence[DueClip], data: object, now: float, schedule: CheckSchedule) -> list[Checked]:
    """What one Get Clips by id answer says about the clips asked for (at most 100)."""
    assert len(clips) <= IDS_PER_CALL
    present = {c.get("id") for c in data if isinstance(c, dict)} if isinstance(data, list) else set()
    return [Checked(c, c.id in present, schedule.next_after(c.created_at, max(now, c.due_at))) for c in clips]


# A mark (or unmark) moves last_seen_at, the Parquet export's change marker, so the export picks it up.
_RECORD = (
    "UPDATE clips SET next_check_at = json_extract(j.value, '$.next'), "
    "deleted_at = CASE WHEN json_extract(j.value, '$.present') THEN NULL ELSE coalesce(clips.deleted_at, ?1) "
    "END, "
    "last_seen_at = CASE WHEN json_extract(j.value, '$.present') = (clips.deleted_at IS NOT NULL) THEN ?1 "
    "ELSE clips.last_seen_at END "
    "FROM json_each(?2) AS j WHERE clips.id = json_extract(j.value, '$.id')"
)


def record(checked: Sequence[Checked], now: float) -> Statement:
    """Every check's result and next due time, in one statement."""
    rows = [{"id": c.clip.id, "present": c.present, "next": to_rfc3339(c.next_check_at)} for c in checked]
    return Statement(_RECORD, (to_rfc3339(now), json.dumps(rows)))


def changes(checked: Sequence[Checked]) -> tuple[int, int]:
    """(marked deleted, unmarked) by these checks."""
    marked = sum(1 for c in checked if not c.present and not c.clip.deleted)
    unmarked = sum(1 for c in checked if c.present and c.clip.deleted)
    return marked, unmarked
