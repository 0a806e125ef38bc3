"""The states a job and a run go through, why a job stopped, and what a message's handling came to.

StrEnums, so each value is the plain string D1 and SQLite store and compare (`JobStatus.DONE == "done"`).
docs/architecture.md ("States") draws the transitions.
"""

from __future__ import annotations

import enum


class JobStatus(enum.StrEnum):
    QUEUED = "queued"  # waiting for a consumer (new, handed back for a continuation, or reopened by a retry)
    RUNNING = "running"  # claimed: a consumer holds its lease
    DONE = "done"  # crawled to the end of its range
    FAILED = "failed"  # given up on; `runs retry-failed` reopens it


# Unfinished jobs: at most one per streamer (a partial unique index), and a run waits for them.
UNFINISHED_JOBS = (JobStatus.QUEUED, JobStatus.RUNNING)


class RunStatus(enum.StrEnum):
    ENQUEUING = "enqueuing"  # its slices are still being fanned out
    RUNNING = "running"  # every job is queued; some are unfinished
    FINISHED = "finished"  # no job is unfinished


class StopReason(enum.StrEnum):
    """Why a job's last invocation stopped (`jobs.stop_reason`)."""

    COMPLETE = "complete"  # the whole range was crawled
    REPEATED_CURSOR = (
        "repeated_cursor"  # complete, but a window ended on a cursor Helix had handed out before
    )
    PAGE_CAP = "page_cap"  # complete, but a window ended at the page cap
    STREAMER_INACTIVE = "streamer_inactive"  # deactivated after its job was queued: closed without crawling
    BUDGET = "budget"  # out of subrequests: handed back, a continuation resumes it
    RATE_LIMITED = "rate_limited"  # Helix answered 429: handed back until the reset
    HELIX_ERROR = "helix_error"  # a transient Helix failure (5xx, timeout): handed back for a retry
    HELIX_REFUSED = "helix_refused"  # Helix refused the request itself (400, 403, 404): the job then fails
    ERROR = "error"  # anything else (a D1 error, a bug): handed back for a retry
    FAILED = "failed"  # failed for good: out of retries, dead-lettered, or a permanent refusal
    TWITCH_UNREACHABLE = (
        "twitch_unreachable"  # local schedule: Twitch could not be reached, the run was closed
    )
    RETRIED = "retried"  # reopened by `runs retry-failed` / POST /runs/{id}/retry-failed


class Outcome(enum.StrEnum):
    """What handling a message came to (`Verdict.outcome`); the retry policy maps it to an action."""

    DONE = "done"  # the job finished in this invocation
    DUPLICATE = "duplicate"  # the job was already finished: a redelivery
    LEASE_LOST = "lease_lost"  # another consumer took the job over
    BUSY = "busy"  # another consumer holds a live lease on the job
    BUDGET = "budget"  # out of subrequests; progress committed, continue in a new message
    RATE_LIMITED = "rate_limited"  # Helix answered 429
    TRANSIENT = "transient"  # timeouts, 5xx, D1 hiccups, unexpected exceptions
    PERMANENT = "permanent"  # credentials refused, unknown job: retrying cannot help
    MALFORMED = "malformed"  # the message itself is unusable
