"""One consumer invocation's crawl of one streamer: claim, page, commit, stop cleanly."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from consumer import upkeep
from consumer.result import CrawlResult
from consumer.split_trail import SplitTrail, WalkState
from consumer.walk import FOLLOW, PAGE_SIZE, SPLIT, WindowWalk
from shared import redaction, store
from shared.backfill import widest_window, window_target
from shared.batch import Batch, BatchResults
from shared.budget import Budget
from shared.clips import parse_page
from shared.config import Settings
from shared.errors import (
    AuthFailed,
    BudgetExhausted,
    DatabaseError,
    HelixError,
    LeaseLost,
    RateLimited,
    TransientHelixError,
)
from shared.helix import AppToken, HelixClient, RateLimit
from shared.limits import HOUR
from shared.logs import log_bug
from shared.messages import CrawlJob
from shared.metered import MeteredDatabase
from shared.ports import Clock, Row, Statement
from shared.schedule import latest
from shared.split_sample import SplitSample
from shared.states import JobStatus, Outcome, StopReason
from shared.timefmt import parse_rfc3339, to_rfc3339
from shared.token_store import StoredToken
from shared.windows import HELIX_TIME_STEP, Window, crawl_range, next_window, on_grid, span_for, split_span

# Room kept in the internal bucket after each page: one D1 write to hand the job back and one
# queue send for the continuation.
INTERNAL_RESERVE = 2


class StreamerCrawl:
    """Crawls the job's streamer until done, out of budget, or stopped by an error."""

    def __init__(
        self,
        message: CrawlJob,
        db: MeteredDatabase,
        http: httpx.AsyncClient,
        settings: Settings,
        clock: Clock,
    ) -> None:
        self.message = message
        self.db = db
        self.budget: Budget = db.budget
        self.settings = settings
        self.clock = clock
        self.http = http
        self.lease_token = uuid.uuid4().hex
        self.job: Row | None = None
        self.streamer: Row | None = None
        self.newest_clip_at: str | None = None
        self.helix: HelixClient | None = None
        self.run_jobs_total = 0  # the run's size, as the claim read it
        # A backfill run's jobs walk a fixed range, years long (shared/backfill.py): their windows are sized
        # for a density that changes over those years. A crawl's continuation is not one, though its range is
        # fixed too once its first page is written.
        self.backfill = False
        self.counted = (
            0,
            0,
        )  # the job's clips_new and clips_updated as its claim or last write returned them
        self.upkeep_found: BatchResults | None = None  # what the last write read for consumer/upkeep.py
        self.unmarked = 0  # clips marked deleted that this invocation's pages showed again (unmarked)
        self._known_limit: int | None = None  # Ratelimit-Limit as stored in D1
        self._reported = {"helix": 0, "d1": 0, "queue": 0}

    async def run(self) -> CrawlResult:
        claimed = await self._claim()
        if claimed is not None:
            return claimed
        try:
            return await upkeep.after_crawl(self, await self._crawl())
        except RateLimited as exc:
            return await self._stop(Outcome.RATE_LIMITED, StopReason.RATE_LIMITED, str(exc), exc.reset_at)
        except BudgetExhausted as exc:
            return await self._stop(Outcome.BUDGET, StopReason.BUDGET, str(exc))
        except AuthFailed as exc:
            return self._failed(f"auth: {exc}")
        except HelixError as exc:
            if (
                exc.status is not None
                and 400 <= exc.status < 500
                and not isinstance(exc, TransientHelixError)
            ):
                # Helix refused the request itself (400, 403, 404): asking again cannot help.
                return await self._stop(Outcome.PERMANENT, StopReason.HELIX_REFUSED, str(exc))
            return await self._stop(Outcome.TRANSIENT, StopReason.HELIX_ERROR, str(exc))
        except LeaseLost as exc:
            return CrawlResult(Outcome.LEASE_LOST, str(exc), job=self.job)
        except DatabaseError as exc:  # hand the job back if D1 still answers
            return await self._hand_back(exc)
        except Exception as exc:  # a bug: handed back the same way, so the job is not lost, and logged as one
            log_bug("consumer.crawl", exc, job_id=self.message.job_id)
            return await self._hand_back(exc)

    def _failed(self, reason: str) -> CrawlResult:
        """Fail the claimed job (the core writes it), with what the invocation spent since its last write."""
        return CrawlResult(
            Outcome.PERMANENT, reason, job=self.job, unreported=self._calls_since_report(d1_planned=1)
        )

    async def _hand_back(self, exc: Exception) -> CrawlResult:
        detail = f"{type(exc).__name__}: {exc}"
        try:
            return await self._stop(Outcome.TRANSIENT, StopReason.ERROR, detail)
        except (DatabaseError, BudgetExhausted):
            return CrawlResult(Outcome.TRANSIENT, detail, job=self.job)

    async def _claim(self) -> CrawlResult | None:
        m = self.message
        now = self.clock.now()
        claim = await store.claim_job(
            m.job_id,
            m.run_id,
            m.streamer_id,
            self.lease_token,
            to_rfc3339(now),
            to_rfc3339(now + self.settings.lease_seconds),
            self.settings.twitch_client_id,
        ).run(self.db)
        claimed = claim.first("claimed")
        if claimed is None:
            current = claim.first("state")
            if current is None:
                return CrawlResult(Outcome.PERMANENT, f"job {m.job_id} does not exist")
            if (current["run_id"], current["streamer_id"]) != (m.run_id, m.streamer_id):
                return CrawlResult(Outcome.PERMANENT, misnamed_job(m, current))
            if current["status"] in (JobStatus.DONE, JobStatus.FAILED):
                return CrawlResult(Outcome.DUPLICATE, f"job {m.job_id} is already {current['status']}")
            expires = current["lease_expires_at"]
            return CrawlResult(
                Outcome.BUSY,
                f"job {m.job_id} is leased by another consumer",
                retry_at=parse_rfc3339(expires) if expires else None,
            )
        self.job = claimed
        self.newest_clip_at = self.job["newest_clip_at"]
        self.counted = (int(claimed["clips_new"]), int(claimed["clips_updated"]))
        if self.job["reclaims"] > self.settings.max_retries:
            # Every holder died mid-crawl (a poison job, or a crash loop): stop feeding it consumers.
            return self._failed(
                f"job {m.job_id} was abandoned by {self.job['reclaims']} consumers in a row; giving up"
            )
        row = claim.first("token")
        refused = store.refusal(row, m.run_id)
        if refused is not None:  # another job of this run was refused: asking Twitch again cannot help
            return self._failed(f"auth: {refused}")
        self._known_limit = row["ratelimit_limit"] if row else None
        cached = AppToken.from_row(row)
        if cached is not None:
            redaction.remember(cached.access_token)  # masked in any error text that repeats it
        shared = (
            RateLimit(row["ratelimit_limit"], row["ratelimit_remaining"], row["ratelimit_reset"])
            if row
            else None
        )
        tokens = StoredToken(self.db, self.clock, self.settings.twitch_client_id, m.run_id)
        self.helix = HelixClient(self.http, self.settings, self.budget, self.clock, cached, shared, tokens)
        self.streamer = claim.first("streamer")
        run = claim.first("run")
        self.run_jobs_total = int(run["jobs_total"]) if run else 0
        self.backfill = bool(run and run["backfill_from"])
        return None

    async def _crawl(self) -> CrawlResult:
        job, helix = self.job, self.helix
        assert job is not None and helix is not None
        if self.streamer is None or not self.streamer["active"]:
            # Deactivated after its job was queued: close the job, and leave the watermark where it is.
            return _done(
                await self._commit_page(
                    crawl=None, stop_reason=StopReason.STREAMER_INACTIVE, pages=0, crawled=False
                )
            )
        crawl = self._crawl_window(job)
        plan = self._planned_span(job)
        window = self._current_window(job, crawl, plan)
        cursor: str | None = job["cursor"]
        walk = WindowWalk(window, job["window_pages"], job["window_clips"]) if window else None
        if cursor and (
            not job["cursor_at"]
            or self.clock.now() - parse_rfc3339(job["cursor_at"]) > self.settings.cursor_max_age_seconds
        ):
            # Results are ranked by views, which keep changing: an old cursor's offset no longer
            # lines up with the pages already read, so clips could slip between them.
            cursor = None
            walk = WindowWalk(window) if window else None
        if cursor and walk is not None:
            walk.cursors.add(cursor)
        state = WalkState.from_json(job.get("walk_state")) if self.backfill else WalkState(SplitTrail())
        measured = _Density.of(*state.measured)
        ceiling: float = self._widest()  # spans after a split stay under half of it (lookback crawls)
        trail = state.trail  # a history walk's splits not passed yet, with what their walks read
        if walk is not None and self.backfill:
            if walk.pages:  # the window in flight goes on: what it read sizes a split of it
                walk.created = [t for t in state.created if walk.window.start <= t < walk.window.end]
            if not trail:
                walk.density = measured.density_over(walk.window)
        anomaly: str | None = None
        while True:
            if window is None or walk is None:
                return _done(
                    await self._commit_page(
                        crawl=crawl, stop_reason=anomaly or StopReason.COMPLETE, pages=0, plan=plan
                    )
                )
            # A page costs one Helix call and one D1 write; keep room to hand the job back after it.
            if not self.budget.can_afford(external=1, internal=1 + INTERNAL_RESERVE):
                return await self._stop(Outcome.BUDGET, StopReason.BUDGET, None)
            page = await helix.get_clips(self.message.streamer_id, window, cursor)
            parsed = parse_page(page.data, self.message.streamer_id)
            # Stored timestamps share one format, so the newest sorts last as text.
            self.newest_clip_at = (
                max([r["created_at"] for r in parsed.rows] + [self.newest_clip_at or ""]) or None
            )
            step = walk.read(
                page.cursor,
                [r["id"] for r in parsed.rows],
                [parse_rfc3339(r["created_at"]) for r in parsed.rows],
                bool(parsed.rows or parsed.skipped),
                self.settings,
            )
            if step.action == SPLIT:
                # Re-read the window in smaller ones (stored clips are upserted again, harmlessly), sized from
                # what this walk read; the clips it read are kept.
                span = split_span(window, walk.created, PAGE_SIZE)
                if self.backfill:
                    span = self._split_history(walk, trail) or span
                else:
                    ceiling = min(ceiling, on_grid(window.span / 2))
                plan, measured = span, _Density()
                window = Window(window.start, window.start + span)
                cursor, walk = None, WindowWalk(window)
            elif step.action == FOLLOW:
                cursor = page.cursor
            else:
                if step.reason != "end":
                    anomaly = step.reason
                complete = self.backfill and step.reason == "end"
                passed = trail.completed(walk.window, walk.clips) if complete else None
                if passed is not None and passed.density:
                    # Past a busy stretch: the density before it stands for the split window's quiet part.
                    span = passed.window.span
                    measured = _Density.of(round(passed.density * span), span)
                limit = trail.ceiling(self._widest()) if self.backfill else ceiling
                plan = self._next_span(walk, step.reason, measured, limit)
                sampled = trail.span(window.end, self._target()) if step.reason == "end" else None
                if sampled is not None:
                    plan = min(sampled, self._widest())
                window = next_window(window.end, crawl, plan)
                cursor, walk = None, WindowWalk(window) if window else None
                if walk is not None and self.backfill and not trail:
                    walk.density = measured.density_over(walk.window)
            stop = (anomaly or StopReason.COMPLETE) if window is None else None
            result = await self._commit_page(
                crawl=crawl,
                rows=parsed.rows,
                skipped=len(parsed.skipped),
                window=window,
                cursor=cursor,
                walk=walk,
                stop_reason=stop,
                pages=1,
                plan=plan,
                walk_state=self._walk_state(trail, measured, walk) if self.backfill else None,
            )
            if result is not None:
                return result

    def _view_count_refresh(self) -> store.ViewCountRefresh:
        stale_before = self.clock.now() - self.settings.view_count_max_age_hours * HOUR
        return store.ViewCountRefresh(self.settings.view_count_step, to_rfc3339(stale_before))

    def _schedule(self) -> dict[str, Any]:
        """The streamer's tier and next due time, from its latest sign of activity."""
        streamer, now, tiers = self.streamer or {}, self.clock.now(), self.settings.tiers
        activity = latest(
            *(
                parse_rfc3339(t)
                for t in (self.newest_clip_at, streamer.get("last_clip_at"), streamer.get("last_live_at"))
                if t
            )
        )
        tier = tiers.choose(now, activity)
        return {"tier": tier, "next_crawl_at": to_rfc3339(tiers.next_crawl_at(now, tier))}

    def _planned_span(self, job: Row) -> float:
        """The span for this job's next windows: the job's own plan, else the one that last worked."""
        widest = self._widest()
        remembered = job["window_span"] or (self.streamer or {}).get("window_span")
        if remembered:
            return on_grid(min(widest, remembered))
        # A backfill's first window knows nothing of the channel's density: a quarter of the widest one
        # measures it for a call or two more, where the widest, over the cap, would be read again.
        return on_grid(widest / 4) if self.backfill else widest

    def _next_span(self, walk: WindowWalk, reason: str, measured: _Density, ceiling: float) -> float:
        """The next window's span, from the clip density the windows read so far showed.

        It aims at the clips a walk reads before it is split, so the next one fits under Helix's cap
        with room to spare; it never widens past the window before it when that one was cut short by
        a loop or the page cap, nor past half a window that had to be split.
        """
        now = self.clock.now()
        target = self._target()
        measured.add(
            walk.clips,
            max(HELIX_TIME_STEP, min(walk.window.end, now) - walk.window.start),
            target if self.backfill else None,
        )
        widest = min(ceiling, self._widest())
        span = span_for(measured.clips, measured.span, target, widest)
        if reason != "end":
            span = min(span, on_grid(walk.window.span))
        return span

    def _split_history(self, walk: WindowWalk, trail: SplitTrail) -> float | None:
        """The first re-read window's span after a history window split, from what its walk read: None when
        that cannot say (split_span then sizes it)."""
        sample = SplitSample(walk.window, list(walk.created))
        trail.split(sample)
        if not walk.estimate:
            return None
        # A window split early: its clips were estimated, from the density before it.
        sample.prior, sample.density = len(sample.times) / walk.estimate, walk.density
        span = sample.span(walk.window.start, self._target())
        if span and walk.busiest and walk.busiest.start - walk.window.start >= HELIX_TIME_STEP:
            # The stretch before the crowd is read first: it measures the sample's share of the clips there.
            span = min(span, on_grid(walk.busiest.start - walk.window.start))
        return span

    @staticmethod
    def _walk_state(trail: SplitTrail, measured: _Density, walk: WindowWalk | None) -> str:
        return WalkState(trail, (measured.clips, measured.span), list(walk.created) if walk else []).to_json()

    def crawl_range(self, job: Row) -> Window:
        """The job's whole range: fixed at its first write, else what it would be now."""
        return self._crawl_window(job)

    def calls_since_report(self, *, d1_planned: int = 0) -> store.Calls:
        """Calls made since the last write (for a write after the job's last one)."""
        return self._calls_since_report(d1_planned=d1_planned)

    def _target(self) -> int:
        return window_target(self.settings, self.backfill)

    def _widest(self) -> float:
        return widest_window(self.settings, self.backfill)

    def _crawl_window(self, job: Row) -> Window:
        if job["crawl_from"] and job["crawl_to"]:
            return Window(parse_rfc3339(job["crawl_from"]), parse_rfc3339(job["crawl_to"]))
        watermark = self.streamer["crawled_through"] if self.streamer else None
        return crawl_range(self.clock.now(), parse_rfc3339(watermark) if watermark else None, self.settings)

    def _current_window(self, job: Row, crawl: Window, span: float) -> Window | None:
        if job["window_start"] and job["window_end"]:
            return Window(parse_rfc3339(job["window_start"]), parse_rfc3339(job["window_end"]))
        # The last window and the job's completion are written together, so no window means none begun yet.
        return next_window(crawl.start, crawl, span)

    async def _commit_page(
        self,
        *,
        crawl: Window | None,
        stop_reason: str | None,
        pages: int,
        rows: list[dict[str, Any]] | None = None,
        skipped: int = 0,
        window: Window | None = None,
        cursor: str | None = None,
        walk: WindowWalk | None = None,
        crawled: bool = True,
        plan: float | None = None,
        walk_state: str | None = None,
    ) -> CrawlResult | None:
        """Write one page (or, with `pages=0`, only the job's new position); a result once the job is done.

        `window` is the window to page next (None: the crawl is complete), `cursor` and `walk` where in it.
        """
        rows = rows or []
        job = self.job
        assert job is not None
        now = to_rfc3339(self.clock.now())
        crawl = crawl or Window(self.clock.now(), self.clock.now())
        page = store.write_page(
            store.PageWrite(
                job_id=job["id"],
                run_id=job["run_id"],
                streamer_id=job["streamer_id"],
                lease_token=self.lease_token,
                now=now,
                clips=rows,
                skipped=skipped,
                calls=self._calls_since_report(d1_planned=1),
                crawl_from=job["crawl_from"] or to_rfc3339(crawl.start),
                crawl_to=job["crawl_to"] or to_rfc3339(crawl.end),
                window_start=to_rfc3339(window.start) if window else None,
                window_end=to_rfc3339(window.end) if window else None,
                cursor=cursor,
                cursor_at=now if cursor else None,
                window_pages=walk.pages if walk else 0,
                window_clips=walk.clips if walk else 0,
                window_span=int(plan) if plan else None,
                walk_state=walk_state,
                counted=self.counted,
                pages=pages,
                stop_reason=stop_reason,
                newest_clip_at=self.newest_clip_at,
                crawled=crawled,
                views=self._view_count_refresh(),
                clip_writes=store.ClipWrites(self.settings.clip_writes),
                **self._schedule(),
            )
        )
        reads = upkeep.lookup(self) if window is None and crawled else Batch()
        results = await page.add_all(self._take_token_statements()).extend(reads).run(self.db)
        if reads:
            self.upkeep_found = results
        if results.changes("job") != 1:
            raise LeaseLost(f"job {job['id']} was taken over by another consumer")
        written = results.first("job")
        if written is not None:
            self.counted = (int(written["clips_new"]), int(written["clips_updated"]))
        if rows:
            self.unmarked += results.changes("unmarked")
        if window is None:
            return CrawlResult(
                Outcome.DONE,
                stop_reason or StopReason.COMPLETE,
                finished_run=results.first("finished_run"),
                job=job,
            )
        return None

    async def _stop(
        self, outcome: Outcome, stop_reason: str, error: str | None, retry_at: float | None = None
    ) -> CrawlResult:
        """Hand the job back with its progress kept, so a continuation or a retry resumes it."""
        job = self.job
        assert job is not None
        now = self.clock.now()
        due = max(now, retry_at or now)
        if not self.budget.can_afford(internal=1):
            return CrawlResult(outcome, stop_reason, retry_at=retry_at, job=job)  # the lease will expire
        continuation = 1 if outcome in (Outcome.BUDGET, Outcome.RATE_LIMITED) else 0
        release = store.release_job(
            job["id"],
            job["run_id"],
            job["streamer_id"],
            self.lease_token,
            to_rfc3339(now),
            to_rfc3339(due),
            self._calls_since_report(d1_planned=1, queue_planned=continuation),
            stop_reason,
            error,
        )
        await release.add_all(self._take_token_statements()).run(self.db)
        return CrawlResult(
            outcome, stop_reason if error is None else f"{stop_reason}: {error}", retry_at=retry_at, job=job
        )

    def _take_token_statements(self) -> list[Statement]:
        """Store a token minted during this invocation (once), and share a low rate-limit reading."""
        helix = self.helix
        if helix is None:
            return []
        statements = []
        if helix.minted is not None:
            t, helix.minted = helix.minted, None
            statements.append(
                store.store_token(
                    self.settings.twitch_client_id,
                    t.access_token,
                    to_rfc3339(t.expires_at),
                    to_rfc3339(self.clock.now()),
                )
            )
        rl = helix.rate_limit
        learned = rl.limit is not None and rl.limit != self._known_limit  # the fan-out spreads runs by it
        if (rl.low or learned) and rl.reset_at is not None and rl.reset_at > self.clock.now():
            assert rl.limit is not None and rl.remaining is not None
            statements.append(
                store.store_rate_limit(
                    self.settings.twitch_client_id, rl.limit, rl.remaining, int(rl.reset_at)
                )
            )
            self._known_limit = rl.limit
        return statements

    def _calls_since_report(self, *, d1_planned: int = 0, queue_planned: int = 0) -> store.Calls:
        """Calls made since the last write, counting the ones about to be made (this write included)."""
        calls = dict(self.budget.calls)
        calls["d1"] += d1_planned
        calls["queue"] += queue_planned
        delta = {k: calls[k] - self._reported[k] for k in calls}
        self._reported = calls
        return store.Calls(
            helix=delta["helix"],
            d1=delta["d1"],
            queue=delta["queue"],
            invocation_total=self.budget.total + d1_planned + queue_planned,
        )


