"""Every SQL statement the crawler runs: a `Batch` of named statements, or one `Statement`."""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.batch import Batch
from shared.clips import COLUMNS
from shared.messages import storable_text
from shared.ports import Row, Statement
from shared.redaction import scrub
from shared.states import UNFINISHED_JOBS, JobStatus, RunStatus

DEAD_LETTER_BODY_LIMIT = 4_000
ERROR_LIMIT = 1_000

# Twitch never changes these; leaving the indexed ones out of the update spares D1 two index writes per row.
_IMMUTABLE = ("id", "broadcaster_id", "created_at")
_MUTABLE = [c for c in COLUMNS if c not in _IMMUTABLE]
# game_id is not in the upsert's SET: SQLite rewrites every index whose column an UPDATE sets, changed or not,
# and D1 bills each (clips_game_created: a row per rewritten clip); _MOVE_GAME sets it where it really
# changed.
_SET_ON_CONFLICT = [c for c in _MUTABLE if c != "game_id"]
_JSON_ID = "json_extract(j.value, '$.id')"
# Statements bind their values by number (`?1`, `?2`: D1 and SQLite both accept them), so a value the SQL
# uses several times is bound once; the fragments below take the numbers their statement gave the values.


def _named_job(job: int, run: int, streamer: int) -> str:
    """A message acts only on the job it names: id, run and streamer together."""
    return f"id = ?{job} AND run_id = ?{run} AND streamer_id = ?{streamer}"


def _named_lease(job: int, run: int, streamer: int, token: int) -> str:
    """The lease on the job a message names."""
    return f"EXISTS (SELECT 1 FROM jobs WHERE {_named_job(job, run, streamer)} AND lease_token = ?{token})"


def _run_holds_lease(job: int, streamer: int, token: int) -> str:
    """The same for an update of `runs`, whose row is the run."""
    return (
        f"EXISTS (SELECT 1 FROM jobs WHERE id = ?{job} AND run_id = runs.id AND streamer_id = ?{streamer} "
        f"AND lease_token = ?{token})"
    )


def _outdated(old: str, new: Callable[[str], str], step: int, stale: int) -> str:
    """SQL that is true when the stored clip `old` must be rewritten with the page's copy of it.

    Any field that differs, except the view count, which moves on almost every crawl of a young clip:
    it is rewritten when it moved by at least a share of itself (?`step`, `view_count_step`) or when
    the stored one is old (?`stale`: rows last written at or before it).
    """
    fields = " OR ".join(f"{old}.{c} IS NOT {new(c)}" for c in _MUTABLE if c != "view_count")
    views = (
        f"({old}.view_count IS NOT {new('view_count')} AND "
        f"(abs({new('view_count')} - {old}.view_count) >= max(1, {old}.view_count * ?{step}) "
        f"OR {old}.last_seen_at <= ?{stale}))"
    )
    return f"{fields} OR {views}"


def _count_new(ids: int) -> str:
    """The page's clips not stored yet, from the JSON list of its ids (not a clip object parsed for each)."""
    return (
        f"(SELECT count(*) FROM json_each(?{ids}) AS j "
        "WHERE NOT EXISTS (SELECT 1 FROM clips AS c WHERE c.id = j.value))"
    )


def _count_changed(page: int, step: int, stale: int) -> str:
    new = lambda col: f"json_extract(j.value, '$.{col}')"  # noqa: E731
    return (
        f"(SELECT count(*) FROM json_each(?{page}) AS j JOIN clips AS c ON c.id = {_JSON_ID} "
        f"WHERE {_outdated('c', new, step, stale)})"
    )


# One statement for a whole page: json_each() keeps it to a handful of bound parameters
# (D1 allows 100), and `WHERE` before `ON CONFLICT` is what lets SQLite parse INSERT ... SELECT.
# Parameters: ?1 now (first and last seen), ?2 the page, ?3-?6 job id, run id, streamer id, lease token,
# ?7 and ?8 the two of _outdated.
_UPSERT_INSERT = (
    # view_digits is set here so that schema.sql's insert trigger does not rewrite each new clip; the update
    # leaves it to the other trigger, which rewrites it only when the count gains a digit.
    f"INSERT INTO clips ({', '.join(COLUMNS)}, first_seen_at, last_seen_at, view_digits) "
    f"SELECT {', '.join(f'json_extract(value, {chr(39)}$.{c}{chr(39)})' for c in COLUMNS)}, ?1, ?1, "
    f"length(json_extract(value, '$.view_count')) "
    f"FROM json_each(?2) WHERE {_named_lease(3, 4, 5, 6)} "
    f"ON CONFLICT (id) DO UPDATE SET "
    f"{', '.join(f'{c} = excluded.{c}' for c in _SET_ON_CONFLICT)}, last_seen_at = excluded.last_seen_at "
)
_UPSERT_CLIPS = _UPSERT_INSERT + f"WHERE {_outdated('clips', lambda col: f'excluded.{col}', 7, 8)}"

