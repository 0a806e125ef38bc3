"""Every SQL statement the crawler runs, as parameterised Statements for `Database.batch`."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from shared.clips import COLUMNS
from shared.messages import storable_text
from shared.ports import Statement
from shared.redaction import scrub

ACTIVE = ("queued", "running")
DEAD_LETTER_BODY_LIMIT = 4_000
ERROR_LIMIT = 1_000

# Twitch never changes these; leaving the indexed ones out of the update spares D1 two index writes per row.
_IMMUTABLE = ("id", "broadcaster_id", "created_at")
_MUTABLE = [c for c in COLUMNS if c not in _IMMUTABLE]
_JSON_ID = "json_extract(j.value, '$.id')"
_HOLDS_LEASE = "EXISTS (SELECT 1 FROM jobs WHERE id = ? AND lease_token = ?)"
# The lease on the job a message names, by id, run and streamer (params: those three, then the token).
_NAMED_LEASE = "EXISTS (SELECT 1 FROM jobs WHERE id = ? AND run_id = ? AND streamer_id = ? AND lease_token = ?)"
# The same for an update of `runs`, whose row is the run (params: job id, streamer, token).
_RUN_HOLDS_LEASE = ("EXISTS (SELECT 1 FROM jobs WHERE id = ? AND run_id = runs.id AND streamer_id = ? "
                    "AND lease_token = ?)")
# A message acts only on the job it names: id, run and streamer together (params: those three).
_NAMED_JOB = "id = ? AND run_id = ? AND streamer_id = ?"


def _outdated(old: str, new: Callable[[str], str]) -> str:
    """SQL that is true when the stored clip `old` must be rewritten with the page's copy of it.

    Any field that differs, except the view count, which moves on almost every crawl of a young clip:
    it is rewritten when it moved by at least a share of itself (bound first, `view_count_step`) or when
    the stored one is old (bound second: rows last written at or before it). Two parameters.
    """
    fields = " OR ".join(f"{old}.{c} IS NOT {new(c)}" for c in _MUTABLE if c != "view_count")
    views = (f"({old}.view_count IS NOT {new('view_count')} AND "
             f"(abs({new('view_count')} - {old}.view_count) >= max(1, {old}.view_count * ?) "
             f"OR {old}.last_seen_at <= ?))")
    return f"{fields} OR {views}"


_COUNT_NEW = (f"(SELECT count(*) FROM json_each(?) AS j "
              f"WHERE NOT EXISTS (SELECT 1 FROM clips AS c WHERE c.id = {_JSON_ID}))")
# Three parameters: the page, then the two of _outdated.
_COUNT_CHANGED = (f"(SELECT count(*) FROM json_each(?) AS j JOIN clips AS c ON c.id = {_JSON_ID} "
                  f"WHERE {_outdated('c', lambda col: f'json_extract(j.value, {chr(39)}$.{col}{chr(39)})')})")

# One statement for a whole page: json_each() keeps it to a handful of bound parameters
# (D1 allows 100), and `WHERE` before `ON CONFLICT` is what lets SQLite parse INSERT ... SELECT.
# Parameters: first_seen_at, last_seen_at, the page, job id, run id, streamer id, lease token, then the two
# of _outdated.
_UPSERT_CLIPS = (
    # view_digits is set here so that schema.sql's insert trigger does not rewrite each new clip; the update
    # leaves it to the other trigger, which rewrites it only when the count gains a digit.
    f"INSERT INTO clips ({', '.join(COLUMNS)}, first_seen_at, last_seen_at, view_digits) "
    f"SELECT {', '.join(f'json_extract(value, {chr(39)}$.{c}{chr(39)})' for c in COLUMNS)}, ?, ?, "
    f"length(json_extract(value, '$.view_count')) "
    f"FROM json_each(?) WHERE {_NAMED_LEASE} "
    f"ON CONFLICT (id) DO UPDATE SET "
    f"{', '.join(f'{c} = excluded.{c}' for c in _MUTABLE)}, last_seen_at = excluded.last_seen_at "
    f"WHERE {_outdated('clips', lambda col: f'excluded.{col}')}"
)


@dataclass(frozen=True)
class ViewCountRefresh:
    """When a stored view count is rewritten although nothing else about the clip changed."""

    step: float  # it moved by at least this share of itself (and by at least one view)...
    stale_before: str  # ...or it was stored at or before this instant

    @property
    def params(self) -> tuple[float, str]:
        return (self.step, self.stale_before)


EXACT_VIEW_COUNTS = ViewCountRefresh(0.0, "9999-12-31T23:59:59Z")


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
    window_clips: int = 0  # distinct clips read in the window to page next
    window_span: int | None = None  # seconds: the span planned for next windows (the streamer's, at the end)


# --- the producer ------------------------------------------------------------------------------

def open_run(slot: str | None, kind: str, now: str, backfill_from: str | None = None,
             backfill_to: str | None = None, only_streamers: Sequence[str] | None = None) -> list[Statement]:
    """Open a run for a cron slot (at most once per slot) or for a manual kick (always)."""
    only = json.dumps(list(only_streamers)) if only_streamers is not None else None
    return [
        Statement("INSERT INTO runs (slot, kind, status, created_at, backfill_from, backfill_to, only_streamers) "
                  "VALUES (?, ?, 'enqueuing', ?, ?, ?, ?) ON CONFLICT (slot) DO NOTHING RETURNING id, status",
                  (slot, kind, now, backfill_from, backfill_to, only)),
        Statement("SELECT id, status FROM runs WHERE slot = ?", (slot,)),
    ]


# Membership of a slice: active, past the cursor, and in the run's list when it has one.
_SLICE_MEMBER = ("s.active = 1 AND s.id > ? AND (r.only_streamers IS NULL OR s.id IN "
                 "(SELECT value FROM json_each(r.only_streamers)))")
# The last streamer id of the slice: the next `size` members in id order. Params: run id, after, size.
_SLICE_LAST = (f"(SELECT max(id) FROM (SELECT s.id FROM streamers AS s, runs AS r WHERE r.id = ? AND "
               f"{_SLICE_MEMBER} ORDER BY s.id LIMIT ?))")


def slice_members(run_id: int, after: str, size: int, now: str) -> Statement:
    """The slice's streamers, and whether each is due: a scheduled run crawls only the due ones."""
    return Statement(
        "SELECT s.id, (r.kind = 'manual' OR s.next_crawl_at IS NULL OR s.next_crawl_at <= ?) AS due, r.kind "
        f"FROM streamers AS s, runs AS r WHERE r.id = ? AND {_SLICE_MEMBER} AND s.id <= {_SLICE_LAST} ORDER BY s.id",
        (now, run_id, after, run_id, after, size))


