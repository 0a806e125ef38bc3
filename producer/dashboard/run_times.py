"""How long a run worked, apart from the time it sat idle (finished and waiting for a retry of its failed
jobs)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from shared.ports import Database, Row
from shared.timefmt import parse_rfc3339, to_rfc3339

# A gap this long in which no job of the run was created, started, paged or finished is idle time: one
# consumer
# invocation runs at most 15 minutes and commits a page (cursor_at) well within that, so nothing was working.
IDLE_GAP_S = 960.0

# Every instant a run shows signs of work: its opening and end, and each job's creation, first claim, latest
# page with a cursor and finish; one pass over the jobs of the runs asked about (a row of k per column).
_IDLE = """
WITH wanted AS (SELECT value AS id FROM json_each(?1)),
events AS (
    SELECT j.run_id, julianday(CASE k.n WHEN 0 THEN j.created_at WHEN 1 THEN j.started_at
                                        WHEN 2 THEN j.cursor_at ELSE j.finished_at END) AS t
    FROM jobs AS j, (SELECT 0 AS n UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3) AS k
    WHERE j.run_id IN (SELECT id FROM wanted)
    UNION ALL SELECT id, julianday(created_at) FROM runs WHERE id IN (SELECT id FROM wanted)
    UNION ALL SELECT id, julianday(coalesce(finished_at, ?2)) FROM runs WHERE id IN (SELECT id FROM wanted)
),
gaps AS (
    SELECT run_id, (t - lag(t) OVER (PARTITION BY run_id ORDER BY t)) * 86400.0 AS gap
    FROM events WHERE t IS NOT NULL
)
SELECT run_id, sum(gap) AS idle_s FROM gaps WHERE gap > ?3 GROUP BY run_id
"""


@dataclass(frozen=True)
class RunTime:
    """A run's span (opened to finished, or to now), split into working and idle time."""

    span_s: float
    idle_s: float = 0.0

    @property
    def working_s(self) -> float:
        return max(0.0, self.span_s - self.idle_s)


def span_s(run: Row, now: float) -> float:
    end = parse_rfc3339(run["finished_at"]) if run.get("finished_at") else now
    return max(0.0, end - parse_rfc3339(run["created_at"]))


async def run_times(db: Database, runs: Sequence[Row], now: float) -> dict[int, RunTime]:
    """Working and idle time of each run; only runs longer than an idle gap have their jobs read."""
    spans = {int(r["id"]): span_s(r, now) for r in runs}
    long = [run_id for run_id, span in spans.items() if span > IDLE_GAP_S]
    idle: dict[int, float] = {}
    if long:
        rows = await db.all(_IDLE, json.dumps(long), to_rfc3339(now), IDLE_GAP_S)
        # julianday() is a float of days: round off its last bits (stored times are whole seconds anyway).
        idle = {int(r["run_id"]): round(float(r["idle_s"] or 0.0), 3) for r in rows}
    return {run_id: RunTime(span, min(span, idle.get(run_id, 0.0))) for run_id, span in spans.items()}