# game_id is left out of the upsert's SET (an index write per rewrite even when unchanged): this moves it only
# where it changed. Parameters: the page, job id, run id, streamer id, lease token.
_MOVE_GAME = (
    "UPDATE clips SET game_id = json_extract(j.value, '$.game_id') FROM json_each(?1) AS j "
    "WHERE clips.id = json_extract(j.value, '$.id') "
    "AND clips.game_id IS NOT json_extract(j.value, '$.game_id') "
    "AND EXISTS (SELECT 1 FROM jobs WHERE id = ?2 AND run_id = ?3 AND streamer_id = ?4 AND lease_token = ?5)"
)

# A marked clip (consumer/verify.py) that a page shows again is back on Twitch: unmarked, with last_seen_at
# moved for the Parquet export. Not in the upsert's SET: naming deleted_at there would rewrite its four
# partial indexes for every rewritten clip. This reads and writes marked rows only (clips_deleted_broadcaster
# over the page's creation times). next_check_at stays: the check that marked the clip set it on the clip's
# schedule, as for one found present. Parameters: now, the page's clip ids (JSON), streamer id, its oldest
# and newest creation time, job id, run id, lease token.
_UNMARK_BACK = (
    "UPDATE clips SET deleted_at = NULL, last_seen_at = ?1 "
    "WHERE broadcaster_id = ?3 AND deleted_at IS NOT NULL AND created_at >= ?4 AND created_at <= ?5 "
    "AND id IN (SELECT value FROM json_each(?2)) "
    f"AND {_named_lease(6, 7, 3, 8)}"
)


class _Numbered:
    """Values bound by number, each once: `self["name"]` is its `?N` in the SQL, `self.params` the tuple."""

    def __init__(self, **values: Any) -> None:
        self._numbers = {name: number for number, name in enumerate(values, 1)}
        self.params = tuple(values.values())

    def __getitem__(self, name: str) -> str:
        return f"?{self._numbers[name]}"

    def number(self, name: str) -> int:
        return self._numbers[name]


@dataclass(frozen=True)
class ViewCountRefresh:
    """When a stored view count is rewritten although nothing else about the clip changed."""

    step: float  # it moved by at least this share of itself (and by at least one view)...
    stale_before: str  # ...or it was stored at or before this instant

    @property
    def params(self) -> tuple[float, str]:
        return (self.step, self.stale_before)


EXACT_VIEW_COUNTS = ViewCountRefresh(0.0, "9999-12-31T23:59:59Z")


class ClipWrites(enum.Enum):
    """How a page's clips that are already stored are written."""

    CHANGED_ONLY = "changed-only"  # rewritten only when they changed (the view count per ViewCountRefresh)
    REWRITE_EVERYTHING = "rewrite-everything"  # every one rewritten: the naive design, measured by the bench

    def statement(
        self,
        *,
        now: str,
        page: str,
        job_id: int,
        run_id: int,
        streamer_id: str,
        lease_token: str,
        views: ViewCountRefresh,
    ) -> Statement:
        """The upsert of `page` (JSON), fenced on the job's lease."""
        fence = (now, page, job_id, run_id, streamer_id, lease_token)
        if self is ClipWrites.REWRITE_EVERYTHING:
            return Statement(_UPSERT_INSERT.rstrip(), fence)
        return Statement(_UPSERT_CLIPS, (*fence, *views.params))


@dataclass(frozen=True)
class Calls:
    """Subrequests made since the last report, by kind, and the invocation's running total."""

    helix: int = 0
    d1: int = 0
    queue: int = 0
    invocation_total: int = 0