def fan_out_slice(run_id: int, after: str, size: int, now: str, live: Sequence[str] = ()) -> list[Statement]:
    """Create the jobs of one slice's due (or live) streamers, read them back, and move the run's cursor.

    Only the invocation whose cursor matches `after` creates jobs and moves the cursor, so a duplicate
    delivery of a slice changes nothing (its last statement then reports 0 changes).
    """
    last = (run_id, after, size)
    owns = "EXISTS (SELECT 1 FROM runs WHERE id = ? AND status = 'enqueuing' AND fanout_cursor = ?)"
    end = f"coalesce({_SLICE_LAST}, ?)"
    due = ("(r.kind = 'manual' OR s.next_crawl_at IS NULL OR s.next_crawl_at <= ? "
           "OR s.id IN (SELECT value FROM json_each(?)))")
    live_json = json.dumps(list(live))
    return [
        Statement(
            "INSERT INTO jobs (run_id, streamer_id, status, due_at, created_at, crawl_from, crawl_to) "
            "SELECT r.id, s.id, 'queued', ?, ?, r.backfill_from, r.backfill_to FROM streamers AS s, runs AS r "
            f"WHERE r.id = ? AND {_SLICE_MEMBER} AND s.id <= {_SLICE_LAST} AND {owns} AND {due} "
            "AND NOT EXISTS (SELECT 1 FROM jobs AS a WHERE a.streamer_id = s.id AND a.status IN ('queued', 'running')) "
            "ON CONFLICT DO NOTHING",
            (now, now, run_id, after, *last, run_id, after, now, live_json)),
        Statement(
            "SELECT id, streamer_id FROM jobs WHERE run_id = ? AND status = 'queued' AND streamer_id > ? "
            f"AND streamer_id <= {end} ORDER BY streamer_id",
            (run_id, after, *last, after)),
        Statement(
            f"SELECT {end} AS last, EXISTS (SELECT 1 FROM streamers AS s, runs AS r WHERE r.id = ? AND "
            f"s.active = 1 AND s.id > {end} AND (r.only_streamers IS NULL OR s.id IN "
            "(SELECT value FROM json_each(r.only_streamers)))) AS more",
            (*last, after, run_id, *last, after)),
        Statement(
            "UPDATE runs SET jobs_total = jobs_total + (SELECT count(*) FROM jobs WHERE run_id = ? "
            f"AND streamer_id > ? AND streamer_id <= {end}), fanout_cursor = {end} "
            "WHERE id = ? AND status = 'enqueuing' AND fanout_cursor = ?",
            (run_id, after, *last, after, *last, after, run_id, after)),
    ]