def misnamed_job(message: CrawlJob, job: Row) -> str:
    """Why a message whose job id belongs to another run or streamer is refused."""
    return (
        f"message names job {message.job_id} of run {message.run_id} "
        f"for streamer {message.streamer_id!r}, but job {message.job_id} belongs to run {job['run_id']} "
        f"and streamer {job['streamer_id']!r}"
    )


@dataclass
class _Density:
    """Clips read and the span they were read from, over the latest complete windows since the last split."""

    clips: int = 0
    span: float = 0.0
    windows: list[tuple[int, float]] = field(default_factory=list)

    def add(self, clips: int, span: float, enough: int | None) -> None:
        """Add a window; the oldest ones are dropped while the rest still hold `enough` clips (if given).

        A backfill walks through years whose density changes: the recent windows predict the next one.
        """
        self.windows.append((clips, span))
        while enough is not None and len(self.windows) > 1 and sum(c for c, _ in self.windows[1:]) >= enough:
            self.windows.pop(0)
        self.clips = sum(c for c, _ in self.windows)
        self.span = sum(s for _, s in self.windows)

    @classmethod
    def of(cls, clips: int, span: float) -> _Density:
        """A measure that starts from `clips` read over `span` (none, for a span of 0)."""
        measured = cls()
        if span > 0:
            measured.add(clips, span, None)
        return measured

    def density_over(self, window: Window) -> float | None:
        """Clips a second, when the windows measured span at least half of `window`: else too little to go
        by."""
        if self.span < window.span / 2 or self.clips <= 0:
            return None
        return self.clips / self.span


def _done(result: CrawlResult | None) -> CrawlResult:
    """The result of a write with no window left, which always finishes the job."""
    assert result is not None
    return result
