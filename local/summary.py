"""What a run did, read back from the database: for the CLI's summary and for `--json`."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from local.runner import InvocationLog
from producer.core import RunStarted
from shared.ports import Database


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
        return "\n".join(lines)


async def summarise(db: Database, started: RunStarted, *, mode: str, wall_s: float,
                    invocations: InvocationLog) -> RunSummary:
    run = await db.first("SELECT * FROM runs WHERE id = ?", started.run_id)
    assert run is not None
    jobs = await db.first("SELECT max(max_subrequests) AS m FROM jobs WHERE run_id = ?", started.run_id)
    return RunSummary(
        mode=mode, run_id=started.run_id, status=run["status"], streamers=run["jobs_total"],
        crawled=run["jobs_done"], failed=run["jobs_failed"], clips_new=run["clips_new"],
        clips_updated=run["clips_updated"], clips_skipped=run["clips_skipped"], helix_calls=run["helix_calls"],
        d1_calls=run["d1_calls"], queue_sends=run["queue_sends"],
        max_subrequests_per_invocation=max(int((jobs or {}).get("m") or 0), max(invocations.subrequests, default=0)),
        producer_subrequests=started.subrequests, consumer_invocations=len(invocations.subrequests),
        wall_s=round(wall_s, 3))


def render_rows(rows: list[dict[str, Any]]) -> str:
    """Rows as an aligned text table."""
    if not rows:
        return "(no rows)"
    columns = list(rows[0])
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    text = str(value)
    return text if len(text) <= 60 else text[:59] + "…"
