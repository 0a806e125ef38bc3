"""Hottest clips (views gained in the last 24 h), estimated from daily view-count marks.

The clips table keeps only the latest view count, so a mark (the count and when it was seen) is kept
in `clip_views` for each recent clip and replaced at most once a day by the producer's tick, with the
mark before it. The count 24 h ago is interpolated between the two points around that moment: the
clip's creation (0 views), the older mark, the newer mark and the clip's current row.

Cost: only clips young enough to still be re-crawled (created within `lookback_hours` + 24 h) are
marked, each row is written about once a day (about the number of clips created per day, ~4,000 at
200 streamers), and the tick's read walks the `clips_created` index over that range. Both statements
ride in the producer's existing final batch, so they cost no extra subrequest.
"""

from __future__ import annotations

from shared.batch import Batch
from shared.config import Settings
from shared.ports import Statement
from shared.timefmt import to_rfc3339

DAY = 86_400
MARK_SLACK = 600  # cron ticks drift by seconds; a mark 23 h 50 min old is old enough to replace


def tracked_since(now: float, settings: Settings) -> float:
    """Clips created before this are no longer re-crawled, so their counts stopped changing."""
    return now - settings.lookback_hours * 3600 - DAY


def mark_views(now: float, settings: Settings) -> Batch:
    """Mark the view counts of recent clips whose mark is a day old; forget clips too old to matter.

    Names: `marked` and `forgotten`.
    """
    since = to_rfc3339(tracked_since(now, settings))
    return (
        Batch()
        .add(
            Statement(
                # last_seen_at is when the count was observed (the row changes whenever the count does).
                "INSERT INTO clip_views (clip_id, marked_at, views) "
                "SELECT id, last_seen_at, view_count FROM clips WHERE created_at >= ?1 "
                "ON CONFLICT (clip_id) DO UPDATE SET prev_marked_at = clip_views.marked_at, "
                "prev_views = clip_views.views, marked_at = excluded.marked_at, views = excluded.views "
                "WHERE clip_views.marked_at <= ?2 AND excluded.marked_at > clip_views.marked_at",
                (since, to_rfc3339(now - DAY + MARK_SLACK)),
            ),
            "marked",
        )
        .add(Statement("DELETE FROM clip_views WHERE marked_at < ?1", (since,)), "forgotten")
    )


_EPOCH = "CAST(strftime('%s', {}) AS REAL)"
# The count at t0 (24 h ago; bound once as ?1), from the segment of (creation, 0) -> prev mark ->
# mark -> current row that contains t0. Marks are a day apart, so a previous mark is always at or
# before t0.
_BASELINE = """CASE
    WHEN lt <= ?1 THEN view_count
    WHEN ct >= ?1 THEN 0
    WHEN mt IS NOT NULL AND mt <= ?1 THEN mv + (view_count - mv) * (?1 - mt) / max(lt - mt, 1)
    WHEN pt IS NOT NULL THEN pv + (mv - pv) * (?1 - pt) / max(mt - pt, 1)
    WHEN mt IS NOT NULL THEN mv * (?1 - ct) / max(mt - ct, 1)
    ELSE view_count * (?1 - ct) / max(lt - ct, 1)
END"""

HOT_CLIPS_SQL = f"""
SELECT id, broadcaster_id, broadcaster_name, title, url, thumbnail_url, view_count, created_at,
       CAST(round(max(view_count - ({_BASELINE}), 0)) AS INTEGER) AS views_gained
FROM (
    SELECT c.id, c.broadcaster_id, c.broadcaster_name, c.title, c.url, c.thumbnail_url, c.view_count,
           c.created_at,
           {_EPOCH.format("c.created_at")} AS ct, {_EPOCH.format("c.last_seen_at")} AS lt,
           {_EPOCH.format("v.marked_at")} AS mt, v.views AS mv,
           {_EPOCH.format("v.prev_marked_at")} AS pt, v.prev_views AS pv
    FROM clips AS c LEFT JOIN clip_views AS v ON v.clip_id = c.id
    WHERE c.created_at >= ?2
)
ORDER BY views_gained DESC, id
LIMIT ?3"""


def hot_clips(now: float, settings: Settings, limit: int) -> Statement:
    """The clips that gained the most views in the 24 h before `now`, with `views_gained`."""
    return Statement(HOT_CLIPS_SQL, (float(now - DAY), to_rfc3339(tracked_since(now, settings)), limit))