def run_progress(run_id: int) -> Statement:
    return Statement("SELECT jobs_total, created_at FROM runs WHERE id = ?", (run_id,))


def record_live(streamer_ids: Sequence[str], now: str) -> Statement:
    """Streamers seen live: hourly from now on, until their activity fades again."""
    return Statement("UPDATE streamers SET last_live_at = ?, tier = 0 WHERE id IN (SELECT value FROM json_each(?))",
                     (now, json.dumps(list(streamer_ids))))


def stuck_fan_outs(before: str) -> Statement:
    """Runs still fanning out long after they opened: a slice message was lost or its consumer died."""
    return Statement("SELECT id, fanout_cursor FROM runs WHERE status = 'enqueuing' AND created_at < ? "
                     "ORDER BY created_at LIMIT 10", (before,))


def stale_jobs(before: str, limit: int) -> Statement:
    """Unfinished jobs whose message should have been handled by `before`: lost, or consumer died."""
    return Statement(
        "SELECT id, run_id, streamer_id FROM jobs WHERE status IN ('queued', 'running') AND due_at < ? "
        "ORDER BY due_at LIMIT ?", (before, limit))


def postpone_jobs(job_ids: Sequence[int], due_at: str) -> Statement:
    """Give re-sent jobs time to be picked up before the next sweep."""
    return Statement(
        "UPDATE jobs SET due_at = ? WHERE id IN (SELECT value FROM json_each(?)) AND status IN ('queued', 'running')",
        (due_at, json.dumps(list(job_ids))))


def mark_enqueued(run_id: int, now: str, calls: Calls) -> list[Statement]:
    return [
        Statement("UPDATE runs SET status = 'running', enqueued_at = ?, d1_calls = d1_calls + ?, "
                  "queue_sends = queue_sends + ?, helix_calls = helix_calls + ? "
                  "WHERE id = ? AND status = 'enqueuing'",
                  (now, calls.d1, calls.queue, calls.helix, run_id)),
        finish_run_if_complete(run_id, now),
    ]


def finish_run_if_complete(run_id: int, now: str) -> Statement:
    """Mark the run finished once no job is unfinished; RETURNING tells whoever did it."""
    return Statement(
        "UPDATE runs SET status = 'finished', finished_at = ? WHERE id = ? AND status = 'running' "
        "AND NOT EXISTS (SELECT 1 FROM jobs WHERE run_id = ? AND status IN ('queued', 'running')) "
        "RETURNING *", (now, run_id, run_id))


# --- the consumer ------------------------------------------------------------------------------

def claim_job(job_id: int, run_id: int, streamer_id: str, token: str, now: str, lease_until: str,
              client_id: str) -> list[Statement]:
    """Claim a queued job, or one whose lease ran out; read what the crawl needs in the same trip."""
    return [
        Statement(
            "UPDATE jobs SET status = 'running', lease_token = ?, lease_expires_at = ?, due_at = ?, "
            # `status` here is the value before this update: 'running' means a takeover.
            "attempts = attempts + 1, invocations = invocations + 1, "
            "reclaims = reclaims + (status = 'running'), started_at = coalesce(started_at, ?) "
            # A running job without a lease has no holder to wait for.
            f"WHERE {_NAMED_JOB} AND (status = 'queued' OR (status = 'running' AND "
            "(lease_expires_at IS NULL OR lease_expires_at < ?))) RETURNING *",
            (token, lease_until, lease_until, now, job_id, run_id, streamer_id, now)),
        # Read by id alone, so a refused claim can tell a job that is busy from one the message misnames.
        Statement("SELECT status, lease_expires_at, run_id, streamer_id FROM jobs WHERE id = ?", (job_id,)),
        Statement("SELECT * FROM streamers WHERE id = ?", (streamer_id,)),
        read_token(client_id),
    ]


