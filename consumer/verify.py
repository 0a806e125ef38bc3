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
    """The streamer's clips created before `before` due by `now + early`: never checked ones by creation,
    the rest by due time.

    `before` is where the completed crawl's range began: the clips after it were just read from Get Clips,
    which is as good as a check, and stay due for the first crawl that no longer covers them.
    """
    horizon = now + early
    return (
        Batch()
        .add(
            Statement(
                f"SELECT {_DUE_COLUMNS} FROM clips WHERE broadcaster_id = ?1 AND next_check_at IS NULL "
                "AND created_at <= ?2 AND created_at < ?4 ORDER BY created_at LIMIT ?3",
                (broadcaster_id, to_rfc3339(horizon - schedule.first), limit, before),
            ),
            "unchecked",
        )
        .add(
            Statement(
                f"SELECT {_DUE_COLUMNS} FROM clips WHERE broadcaster_id = ?1 AND next_check_at <= ?2 "
                "AND created_at < ?4 ORDER BY next_check_at LIMIT ?3",
                (broadcaster_id, to_rfc3339(horizon), limit, before),
            ),
            "scheduled",
        )
    )


def plan(results: BatchResults, now: float, schedule: CheckSchedule, capacity: int) -> list[DueClip]:
    """The clips to check now, most overdue first; none unless one is due already.

    Clips due within the early horizon ride along only on a call that goes out anyway, so a streamer whose
    clips fall due one by one costs about one call per horizon, not one per crawl.
    """
    due = [_due(row, schedule) for row in results.rows("unchecked") + results.rows("scheduled")]
    due.sort(key=lambda d: (d.due_at, d.id))
    if not due or due[0].due_at > now:
        return []
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
