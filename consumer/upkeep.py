"""After a crawl completes: verify its streamer's clips that are due; after a run's last crawl, name games.

It rides on the crawl's own invocation (no message, queue operation or Worker request of its own), with at
most the configured shares of the invocation's subrequests: its reads go with the job's last write, then the
Helix calls, then one D1 write, and only when there was something to do. New game ids are only collected by
each crawl (consumer/games.py) and named by the invocation whose write finished the run: one Get Games call
per 100 new games a run, not a call and a write in every first crawl that met one.
A failure here never fails the crawl: what was not checked stays due for the next one.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Protocol

from consumer import games, verify
from consumer.result import CrawlResult
from shared.batch import Batch, BatchResults
from shared.budget import EXTERNAL, INTERNAL, Budget
from shared.config import Settings
from shared.errors import BudgetExhausted, HelixError, RateLimited
from shared.helix import IDS_PER_CALL, HelixClient
from shared.messages import CrawlJob
from shared.metered import MeteredDatabase
from shared.ports import Clock, Row, Statement
from shared.retry_policy import Outcome
from shared.store import Calls
from shared.timefmt import to_rfc3339
from shared.verification import DAY, chunks
from shared.windows import Window

log = logging.getLogger("clipcrawler.consumer")
EXTERNAL_RESERVE = 1  # the run-finished webhook may still need a fetch
# However large the share (Paid: 10,000 subrequests), one invocation checks at most this many calls' worth:
# the due lookups read that many index rows, and a backlog (a history backfill) drains over later crawls.
MAX_VERIFY_CALLS = 50
# Get Games calls the invocation that finishes a run may make (100 ids each); more waits for the next run.
MAX_GAMES_CALLS = 10


class StreamerCrawl(Protocol):
    """What the upkeep reads of the crawl it follows (consumer/crawl.py), without importing it."""

    message: CrawlJob
    db: MeteredDatabase
    budget: Budget
    settings: Settings
    clock: Clock
    lease_token: str
    job: Row | None
    helix: HelixClient | None
    upkeep_found: BatchResults | None
    unmarked: int
    run_jobs_total: int

    def crawl_range(self, job: Row) -> Window: ...

    def calls_since_report(self, *, d1_planned: int = 0) -> Calls: ...


def _spare_points(helix: HelixClient, now: float, share: float) -> float:
    """Points left in Twitch's window beyond what crawls paced at `share` of the limit still need in it."""
    rl = helix.rate_limit
    if rl.limit is None or rl.remaining is None or rl.reset_at is None:
        return math.inf  # nothing read yet: the crawl's own call will tell the next invocation
    left = min(1.0, max(0.0, rl.reset_at - now) / 60)  # Twitch's bucket refills over a minute
    return rl.remaining - share * rl.limit * left


@dataclass
class Upkeep:
    """What one invocation's upkeep did."""

    checked: int = 0
    marked: int = 0
    unmarked: int = 0
    games: int = 0
    unknown_games: int = 0
    helix_calls: int = 0
    stopped: str = ""
    statements: list[Statement] = field(default_factory=list)


def lookup(crawl: StreamerCrawl) -> Batch:
    """Sent with the job's last write: clips due for a check; its new game ids wanted, and read if the run
    finished."""
    settings, job = crawl.settings, crawl.job
    assert job is not None
    now = crawl.clock.now()
    since = job["crawl_from"] or to_rfc3339(crawl.crawl_range(job).start)  # unset until the first write
    batch = verify.due_clips(
        job["streamer_id"],
        since,
        now,
        settings.check_schedule,
        settings.verify_early_hours * 3600,
        max(1, _verify_calls(crawl)) * IDS_PER_CALL,
    )
    batch.add(games.want(job["streamer_id"], since, now - settings.games_retry_days * DAY, now))
    return batch.add(
        games.wanted_if_run_finished(job["run_id"], MAX_GAMES_CALLS * IDS_PER_CALL), "wanted_games"
    )


def _verify_calls(crawl: StreamerCrawl) -> int:
    """Get Clips by id calls this invocation may make: its share, of what is left."""
    budget = crawl.budget
    share = math.floor(crawl.settings.verify_external_share * budget.external_limit)
    return max(0, min(share, MAX_VERIFY_CALLS, budget.left(EXTERNAL) - EXTERNAL_RESERVE))


async def after_crawl(crawl: StreamerCrawl, result: CrawlResult) -> CrawlResult:
    """Run the upkeep when the crawl completed and its last write read what is due; the crawl's result."""
    if result.outcome is not Outcome.DONE or crawl.upkeep_found is None or crawl.helix is None:
        return result
    try:
        done = await _upkeep(crawl, crawl.helix, crawl.upkeep_found)
    except Exception as exc:  # D1 failing after the job was written: the next crawl finds the same work due
        log.warning("job %s: upkeep stopped: %s: %s", crawl.message.job_id, type(exc).__name__, exc)
        return result
    if done.checked or crawl.unmarked or done.games or done.unknown_games or done.stopped:
        log.info(
            "job %s: verified %d clips (%d marked deleted, %d back), %d back in crawled pages, "
            "%d games named, %d unknown%s",
            crawl.message.job_id,
            done.checked,
            done.marked,
            done.unmarked,
            crawl.unmarked,
            done.games,
            done.unknown_games,
            f"; stopped: {done.stopped}" if done.stopped else "",
        )
    return result