def write_page(w: PageWrite) -> list[Statement]:
    """Upsert a page and advance the job, the run counters (and, at the end, the streamer) together.

    Every statement is fenced on the lease token: a consumer that lost its lease changes nothing.
    """
    page = json.dumps(w.clips, ensure_ascii=False)
    finished = w.window_start is None
    status = "done" if finished else "running"
    c = w.calls
    statements = [
        Statement(
            "UPDATE jobs SET "
            f"clips_new = clips_new + {_COUNT_NEW}, clips_updated = clips_updated + {_COUNT_CHANGED}, "
            "status = ?, crawl_from = ?, crawl_to = ?, window_start = ?, window_end = ?, cursor = ?, cursor_at = ?, "
            "window_pages = ?, window_clips = ?, window_span = ?, pages = pages + ?, "
            "clips_seen = clips_seen + ?, clips_skipped = clips_skipped + ?, "
            "helix_calls = helix_calls + ?, d1_calls = d1_calls + ?, queue_sends = queue_sends + ?, "
            "subrequests = subrequests + ?, max_subrequests = max(max_subrequests, ?), "
            "stop_reason = coalesce(?, stop_reason), error = NULL, newest_clip_at = ?, "
            "finished_at = CASE WHEN ? = 'done' THEN ? ELSE finished_at END "
            f"WHERE {_NAMED_JOB} AND lease_token = ? AND status = 'running'",
            (page, page, *w.views.params, status, w.crawl_from, w.crawl_to, w.window_start, w.window_end, w.cursor, w.cursor_at,
             w.window_pages, w.window_clips, w.window_span, w.pages, len(w.clips), w.skipped, c.helix, c.d1,
             c.queue,
             c.helix + c.d1 + c.queue, c.invocation_total, w.stop_reason, w.newest_clip_at, status, w.now,
             w.job_id, w.run_id, w.streamer_id, w.lease_token)),
        Statement(
            "UPDATE runs SET "
            f"clips_new = clips_new + {_COUNT_NEW}, clips_updated = clips_updated + {_COUNT_CHANGED}, "
            "pages = pages + ?, clips_seen = clips_seen + ?, clips_skipped = clips_skipped + ?, "
            "helix_calls = helix_calls + ?, d1_calls = d1_calls + ?, queue_sends = queue_sends + ?, "
            f"jobs_done = jobs_done + ? WHERE id = ? AND {_RUN_HOLDS_LEASE}",
            (page, page, *w.views.params, w.pages, len(w.clips), w.skipped, c.helix, c.d1, c.queue, int(finished),
             w.run_id, w.job_id, w.streamer_id, w.lease_token)),
    ]
    if w.clips:
        statements.append(Statement(_UPSERT_CLIPS, (w.now, w.now, page, w.job_id, w.run_id, w.streamer_id,
                                                    w.lease_token, *w.views.params)))
    if finished and w.crawled:
        statements.append(
            Statement(
                # max(): a backfill of an old window must not move the watermark back.
                "UPDATE streamers SET crawled_through = max(coalesce(crawled_through, ''), ?), "
                "last_success_at = ?, failure_streak = 0, last_error = NULL, "
                "last_clip_at = nullif(max(coalesce(last_clip_at, ''), coalesce(?, '')), ''), tier = ?, "
                "next_crawl_at = ?, window_span = coalesce(?, window_span) "
                f"WHERE id = ? AND {_NAMED_LEASE}",
                (w.crawl_to, w.now, w.newest_clip_at, w.tier, w.next_crawl_at, w.window_span, w.streamer_id,
                 w.job_id, w.run_id, w.streamer_id, w.lease_token)))
    if finished:
        statements.append(finish_run_if_complete(w.run_id, w.now))
    return statements