@dataclass(frozen=True)
class PageWrite:
    """Everything one committed page changes, applied in one `batch()`."""

    job_id: int
    run_id: int
    streamer_id: str
    lease_token: str
    now: str
    clips: list[dict[str, Any]]
    skipped: int
    calls: Calls
    crawl_from: str
    crawl_to: str
    window_start: str | None  # the window to page next; None when the crawl is complete
    window_end: str | None
    cursor: str | None
    cursor_at: str | None
    window_pages: int
    pages: int  # 1 if this write carries a page, 0 for a bookkeeping-only write
    stop_reason: str | None
    newest_clip_at: str | None = None  # the newest clip creation time the job has seen so far
    crawled: bool = True  # False: the job closes without crawling, so the streamer's watermark stays
    tier: int = 0  # the streamer's schedule once the job is done
    next_crawl_at: str | None = None
    views: ViewCountRefresh = EXACT_VIEW_COUNTS
    clip_writes: ClipWrites = ClipWrites.CHANGED_ONLY
    window_clips: int = 0  # distinct clips read in the window to page next
    window_span: int | None = None  # seconds: the span planned for next windows (the streamer's, at the end)
    walk_state: str | None = None  # JSON: a backfill walk's splits and density (consumer/split_trail.py)
    # The job's clips_new and clips_updated before this write, as its claim or its last write returned them:
    # the run's counters add the job's change, instead of counting the page over again.
    counted: tuple[int, int] = field(kw_only=True)


# --- the producer ------------------------------------------------------------------------------


def open_run(
    slot: str | None,
    kind: str,
    now: str,
    backfill_from: str | None = None,
    backfill_to: str | None = None,
    only_streamers: Sequence[str] | None = None,
) -> Batch:
    """Open a run for a cron slot (at most once per slot) or for a manual kick (always).

    Names: `inserted` (the new run, if this call opened it) and `existing` (the slot's run, either way).
    """
    only = json.dumps(list(only_streamers)) if only_streamers is not None else None
    return (
        Batch()
        .add(
            Statement(
                "INSERT INTO runs (slot, kind, status, created_at, backfill_from, backfill_to, "
                "only_streamers) "
                "VALUES (?1, ?2, 'enqueuing', ?3, ?4, ?5, ?6) ON CONFLICT (slot) DO NOTHING RETURNING id, "
                "status",
                (slot, kind, now, backfill_from, backfill_to, only),
            ),
            "inserted",
        )
        .add(Statement("SELECT id, status FROM runs WHERE slot = ?1", (slot,)), "existing")
    )


# Slice statements bind ?1 the run id, ?2 the cursor (`after`), ?3 the slice size, then their own values.
# Membership of a slice: active, past the cursor, and in the run's list when it has one.
_SLICE_MEMBER = (
    "s.active = 1 AND s.id > ?2 AND (r.only_streamers IS NULL OR s.id IN "
    "(SELECT value FROM json_each(r.only_streamers)))"
)
# The last streamer id of the slice: the next `size` members in id order.
_SLICE_LAST = (
    f"(SELECT max(id) FROM (SELECT s.id FROM streamers AS s, runs AS r WHERE r.id = ?1 AND "
    f"{_SLICE_MEMBER} ORDER BY s.id LIMIT ?3))"
)


def slice_members(run_id: int, after: str, size: int, now: str) -> Statement:
    """The slice's streamers, and whether each is due: a scheduled run crawls only the due ones."""
    return Statement(
        "SELECT s.id, (r.kind = 'manual' OR s.next_crawl_at IS NULL OR s.next_crawl_at <= ?4) AS due, r.kind "
        f"FROM streamers AS s, runs AS r WHERE r.id = ?1 AND {_SLICE_MEMBER} AND s.id <= {_SLICE_LAST} "
        "ORDER BY s.id",
        (run_id, after, size, now),
    )


