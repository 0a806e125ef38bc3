"""What a run did, read back from the database: for the CLI's summary and for `--json`."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from local.runner import InvocationLog
from producer.core import RunStarted
from shared.ports import Database
from shared.states import JobStatus


@dataclass(frozen=True)
class RunSummary:
    mode: str
    run_id: int
    status: str
    streamers: int
    crawled: int
    failed: int
    clips_new: int
    clips_updated: int
    clips_skipped: int
    helix_calls: int
    d1_calls: int
    queue_sends: int
    max_subrequests_per_invocation: int
    producer_subrequests: int
    consumer_invocations: int
    wall_s: float
    active_streamers: int = 0
    not_crawled: int = 0
    not_crawled_why: dict[str, int] = field(default_factory=dict)
    resumed_jobs: int = 0
    resumed_done: int = 0
    resumed_runs: list[int] = field(default_factory=list)
    stopped: str | None = None  # why the run did not go to its end: interrupted, or Twitch unreachable

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def render(self) -> str:
        lines = [
            f"clipcrawler {self.mode}: run {self.run_id} {self.status} in {self.wall_s:.2f} s",
            f"  streamers crawled       {self.crawled} of {self.streamers} ({self.failed} failed)",
            f"  clips                   {self.clips_new} new, {self.clips_updated} updated, "
            f"{self.clips_skipped} skipped as malformed",
            f"  Helix calls             {self.helix_calls}",
            f"  D1 calls                {self.d1_calls}",
            f"  queue sends             {self.queue_sends}",
            f"  consumer invocations    {self.consumer_invocations}",
            f"  max subrequests in one consumer invocation: {self.max_subrequests_per_invocation}",
        ]
        if self.resumed_jobs:
            runs = ", ".join(map(str, self.resumed_runs))
            lines.insert(
                2,
                f"  resumed                 {self.resumed_done} of {self.resumed_jobs} "
                f"unfinished jobs of earlier runs finished (run {runs})",
            )
        why = "; ".join(f"{n} {reason}" for reason, n in self.not_crawled_why.items() if n)
        lines.insert(
            2,
            f"  not crawled             {self.not_crawled} of {self.active_streamers} "
            "active streamers" + (f": {why}" if why else ""),
        )
        if self.stopped:
            lines.insert(1, f"  stopped early           {self.stopped}")
        return "\n".join(lines)


# Per active streamer, how its job in this run (or a job of an earlier run resumed now) ended.
_STREAMER_STATES = (
    "SELECT state, count(*) AS n FROM (SELECT CASE "
    "WHEN max(j.status = 'done') = 1 THEN 'done' "
    "WHEN max(j.status = 'failed') = 1 THEN 'failed' "
    "WHEN max(j.status IN ('queued', 'running')) = 1 THEN 'unfinished' "
    "WHEN EXISTS (SELECT 1 FROM jobs AS o WHERE o.streamer_id = s.id AND o.status IN ('queued', 'running')) "
    "THEN 'held' ELSE 'none' END AS state "
    "FROM streamers AS s LEFT JOIN jobs AS j ON j.streamer_id = s.id "
    "AND (j.run_id = ? OR j.id IN (SELECT value FROM json_each(?))) "
    "WHERE s.active = 1 GROUP BY s.id) GROUP BY state"
)


def _reasons(states: dict[str, int], run_id: int, kind: str, stopped: str | None) -> dict[str, int]:
    resume = f"`clipcrawler runs resume {run_id}`, or the next demo / crawl, finishes them"
    interrupted = bool(stopped and stopped.startswith("interrupted"))
    return {
        f"failed (`clipcrawler runs show {run_id}` says why)": states.get(JobStatus.FAILED, 0),
        (
            f"left unfinished when the run was interrupted ({resume})"
            if interrupted
            else f"unfinished ({resume})"
        ): states.get("unfinished", 0),
        "held by an unfinished job of another run (another clipcrawler is crawling them, or one was killed; "
        "they resume once its lease expires)": states.get("held", 0),
        (
            "not due yet on their schedule" if kind == "scheduled" else "added after the run started"
        ): states.get("none", 0),
    }


async def summarise(
    db: Database,
    started: RunStarted,
    *,
    mode: str,
    wall_s: float,
    invocations: InvocationLog,
    resumed_job_ids: list[int] | None = None,
    stopped: str | None = None,
) -> RunSummary:
    run = await db.first("SELECT * FROM runs WHERE id = ?", started.run_id)
    assert run is not None
    jobs = await db.first("SELECT max(max_subrequests) AS m FROM jobs WHERE run_id = ?", started.run_id)
    resumed_ids = json.dumps(resumed_job_ids or [])
    states = {r["state"]: int(r["n"]) for r in await db.all(_STREAMER_STATES, started.run_id, resumed_ids)}
    resumed = await db.first(
        "SELECT count(*) AS n, coalesce(sum(status = 'done'), 0) AS done, "
        "group_concat(DISTINCT run_id) AS runs FROM jobs "
        "WHERE id IN (SELECT value FROM json_each(?))",
        resumed_ids,
    )
    assert resumed is not None
    return RunSummary(
        mode=mode,
        run_id=started.run_id,
        status=run["status"],
        streamers=run["jobs_total"],
        crawled=run["jobs_done"],
        failed=run["jobs_failed"],
        clips_new=run["clips_new"],
        clips_updated=run["clips_updated"],
        clips_skipped=run["clips_skipped"],
        helix_calls=run["helix_calls"],
        d1_calls=run["d1_calls"],
        queue_sends=run["queue_sends"],
        max_subrequests_per_invocation=max(
            int((jobs or {}).get("m") or 0), max(invocations.subrequests, default=0)
        ),
        producer_subrequests=started.subrequests,
        consumer_invocations=len(invocations.subrequests),
        wall_s=round(wall_s, 3),
        active_streamers=sum(states.values()),
        not_crawled=sum(n for state, n in states.items() if state != JobStatus.DONE),
        not_crawled_why=_reasons(states, started.run_id, str(run["kind"]), stopped),
        resumed_jobs=int(resumed["n"]),
        resumed_done=int(resumed["done"]),
        resumed_runs=sorted(int(r) for r in str(resumed["runs"] or "").split(",") if r),
        stopped=stopped,
    )


def render_rows(rows: list[dict[str, Any]]) -> str:
    """Rows as an aligned text table."""
    if not rows:
        return "(no rows)"
    columns = list(rows[0])
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    text = str(value)
    return text if len(text) <= 60 else text[:59] + "…"