def release_job(job_id: int, run_id: int, streamer_id: str, lease_token: str, now: str, due_at: str,
                calls: Calls, stop_reason: str, error: str | None) -> list[Statement]:
    """Hand a running job back to the queue (a continuation or a retry follows), keeping its progress."""
    return [
        Statement(
            # The token stays so the run update below can tell this write applied; a claim replaces it.
            "UPDATE jobs SET status = 'queued', lease_expires_at = NULL, due_at = ?, "
            "helix_calls = helix_calls + ?, d1_calls = d1_calls + ?, queue_sends = queue_sends + ?, "
            "subrequests = subrequests + ?, max_subrequests = max(max_subrequests, ?), "
            f"stop_reason = ?, error = ? WHERE {_NAMED_JOB} AND lease_token = ? AND status = 'running'",
            (due_at, calls.helix, calls.d1, calls.queue, calls.helix + calls.d1 + calls.queue,
             calls.invocation_total, stop_reason, error_text(error) if error is not None else None,
             job_id, run_id, streamer_id, lease_token)),
        Statement(
            "UPDATE runs SET helix_calls = helix_calls + ?, d1_calls = d1_calls + ?, queue_sends = queue_sends + ? "
            f"WHERE id = ? AND {_RUN_HOLDS_LEASE}",
            (calls.helix, calls.d1, calls.queue, run_id, job_id, streamer_id, lease_token)),
    ]


def fail_job(job_id: int, run_id: int, streamer_id: str, fail_token: str, now: str, calls: Calls,
             stop_reason: str, error: str) -> list[Statement]:
    """Record a job as failed for good (once, whoever holds it) and close the run if it was the last.

    Only the job the message names, by id, run and streamer: a message naming a job of another run
    changes nothing (the caller records it as a dead letter).
    """
    error = error_text(error)
    return [
        Statement(
            "UPDATE jobs SET status = 'failed', lease_token = ?, lease_expires_at = NULL, finished_at = ?, "
            "helix_calls = helix_calls + ?, d1_calls = d1_calls + ?, queue_sends = queue_sends + ?, "
            "subrequests = subrequests + ?, max_subrequests = max(max_subrequests, ?), "
            f"stop_reason = ?, error = ? WHERE {_NAMED_JOB} AND status IN ('queued', 'running')",
            (fail_token, now, calls.helix, calls.d1, calls.queue, calls.helix + calls.d1 + calls.queue,
             calls.invocation_total, stop_reason, error, job_id, run_id, streamer_id)),
        Statement(
            "UPDATE runs SET jobs_failed = jobs_failed + 1, helix_calls = helix_calls + ?, "
            f"d1_calls = d1_calls + ?, queue_sends = queue_sends + ? WHERE id = ? AND {_RUN_HOLDS_LEASE}",
            (calls.helix, calls.d1, calls.queue, run_id, job_id, streamer_id, fail_token)),
        Statement(
            "UPDATE streamers SET failure_streak = failure_streak + 1, last_failure_at = ?, last_error = ? "
            f"WHERE id = ? AND {_NAMED_LEASE}",
            (now, error, streamer_id, job_id, run_id, streamer_id, fail_token)),
        finish_run_if_complete(run_id, now),
    ]


def record_dead_letter(source: str, job_id: int | None, body: str, reason: str, now: str,
                       fail_token: str | None = None) -> Statement:
    """Record an unprocessable message; with `fail_token`, only if that failure of the job applied.

    A stray copy of a message whose job another copy already finished records nothing, and neither does
    the redelivery of a dead letter that was recorded once. Body and reason are cut, made UTF-8-safe and
    scrubbed of secrets here, so recording can never fail on what the message held.
    """
    values = _dead_letter_values(source, job_id, body, reason, now)
    if fail_token is None:
        return Statement("INSERT INTO dead_letters (received_at, source, job_id, body, reason) "
                         "VALUES (?, ?, ?, ?, ?)", values)
    return Statement(f"INSERT INTO dead_letters (received_at, source, job_id, body, reason) SELECT ?, ?, ?, ?, ? "
                     f"WHERE {_HOLDS_LEASE}", (*values, job_id, fail_token))