def fan_out_slice(run_id: int, after: str, size: int, now: str, live: Sequence[str] = ()) -> Batch:
    """Create the jobs of one slice's due (or live) streamers, read them back, and move the run's cursor.

    Only the invocation whose cursor matches `after` creates jobs and moves the cursor, so a duplicate
    delivery of a slice changes nothing (`moved` then reports 0 changes). Names: `created`, `queued` (the
    slice's queued jobs), `bounds` (`last` streamer of the slice, and whether there are `more`), `moved`.
    """
    slice_ = (run_id, after, size)
    owns = "EXISTS (SELECT 1 FROM runs WHERE id = ?1 AND status = 'enqueuing' AND fanout_cursor = ?2)"
    end = f"coalesce({_SLICE_LAST}, ?2)"
    due = (
        "(r.kind = 'manual' OR s.next_crawl_at IS NULL OR s.next_crawl_at <= ?4 "
        "OR s.id IN (SELECT value FROM json_each(?5)))"
    )
    live_json = json.dumps(list(live))
    return (
        Batch()
        .add(
            Statement(
                "INSERT INTO jobs (run_id, streamer_id, status, due_at, created_at, crawl_from, crawl_to) "
                "SELECT r.id, s.id, 'queued', ?4, ?4, r.backfill_from, r.backfill_to FROM streamers AS s, "
                "runs AS r "
                f"WHERE r.id = ?1 AND {_SLICE_MEMBER} AND s.id <= {_SLICE_LAST} AND {owns} AND {due} "
                "AND NOT EXISTS (SELECT 1 FROM jobs AS a WHERE a.streamer_id = s.id AND a.status IN "
                "('queued', 'running')) "
                "ON CONFLICT DO NOTHING",
                (*slice_, now, live_json),
            ),
            "created",
        )
        .add(
            Statement(
                "SELECT id, streamer_id FROM jobs WHERE run_id = ?1 AND status = 'queued' AND streamer_id > "
                "?2 "
                f"AND streamer_id <= {end} ORDER BY streamer_id",
                slice_,
            ),
            "queued",
        )
        .add(
            Statement(
                f"SELECT {end} AS last, EXISTS (SELECT 1 FROM streamers AS s, runs AS r WHERE r.id = ?1 AND "
                f"s.active = 1 AND s.id > {end} AND (r.only_streamers IS NULL OR s.id IN "
                "(SELECT value FROM json_each(r.only_streamers)))) AS more",
                slice_,
            ),
            "bounds",
        )
        .add(
            Statement(
                "UPDATE runs SET jobs_total = jobs_total + (SELECT count(*) FROM jobs WHERE run_id = ?1 "
                f"AND streamer_id > ?2 AND streamer_id <= {end}), fanout_cursor = {end} "
                "WHERE id = ?1 AND status = 'enqueuing' AND fanout_cursor = ?2",
                slice_,
            ),
            "moved",
        )
    )


def run_progress(run_id: int) -> Statement:
    return Statement("SELECT jobs_total, created_at FROM runs WHERE id = ?1", (run_id,))


def record_live(streamer_ids: Sequence[str], now: str) -> Statement:
    """Streamers seen live: hourly from now on, until their activity fades again."""
    return Statement(
        "UPDATE streamers SET last_live_at = ?1, tier = 0 WHERE id IN (SELECT value FROM json_each(?2))",
        (now, json.dumps(list(streamer_ids))),
    )


def stuck_fan_outs(before: str) -> Statement:
    """Runs still fanning out long after they opened: a slice message was lost or its consumer died."""
    return Statement(
        "SELECT id, fanout_cursor FROM runs WHERE status = 'enqueuing' AND created_at < ?1 "
        "ORDER BY created_at LIMIT 10",
        (before,),
    )


def stale_jobs(before: str, limit: int) -> Statement:
    """Unfinished jobs whose message should have been handled by `before`: lost, or consumer died."""
    # The statuses are literals, not parameters: only then can SQLite use the partial index of unfinished
    # jobs.
    return Statement(
        "SELECT id, run_id, streamer_id FROM jobs WHERE status IN ('queued', 'running') AND due_at < ?1 "
        "ORDER BY due_at LIMIT ?2",
        (before, limit),
    )


def postpone_jobs(job_ids: Sequence[int], due_at: str) -> Statement:
    """Give re-sent jobs time to be picked up before the next sweep."""
    return Statement(
        "UPDATE jobs SET due_at = ?1 WHERE id IN (SELECT value FROM json_each(?2)) AND status IN ('queued', "
        "'running')",
        (due_at, json.dumps(list(job_ids))),
    )


def mark_enqueued(run_id: int, now: str, calls: Calls) -> Batch:
    """The run's jobs are all queued: it is running, or already `finished_run` when it had none."""
    return (
        Batch()
        .add(
            Statement(
                "UPDATE runs SET status = 'running', enqueued_at = ?1, d1_calls = d1_calls + ?2, "
                "queue_sends = queue_sends + ?3, helix_calls = helix_calls + ?4 "
                "WHERE id = ?5 AND status = 'enqueuing'",
                (now, calls.d1, calls.queue, calls.helix, run_id),
            ),
            "enqueued",
        )
        .add(finish_run_if_complete(run_id, now), "finished_run")
    )


def finish_run_if_complete(run_id: int, now: str) -> Statement:
    """Mark the run finished once no job is unfinished; RETURNING tells whoever did it."""
    return Statement(
        "UPDATE runs SET status = ?3, finished_at = ?1 WHERE id = ?2 AND status = ?4 "
        "AND NOT EXISTS (SELECT 1 FROM jobs WHERE run_id = ?2 AND status IN (?5, ?6)) "
        "RETURNING *",
        (now, run_id, RunStatus.FINISHED, RunStatus.RUNNING, *UNFINISHED_JOBS),
    )


# --- the consumer ------------------------------------------------------------------------------


