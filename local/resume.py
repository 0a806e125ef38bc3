"""The local counterpart of the producer's sweep: send again the unfinished jobs an earlier run left behind.

On Cloudflare the hourly cron re-sends jobs whose message was lost, hours later. A local run that was
interrupted lost its in-process queue at once, so the next local run (or `runs resume`) re-sends them now.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from shared.limits import MAX_SEND_MESSAGES
from shared.messages import CrawlJob, FanOut
from shared.ports import Clock, Database, OutgoingMessage, QueueSender
from shared.timefmt import to_rfc3339

# Unfinished and not held: queued, or running under a lease that ran out (its consumer is gone).
_RESUMABLE = (
    "j.status = 'queued' OR (j.status = 'running' AND (j.lease_expires_at IS NULL OR j.lease_expires_at < ?))"
)


@dataclass
class Resumed:
    """What a resume re-sent: jobs per run, fan-outs, and the unfinished jobs it had to leave alone."""

    jobs: dict[int, list[int]] = field(default_factory=dict)  # run id -> job ids
    fan_outs: list[int] = field(default_factory=list)  # runs whose fan-out stopped half-way
    leased: int = 0  # under a live lease: another clipcrawler's, or one killed with no chance to clean up
    leased_until: str | None = None

    @property
    def job_ids(self) -> list[int]:
        return [job_id for ids in self.jobs.values() for job_id in ids]

    def describe(self) -> str:
        """One line for the terminal, or "" when there was nothing to resume."""
        parts = []
        if self.jobs:
            runs = ", ".join(f"{len(ids)} of run {run}" for run, ids in sorted(self.jobs.items()))
            parts.append(f"resuming {len(self.job_ids)} unfinished jobs of earlier runs ({runs})")
        if self.fan_outs:
            parts.append("resuming the fan-out of run " + ", ".join(map(str, self.fan_outs)))
        if self.leased:
            parts.append(
                f"{self.leased} unfinished jobs are leased until {self.leased_until} (another "
                "clipcrawler is crawling them, or one was killed); they resume after that"
            )
        return "; ".join(parts)


async def resume_unfinished(
    db: Database,
    queue: QueueSender,
    clock: Clock,
    *,
    run_id: int | None = None,
    postpone_seconds: int = 3 * 3600,
) -> Resumed:
    """Re-send every resumable job (of `run_id`, or of any run) and every fan-out that stopped half-way.

    Their due time moves `postpone_seconds` ahead, as the producer's sweep does, so a cron tick in the
    meantime does not send them a second time.
    """
    now = to_rfc3339(clock.now())
    only = "AND j.run_id = ?" if run_id is not None else ""
    scope = (run_id,) if run_id is not None else ()
    jobs = await db.all(
        f"SELECT j.id, j.run_id, j.streamer_id FROM jobs AS j WHERE ({_RESUMABLE}) {only} "
        "ORDER BY j.run_id, j.id",
        now,
        *scope,
    )
    leased = await db.first(
        f"SELECT count(*) AS n, max(j.lease_expires_at) AS until FROM jobs AS j "
        f"WHERE j.status = 'running' AND j.lease_expires_at >= ? {only}",
        now,
        *scope,
    )
    stuck = await db.all(
        f"SELECT id, fanout_cursor FROM runs AS j WHERE status = 'enqueuing' "
        f"{only.replace('j.run_id', 'j.id')} ORDER BY id",
        *scope,
    )
    resumed = Resumed(
        leased=int(leased["n"]) if leased else 0, leased_until=leased["until"] if leased else None
    )
    messages = [
        OutgoingMessage(CrawlJob(int(j["run_id"]), int(j["id"]), str(j["streamer_id"])).encode())
        for j in jobs
    ]
    messages += [OutgoingMessage(FanOut(int(r["id"]), str(r["fanout_cursor"] or "")).encode()) for r in stuck]
    if jobs:
        await db.run(
            "UPDATE jobs SET due_at = ? WHERE id IN (SELECT value FROM json_each(?)) "
            "AND status IN ('queued', 'running')",
            to_rfc3339(clock.now() + postpone_seconds),
            json.dumps([int(j["id"]) for j in jobs]),
        )
    for start in range(0, len(messages), MAX_SEND_MESSAGES):
        await queue.send_batch(messages[start : start + MAX_SEND_MESSAGES])
    for j in jobs:
        resumed.jobs.setdefault(int(j["run_id"]), []).append(int(j["id"]))
    resumed.fan_outs = [int(r["id"]) for r in stuck]
    return resumed
