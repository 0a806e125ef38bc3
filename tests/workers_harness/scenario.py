"""The one story both the Workers harness and its local-mode twin play: world, faults, clock, tables.

The Helix emulator's clock is frozen at START, so the world (clips, view counts, missing VOD offsets)
is the same however long either run takes. Crawl windows are aligned to 10 minutes and START is 30 s
past such a boundary, so both runs cut the same windows as long as their own clocks stay before
SAME_WINDOWS_UNTIL. That is why the harness starts the Workers' wall clock at START.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request

from local.clock import VirtualClock
from local.emulator import EmulatorConfig, HelixWorld, create_emulator_app
from local.emulator.app import Handler, Reply, helix_error
from shared.config import Settings
from shared.timefmt import align_up, to_rfc3339
from shared.windows import HELIX_TIME_STEP
from tests.workers_harness import routes

SEED = 8
DAY = 86_400
STREAMERS = 20
SLOT = 1_790_002_800  # the hourly cron's scheduled time: 2026-09-21T15:00:00Z
START = SLOT + 30  # when the cron's invocation runs
SAME_WINDOWS_UNTIL = align_up(START, HELIX_TIME_STEP)  # both runs' clocks must stay before this
API_TOKEN = "harness-kick-token"  # the producer's CLIPCRAWLER_API_TOKEN secret in both runs
# Before the kick, the newest clip is marked deleted as a failed check would (consumer/verify.py); the
# kick's crawl reads it from Get Clips again, so its page write must unmark it. Bound: the mark's time.
MARK_NEWEST_CLIP = (
    "UPDATE clips SET deleted_at = ?1, last_seen_at = ?1 "
    "WHERE id = (SELECT id FROM clips ORDER BY created_at DESC, id LIMIT 1) RETURNING id"
)

# Get Clips for this streamer fails with 503 as many times as one invocation tries in place, so the
# message is retried through the queue with a delay and acked on its next delivery.
RETRIED_STREAMER = 3
# Get Clips for this streamer answers 429 once, with a reset already past: the consumer acks the message
# and sends the job on in a new one, with a delay, through its own queue binding.
THROTTLED_STREAMER = 11
# The consumer invocation dies (before the Python code runs) on every delivery of this streamer's job in
# the cron's run, so the queue moves the message to the dead-letter queue after max_retries.
POISONED_STREAMER = 7
POISONED_RUN = 1

# Last, a history backfill of the busiest streamer's 200 days ending 30 days before START: its windows are
# sized from the clips it finds, split near the cap, and its walk state (jobs.walk_state) goes with each page
# written through the D1 binding, across the continuations the Free plan's budget makes.
BACKFILL_DAYS, BACKFILL_ENDS_DAYS_BEFORE = 200, 30

# Every table the comparison reads, and the columns in each that only the wall clock or chance decides.
TABLES: dict[str, frozenset[str]] = {
    "streamers": frozenset(
        {"last_success_at", "last_failure_at", "next_crawl_at", "last_live_at", "added_at"}
    ),
    "clips": frozenset({"first_seen_at", "last_seen_at"}),
    "runs": frozenset({"created_at", "enqueued_at", "finished_at"}),
    "jobs": frozenset(
        {"lease_token", "lease_expires_at", "due_at", "cursor_at", "created_at", "started_at", "finished_at"}
    ),
    "dead_letters": frozenset({"received_at"}),
}


def world() -> HelixWorld:
    return HelixWorld(SEED, STREAMERS, clock=VirtualClock(START))


@dataclass
class ScriptedClips:
    """The emulator's `wrap` hook: Get Clips for a broadcaster first answers these statuses, in order."""

    script: dict[str, list[int]]
    clock: VirtualClock
    rate_limit_points: int
    served: dict[str, int] = field(default_factory=dict)

    def __call__(self, name: str, handler: Handler) -> Handler:
        if name != "clips":
            return handler

        async def clips(request: Request) -> Reply:
            broadcaster = request.query_params.get("broadcaster_id", "")
            script, done = self.script.get(broadcaster, []), self.served.get(broadcaster, 0)
            if done >= len(script):
                return await handler(request)
            self.served[broadcaster] = done + 1
            reply = helix_error(script[done], "scripted by tests/workers_harness/scenario.py")
            if script[done] == 429:
                reply.headers.update(
                    {
                        "Ratelimit-Limit": str(self.rate_limit_points),
                        "Ratelimit-Remaining": "0",
                        "Ratelimit-Reset": str(int(self.clock.now()) - 1),
                    }
                )
            return reply

        return clips


def emulator_app(helix: HelixWorld, config: EmulatorConfig) -> Starlette:
    streamers = helix.all_streamers()
    script = {
        streamers[RETRIED_STREAMER].id: [503] * Settings().http_attempts,
        streamers[THROTTLED_STREAMER].id: [429],
    }
    assert isinstance(helix.clock, VirtualClock)
    return create_emulator_app(
        helix, config, wrap=ScriptedClips(script, helix.clock, config.rate_limit_points)
    )


def hostile_messages(helix: HelixWorld) -> list[Any]:
    """Sent to the jobs queue once both runs are over; each must end acked, with its own dead_letters row.

    Job STREAMERS + 1 is the kick's first job (the cron's run has jobs 1 to STREAMERS): named with the
    cron's run, it matches no job. Today's code took it for a duplicate, and `v: true` for version 1.
    """
    first = helix.all_streamers()[0].id
    deep: dict[str, Any] = {}
    for _ in range(12):
        deep = {"a": deep}
    return [
        {
            "v": 1,
            "type": "crawl",
            "run_id": POISONED_RUN,
            "job_id": STREAMERS + 1,
            "streamer_id": first,
            "seq": 0,
        },
        {"v": True, "type": "crawl", "run_id": 1, "job_id": 1, "streamer_id": first},
        {"v": 1, "type": "crawl", "run_id": 1, "job_id": 1, "streamer_id": first, "deep": deep},
        '{"v": 1, "type": "crawl"',
    ]


def describe(helix: HelixWorld) -> dict[str, Any]:
    """What the Node harness needs to play the story (it reads this from the emulator's first line)."""
    streamers = helix.all_streamers()
    return {
        "start": START,
        "slot": SLOT,
        "api_token": API_TOKEN,
        "logins": [s.login for s in streamers],
        "poisoned": {"streamer_id": streamers[POISONED_STREAMER].id, "run_id": POISONED_RUN},
        "tables": sorted(TABLES),
        "routes": routes.calls(helix),
        "hostile": hostile_messages(helix),
        "mark": {"sql": MARK_NEWEST_CLIP, "at": to_rfc3339(START)},
        "backfill": backfill_request(helix),
    }


def backfill_request(helix: HelixWorld) -> dict[str, Any]:
    """The POST /runs body of the story's last run: the busiest streamer's history."""
    busiest = max(helix.all_streamers(), key=lambda s: s.clips_per_day)
    end = align_up(START, HELIX_TIME_STEP) - BACKFILL_ENDS_DAYS_BEFORE * DAY
    window = {"from": to_rfc3339(end - BACKFILL_DAYS * DAY), "to": to_rfc3339(end)}
    return {"streamers": [busiest.id], "backfill": window}


def is_poisoned(body: Any, poisoned: Mapping[str, Any]) -> bool:
    """The crash rule, as the harness's Node side applies it: every field of `poisoned` matches the body."""
    return isinstance(body, Mapping) and all(body.get(k) == v for k, v in poisoned.items())