def claim_job(
    job_id: int, run_id: int, streamer_id: str, token: str, now: str, lease_until: str, client_id: str
) -> Batch:
    """Claim a queued job, or one whose lease ran out; read what the crawl needs in the same trip.

    Names: `claimed` (the job's row if this claim won), `state` (the job as it is), `streamer`, `token`,
    `run` (its size: the upkeep leaves a paced run's Twitch points to its crawls).
    """
    return (
        Batch()
        .add(
            Statement(
                "UPDATE jobs SET status = 'running', lease_token = ?4, lease_expires_at = ?6, due_at = ?6, "
                # `status` here is the value before this update: 'running' means a takeover.
                "attempts = attempts + 1, invocations = invocations + 1, "
                "reclaims = reclaims + (status = 'running'), started_at = coalesce(started_at, ?5) "
                # A running job without a lease has no holder to wait for.
                f"WHERE {_named_job(1, 2, 3)} AND (status = 'queued' OR (status = 'running' AND "
                "(lease_expires_at IS NULL OR lease_expires_at < ?5))) RETURNING *",
                (job_id, run_id, streamer_id, token, now, lease_until),
            ),
            "claimed",
        )
        .add(
            # Read by id alone, so a refused claim can tell a job that is busy from one the message misnames.
            Statement(
                "SELECT status, lease_expires_at, run_id, streamer_id FROM jobs WHERE id = ?1", (job_id,)
            ),
            "state",
        )
        .add(Statement("SELECT * FROM streamers WHERE id = ?1", (streamer_id,)), "streamer")
        .add(read_token(client_id), "token")
        .add(Statement("SELECT jobs_total, backfill_from FROM runs WHERE id = ?1", (run_id,)), "run")
    )