async def _upkeep(crawl: StreamerCrawl, helix: HelixClient, found: BatchResults) -> Upkeep:
    settings, budget, job = crawl.settings, crawl.budget, crawl.job
    assert job is not None
    done = Upkeep()
    internal_cap = min(
        budget.left(INTERNAL), math.floor(settings.verify_internal_share * budget.internal_limit)
    )
    if internal_cap < 1:
        done.stopped = "no D1 subrequest left for the upkeep's write"
        return done
    now, calls = crawl.clock.now(), _verify_calls(crawl)
    rl = helix.rate_limit
    paced = rl.limit is not None and crawl.run_jobs_total > settings.ratelimit_share * rl.limit
    if (
        _spare_points(helix, now, settings.ratelimit_share) < max(1, calls)
        if paced
        else rl.pause_before_next(now, settings.ratelimit_low_water) > 0
    ):
        # The points left in Twitch's window are promised to the crawls a big run paces at `ratelimit_share`
        # of the limit (shared/fanout.py): the upkeep can wait for a later crawl, those crawls cannot.
        done.stopped = "Twitch's rate-limit bucket is low; left for a later crawl"
        return done
    try:
        if calls:
            await _verify(
                helix,
                verify.plan(found, now, settings.check_schedule, calls * IDS_PER_CALL),
                now,
                done,
                crawl,
            )
        await _name_games(
            helix,
            [r["id"] for r in found.rows("wanted_games")],
            budget.left(EXTERNAL) - EXTERNAL_RESERVE,
            now,
            done,
        )
    except (RateLimited, BudgetExhausted, HelixError) as exc:
        done.stopped = f"{type(exc).__name__}: {exc}"  # what was answered is still written below
    if done.helix_calls or done.statements:
        write = Batch().add_all(done.statements)
        write.add_all(
            _counters(job["id"], job["run_id"], crawl.lease_token, crawl.calls_since_report(d1_planned=1))
        )
        await write.run(crawl.db)
    return done


async def _verify(
    helix: HelixClient, due: list[verify.DueClip], now: float, done: Upkeep, crawl: StreamerCrawl
) -> None:
    schedule = crawl.settings.check_schedule
    for batch in chunks(due, IDS_PER_CALL):
        answer = await helix.get_clips_by_id([c.id for c in batch])
        done.helix_calls += 1
        if answer.cursor is not None:
            # More pages for 100 ids should not happen; an answer cut short proves no clip is gone.
            done.stopped = "Get Clips by id answered with a cursor; its clips were left due"
            return
        checked = verify.answered(batch, answer.data, now, schedule)
        marked, unmarked = verify.changes(checked)
        done.checked += len(checked)
        done.marked += marked
        done.unmarked += unmarked
        done.statements.append(verify.record(checked, now))


async def _name_games(
    helix: HelixClient, game_ids: list[str], calls_left: int, now: float, done: Upkeep
) -> None:
    for batch in chunks(game_ids, IDS_PER_CALL)[: max(0, calls_left)]:
        answer = await helix.get_games(batch)
        done.helix_calls += 1
        known = {g["id"] for g in answer}
        if answer:
            done.statements.append(games.store(answer, now))
        unknown = [i for i in batch if i not in known]
        if unknown:
            done.statements.append(games.store_unknown(unknown, now))
        done.statements.append(games.no_longer_wanted(batch))
        done.games += len(known & set(batch))
        done.unknown_games += len(unknown)


def _counters(job_id: int, run_id: int, lease_token: str, calls: Calls) -> list[Statement]:
    """The upkeep's calls, added to its job's and run's counters (the job is done, its token still on it)."""
    return [
        Statement(
            "UPDATE jobs SET helix_calls = helix_calls + ?1, d1_calls = d1_calls + ?2, "
            "subrequests = subrequests + ?1 + ?2, max_subrequests = max(max_subrequests, ?3) "
            "WHERE id = ?4 AND lease_token = ?5",
            (calls.helix, calls.d1, calls.invocation_total, job_id, lease_token),
        ),
        Statement(
            "UPDATE runs SET helix_calls = helix_calls + ?1, d1_calls = d1_calls + ?2 WHERE id = ?3 AND "
            "EXISTS (SELECT 1 FROM jobs WHERE id = ?4 AND run_id = runs.id AND lease_token = ?5)",
            (calls.helix, calls.d1, run_id, job_id, lease_token),
        ),
    ]