def record_dead_letter_unless_named_job(source: str, job_id: int, run_id: int, streamer_id: str, body: str,
                                        reason: str, now: str) -> Statement:
    """Record a message as a dead letter when no job matches its job id, run and streamer together."""
    values = _dead_letter_values(source, job_id, body, reason, now)
    return Statement("INSERT INTO dead_letters (received_at, source, job_id, body, reason) "
                     f"SELECT ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM jobs WHERE {_NAMED_JOB})",
                     (*values, job_id, run_id, streamer_id))


def _dead_letter_values(source: str, job_id: int | None, body: str, reason: str,
                        now: str) -> tuple[str, str, int | None, str, str]:
    # Scrubbed before it is cut, so a secret across the cut is still masked whole.
    return (now, source, job_id, scrub(storable_text(body))[:DEAD_LETTER_BODY_LIMIT], error_text(reason))


def error_text(error: str) -> str:
    """An error as D1 stores it (jobs.error, streamers.last_error, dead letters): scrubbed, storable, cut."""
    return scrub(storable_text(error))[:ERROR_LIMIT]


def store_token(client_id: str, access_token: str, expires_at: str, now: str) -> Statement:
    return Statement(
        "INSERT INTO app_tokens (client_id, access_token, expires_at, minted_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (client_id) DO UPDATE SET access_token = excluded.access_token, "
        "expires_at = excluded.expires_at, minted_at = excluded.minted_at, minting_until = NULL",
        (client_id, access_token, expires_at, now))


def read_token(client_id: str) -> Statement:
    return Statement("SELECT access_token, expires_at, ratelimit_limit, ratelimit_remaining, ratelimit_reset "
                     "FROM app_tokens WHERE client_id = ?", (client_id,))


def store_rate_limit(client_id: str, limit: int, remaining: int, reset_at: int) -> Statement:
    """Share a low rate-limit reading; a newer window's reading replaces an older one."""
    return Statement(
        "UPDATE app_tokens SET ratelimit_limit = ?, ratelimit_remaining = ?, ratelimit_reset = ? "
        "WHERE client_id = ? AND (ratelimit_reset IS NULL OR ratelimit_reset < ? "
        "OR (ratelimit_reset = ? AND ratelimit_remaining > ?))",
        (limit, remaining, reset_at, client_id, reset_at, reset_at, remaining))


# --- streamers ---------------------------------------------------------------------------------

def upsert_streamers(users: Sequence[dict[str, Any]], now: str) -> Statement:
    """Add (or re-activate and rename) streamers from Get Users results, in one statement."""
    rows = [{"id": u["id"], "login": str(u.get("login", "")), "display_name": str(u.get("display_name", ""))}
            for u in users]
    return Statement(
        "INSERT INTO streamers (id, login, display_name, active, added_at) "
        "SELECT json_extract(value, '$.id'), json_extract(value, '$.login'), "
        "json_extract(value, '$.display_name'), 1, ? FROM json_each(?) WHERE true "
        "ON CONFLICT (id) DO UPDATE SET login = excluded.login, display_name = excluded.display_name, active = 1",
        (now, json.dumps(rows, ensure_ascii=False)))



def claim_token_mint(client_id: str, stale_token: str, now: str, until: str) -> list[Statement]:
    """Claim the next mint if the stored token is still `stale_token` and nobody holds the claim; re-read it.

    One round trip, on the rare path only (after a 401 or near expiry): the first statement returns a row
    only to the consumer that won the claim, the second the token as stored now (another consumer's, maybe).
    """
    return [
        Statement(
            "INSERT INTO app_tokens (client_id, access_token, expires_at, minted_at, minting_until) "
            "VALUES (?, '', '1970-01-01T00:00:00Z', ?, ?) "
            "ON CONFLICT (client_id) DO UPDATE SET minting_until = excluded.minting_until "
            "WHERE app_tokens.access_token = ? "
            "AND (app_tokens.minting_until IS NULL OR app_tokens.minting_until < ?) "
            "RETURNING minting_until",
            (client_id, now, until, stale_token, now)),
        read_token(client_id),
    ]