def write_page(w: PageWrite) -> Batch:
    """Upsert a page and advance the job, the run counters (and, at the end, the streamer) together.

    Every statement is fenced on the lease token: a consumer that lost its lease changes nothing (`job`
    then reports 0 changes). Names: `job`, `run`, `clips` and `unmarked` (with a page: its clips that were
    marked deleted), `streamer` (at the end of a crawl), `finished_run` (at the end: the run's row when this
    write finished it).
    """
    page = json.dumps(w.clips, ensure_ascii=False)
    ids = json.dumps([c["id"] for c in w.clips])
    finished = w.window_start is None
    status = JobStatus.DONE if finished else JobStatus.RUNNING
    c = w.calls
    step, stale = w.views.params
    # The values the job and run updates share: their fence and the page's counts.
    fence = dict(
        job=w.job_id,
        run=w.run_id,
        streamer=w.streamer_id,
        token=w.lease_token,
        pages=w.pages,
        seen=len(w.clips),
        skipped=w.skipped,
        helix=c.helix,
        d1=c.d1,
        queue=c.queue,
    )
    j = _Numbered(
        **fence,
        page=page,
        ids=ids,
        step=step,
        stale=stale,
        status=status,
        running=JobStatus.RUNNING,
        crawl_from=w.crawl_from,
        crawl_to=w.crawl_to,
        window_start=w.window_start,
        window_end=w.window_end,
        cursor=w.cursor,
        cursor_at=w.cursor_at,
        window_pages=w.window_pages,
        window_clips=w.window_clips,
        window_span=w.window_span,
        walk_state=w.walk_state,
        subrequests=c.helix + c.d1 + c.queue,
        max_subrequests=c.invocation_total,
        stop_reason=w.stop_reason,
        newest_clip_at=w.newest_clip_at,
        now=w.now,
        finished=int(finished),
    )
    r = _Numbered(**fence, finished=int(finished), new_before=w.counted[0], updated_before=w.counted[1])
    batch = (
        Batch()
        .add(
            Statement(
                "UPDATE jobs SET "
                f"clips_new = clips_new + {_count_new(j.number('ids'))}, "
                "clips_updated = clips_updated + "
                f"{_count_changed(j.number('page'), j.number('step'), j.number('stale'))}, "
                f"status = {j['status']}, crawl_from = {j['crawl_from']}, crawl_to = {j['crawl_to']}, "
                f"window_start = {j['window_start']}, window_end = {j['window_end']}, cursor = "
                f"{j['cursor']}, "
                f"cursor_at = {j['cursor_at']}, window_pages = {j['window_pages']}, window_clips = "
                f"{j['window_clips']}, "
                f"window_span = {j['window_span']}, walk_state = {j['walk_state']}, "
                f"pages = pages + {j['pages']}, clips_seen = clips_seen + "
                f"{j['seen']}, "
                f"clips_skipped = clips_skipped + {j['skipped']}, helix_calls = helix_calls + {j['helix']}, "
                f"d1_calls = d1_calls + {j['d1']}, queue_sends = queue_sends + {j['queue']}, "
                f"subrequests = subrequests + {j['subrequests']}, "
                f"max_subrequests = max(max_subrequests, {j['max_subrequests']}), "
                f"stop_reason = coalesce({j['stop_reason']}, stop_reason), error = NULL, "
                f"newest_clip_at = {j['newest_clip_at']}, "
                f"finished_at = CASE WHEN {j['finished']} THEN {j['now']} ELSE finished_at END "
                f"WHERE {_named_job(j.number('job'), j.number('run'), j.number('streamer'))} "
                f"AND lease_token = {j['token']} AND status = {j['running']} "
                "RETURNING clips_new, clips_updated",
                j.params,
            ),
            "job",
        )
        .add(
            Statement(
                "UPDATE runs SET "
                # What the job's update (the statement before) added to its counters, added here too.
                f"clips_new = clips_new + (SELECT clips_new FROM jobs WHERE id = {r['job']}) - "
                f"{r['new_before']}, "
                f"clips_updated = clips_updated + (SELECT clips_updated FROM jobs WHERE id = {r['job']}) - "
                f"{r['updated_before']}, "
                f"pages = pages + {r['pages']}, clips_seen = clips_seen + {r['seen']}, "
                f"clips_skipped = clips_skipped + {r['skipped']}, helix_calls = helix_calls + {r['helix']}, "
                f"d1_calls = d1_calls + {r['d1']}, queue_sends = queue_sends + {r['queue']}, "
                f"jobs_done = jobs_done + {r['finished']} "
                f"WHERE id = {r['run']} AND "
                f"{_run_holds_lease(r.number('job'), r.number('streamer'), r.number('token'))}",
                r.params,
            ),
            "run",
        )
    )
    if w.clips:
        batch.add(
            w.clip_writes.statement(
                now=w.now,
                page=page,
                job_id=w.job_id,
                run_id=w.run_id,
                streamer_id=w.streamer_id,
                lease_token=w.lease_token,
                views=w.views,
            ),
            "clips",
        )
        batch.add(
            Statement(_MOVE_GAME, (page, w.job_id, w.run_id, w.streamer_id, w.lease_token)), "game_moves"
        )
        created = [c["created_at"] for c in w.clips]
        batch.add(
            Statement(
                _UNMARK_BACK,
                (w.now, ids, w.streamer_id, min(created), max(created), w.job_id, w.run_id, w.lease_token),
            ),
            "unmarked",
        )
    if finished and w.crawled:
        batch.add(
            Statement(
                # max(): a backfill of an old window must not move the watermark back.
                "UPDATE streamers SET crawled_through = max(coalesce(crawled_through, ''), ?5), "
                "last_success_at = ?6, failure_streak = 0, last_error = NULL, "
                "last_clip_at = nullif(max(coalesce(last_clip_at, ''), coalesce(?7, '')), ''), tier = ?8, "
                "next_crawl_at = ?9, window_span = coalesce(?10, window_span) "
                f"WHERE id = ?3 AND {_named_lease(1, 2, 3, 4)}",
                (
                    w.job_id,
                    w.run_id,
                    w.streamer_id,
                    w.lease_token,
                    w.crawl_to,
                    w.now,
                    w.newest_clip_at,
                    w.tier,
                    w.next_crawl_at,
                    w.window_span,
                ),
            ),
            "streamer",
        )
    if finished:
        batch.add(finish_run_if_complete(w.run_id, w.now), "finished_run")
    return batch


def release_job(
    job_id: int,
    run_id: int,
    streamer_id: str,
    lease_token: str,
    now: str,
    due_at: str,
    calls: Calls,
    stop_reason: str,
    error: str | None,
) -> Batch:
    """Hand a running job back to the queue (a continuation or a retry follows), keeping its progress.

    Names: `job` and `run` (0 changes each when the lease was lost).
    """
    fence = (job_id, run_id, streamer_id, lease_token, calls.helix, calls.d1, calls.queue)
    return (
        Batch()
        .add(
            Statement(
                # The token stays so the run update below can tell this write applied; a claim replaces it.
                "UPDATE jobs SET status = 'queued', lease_expires_at = NULL, due_at = ?8, "
                "helix_calls = helix_calls + ?5, d1_calls = d1_calls + ?6, queue_sends = queue_sends + ?7, "
                "subrequests = subrequests + ?9, max_subrequests = max(max_subrequests, ?10), "
                f"stop_reason = ?11, error = ?12 WHERE {_named_job(1, 2, 3)} AND lease_token = ?4 "
                "AND status = 'running'",
                (
                    *fence,
                    due_at,
                    calls.helix + calls.d1 + calls.queue,
                    calls.invocation_total,
                    stop_reason,
                    error_text(error) if error is not None else None,
                ),
            ),
            "job",
        )
        .add(
            Statement(
                "UPDATE runs SET helix_calls = helix_calls + ?5, d1_calls = d1_calls + ?6, "
                f"queue_sends = queue_sends + ?7 WHERE id = ?2 AND {_run_holds_lease(1, 3, 4)}",
                fence,
            ),
            "run",
        )
    )


def fail_job(
    job_id: int,
    run_id: int,
    streamer_id: str,
    fail_token: str,
    now: str,
    calls: Calls,
    stop_reason: str,
    error: str,
) -> Batch:
    """Record a job as failed for good (once, whoever holds it) and close the run if it was the last.

    Only the job the message names, by id, run and streamer: a message naming a job of another run
    changes nothing (the caller records it as a dead letter). Names: `job`, `run`, `streamer`, and
    `finished_run` (the run's row when this failure closed it).
    """
    error = error_text(error)
    fence = (job_id, run_id, streamer_id, fail_token)
    counts = (calls.helix, calls.d1, calls.queue)
    return (
        Batch()
        .add(
            Statement(
                "UPDATE jobs SET status = 'failed', lease_token = ?4, lease_expires_at = NULL, finished_at = "
                "?5, "
                "helix_calls = helix_calls + ?6, d1_calls = d1_calls + ?7, queue_sends = queue_sends + ?8, "
                "subrequests = subrequests + ?9, max_subrequests = max(max_subrequests, ?10), "
                f"stop_reason = ?11, error = ?12 WHERE {_named_job(1, 2, 3)} AND status IN ('queued', "
                "'running')",
                (*fence, now, *counts, sum(counts), calls.invocation_total, stop_reason, error),
            ),
            "job",
        )
        .add(
            Statement(
                "UPDATE runs SET jobs_failed = jobs_failed + 1, helix_calls = helix_calls + ?5, "
                "d1_calls = d1_calls + ?6, queue_sends = queue_sends + ?7 WHERE id = ?2 AND "
                f"{_run_holds_lease(1, 3, 4)}",
                (*fence, *counts),
            ),
            "run",
        )
        .add(
            Statement(
                "UPDATE streamers SET failure_streak = failure_streak + 1, last_failure_at = ?5, last_error "
                "= ?6 "
                f"WHERE id = ?3 AND {_named_lease(1, 2, 3, 4)}",
                (*fence, now, error),
            ),
            "streamer",
        )
        .add(finish_run_if_complete(run_id, now), "finished_run")
    )


def record_dead_letter(
    source: str, job_id: int | None, body: str, reason: str, now: str, fail_token: str | None = None
) -> Statement:
    """Record an unprocessable message; with `fail_token`, only if that failure of the job applied.

    A stray copy of a message whose job another copy already finished records nothing, and neither does
    the redelivery of a dead letter that was recorded once. Body and reason are cut, made UTF-8-safe and
    scrubbed of secrets here, so recording can never fail on what the message held.
    """
    values = _dead_letter_values(source, job_id, body, reason, now)
    if fail_token is None:
        return Statement(
            "INSERT INTO dead_letters (received_at, source, job_id, body, reason) "
            "VALUES (?1, ?2, ?3, ?4, ?5)",
            values,
        )
    return Statement(
        "INSERT INTO dead_letters (received_at, source, job_id, body, reason) "
        "SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM jobs WHERE id = ?3 AND lease_token = ?6)",
        (*values, fail_token),
    )


def record_dead_letter_unless_named_job(
    source: str, job_id: int, run_id: int, streamer_id: str, body: str, reason: str, now: str
) -> Statement:
    """Record a message as a dead letter when no job matches its job id, run and streamer together."""
    values = _dead_letter_values(source, job_id, body, reason, now)
    return Statement(
        "INSERT INTO dead_letters (received_at, source, job_id, body, reason) "
        f"SELECT ?1, ?2, ?3, ?4, ?5 WHERE NOT EXISTS (SELECT 1 FROM jobs WHERE {_named_job(3, 6, 7)})",
        (*values, run_id, streamer_id),
    )


def _dead_letter_values(
    source: str, job_id: int | None, body: str, reason: str, now: str
) -> tuple[str, str, int | None, str, str]:
    # Scrubbed before it is cut, so a secret across the cut is still masked whole.
    return (now, source, job_id, scrub(storable_text(body))[:DEAD_LETTER_BODY_LIMIT], error_text(reason))


def error_text(error: str) -> str:
    """An error as D1 stores it (jobs.error, streamers.last_error, dead letters): scrubbed, storable, cut."""
    return scrub(storable_text(error))[:ERROR_LIMIT]


def store_token(client_id: str, access_token: str, expires_at: str, now: str) -> Statement:
    return Statement(
        "INSERT INTO app_tokens (client_id, access_token, expires_at, minted_at) VALUES (?1, ?2, ?3, ?4) "
        "ON CONFLICT (client_id) DO UPDATE SET access_token = excluded.access_token, "
        "expires_at = excluded.expires_at, minted_at = excluded.minted_at, minting_until = NULL, "
        "refused_run_id = NULL, refused_error = NULL",
        (client_id, access_token, expires_at, now),
    )


def read_token(client_id: str) -> Statement:
    return Statement(
        "SELECT access_token, expires_at, ratelimit_limit, ratelimit_remaining, ratelimit_reset, "
        "refused_run_id, refused_error FROM app_tokens WHERE client_id = ?1",
        (client_id,),
    )


def refuse_token(client_id: str, run_id: int, error: str, now: str) -> Statement:
    """Twitch refused the client credentials in `run_id`: its other jobs fail with `error`, asking no more."""
    return Statement(
        "INSERT INTO app_tokens "
        "(client_id, access_token, expires_at, minted_at, refused_run_id, refused_error) "
        "VALUES (?1, '', '1970-01-01T00:00:00Z', ?2, ?3, ?4) "
        "ON CONFLICT (client_id) DO UPDATE SET minting_until = NULL, "
        "refused_run_id = excluded.refused_run_id, refused_error = excluded.refused_error",
        (client_id, now, run_id, error_text(error)),
    )


def refusal(row: Row | None, run_id: int) -> str | None:
    """The refusal of the client credentials recorded for `run_id` in an `app_tokens` row, if any."""
    if row is None or row.get("refused_run_id") != run_id:
        return None
    return str(row.get("refused_error") or "Twitch refused the client credentials")


def store_rate_limit(client_id: str, limit: int, remaining: int, reset_at: int) -> Statement:
    """Share a low rate-limit reading; a newer window's reading replaces an older one."""
    return Statement(
        "UPDATE app_tokens SET ratelimit_limit = ?1, ratelimit_remaining = ?2, ratelimit_reset = ?3 "
        "WHERE client_id = ?4 AND (ratelimit_reset IS NULL OR ratelimit_reset < ?3 "
        "OR (ratelimit_reset = ?3 AND ratelimit_remaining > ?2))",
        (limit, remaining, reset_at, client_id),
    )


# --- streamers ---------------------------------------------------------------------------------


def upsert_streamers(users: Sequence[dict[str, Any]], now: str) -> Statement:
    """Add (or re-activate and rename) streamers from Get Users results, in one statement."""
    rows = [
        {"id": u["id"], "login": str(u.get("login", "")), "display_name": str(u.get("display_name", ""))}
        for u in users
    ]
    return Statement(
        "INSERT INTO streamers (id, login, display_name, active, added_at) "
        "SELECT json_extract(value, '$.id'), json_extract(value, '$.login'), "
        "json_extract(value, '$.display_name'), 1, ?1 FROM json_each(?2) WHERE true "
        "ON CONFLICT (id) DO UPDATE SET login = excluded.login, display_name = excluded.display_name, active "
        "= 1",
        (now, json.dumps(rows, ensure_ascii=False)),
    )


def claim_token_mint(client_id: str, stale_token: str, now: str, until: str, run_id: int) -> Batch:
    """Claim the next mint if the stored token is still `stale_token` and nobody holds the claim; re-read it.

    One round trip, on the rare path only (after a 401 or near expiry): the first statement returns a row
    only to the consumer that won the claim (`claimed`), the second the token as stored now (`token`:
    another consumer's, maybe). Nobody wins it in a run whose credentials Twitch refused.
    """
    return (
        Batch()
        .add(
            Statement(
                "INSERT INTO app_tokens (client_id, access_token, expires_at, minted_at, minting_until) "
                "VALUES (?1, '', '1970-01-01T00:00:00Z', ?2, ?3) "
                "ON CONFLICT (client_id) DO UPDATE SET minting_until = excluded.minting_until "
                "WHERE app_tokens.access_token = ?4 "
                "AND (app_tokens.minting_until IS NULL OR app_tokens.minting_until < ?2) "
                "AND app_tokens.refused_run_id IS NOT ?5 "
                "RETURNING minting_until",
                (client_id, now, until, stale_token, run_id),
            ),
            "claimed",
        )
        .add(read_token(client_id), "token")
    )
