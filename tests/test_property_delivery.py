"""The invariant that matters most: any delivery schedule gives the same database.

Duplicates, lost acks, reordering, delays, consumer crashes part-way through a message, and Twitch's
transient faults (5xx, timeouts, 429 bursts, a revoked token) may change how long a crawl takes and
how many calls it makes, never which clips end up stored, and never leave a job stuck or a failure
unexplained. More examples: CLIPCRAWLER_PROPERTY_EXAMPLES=500 make test-property.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local.clock import VirtualClock
from local.crash import ConsumerCrashes, CrashingRunner, CrashInjector
from local.emulated import emulator_client, emulator_settings
from local.emulator import EmulatorConfig, HelixWorld, create_emulator_app
from local.emulator.faults import HelixFaultInjector, HelixFaults
from local.queue import ConsumerSettings, SimulatedQueue
from local.queue_faults import QueueFaultInjector, QueueFaults
from local.runner import DLQ_NAME, QUEUE_NAME, LocalRunner
from local.sqlite_db import SqliteDatabase
from producer.streamers import add_streamers
from shared.config import Settings
from shared.timefmt import to_rfc3339

START = 1_790_000_000.0
STREAMERS = 8
# Compare the clips created well inside the first crawl's window, whenever a job actually ran.
COMPARED = (to_rfc3339(START - 20 * 3600), to_rfc3339(START - 600))
# Fields Twitch never changes once a clip exists (view counts, VOD ids and offsets do change).
STABLE = (
    "id, broadcaster_id, broadcaster_name, creator_id, creator_name, game_id, language, title, created_at, "
    "url, embed_url, thumbnail_url, duration"
)
MAX_TICKS = 8
EXAMPLES = int(os.environ.get("CLIPCRAWLER_PROPERTY_EXAMPLES", "40"))


async def crawl(
    queue_faults: QueueFaults | None, crashes: ConsumerCrashes | None, helix_faults: HelixFaults | None
) -> dict[str, Any]:
    clock = VirtualClock(START)
    world = HelixWorld(3, STREAMERS, (20, 60), clock=clock)
    config = EmulatorConfig()
    injector = HelixFaultInjector(helix_faults) if helix_faults else None
    app = create_emulator_app(world, config, wrap=injector.wrap if injector else None)
    http = emulator_client(app)
    if injector is not None:
        http = httpx.AsyncClient(transport=injector.transport(http._transport, clock), base_url=http.base_url)
    db = await SqliteDatabase.open()
    settings_ = emulator_settings(Settings(), config).with_(http_backoff_seconds=0, retry_delay_seconds=30)
    try:
        if injector is not None:
            injector.active = False  # adding the streamers is not what is under test
        await add_streamers(db, http, settings_, clock, [s.login for s in world.all_streamers()])
        if injector is not None:
            injector.active = True
        dlq = SimulatedQueue(DLQ_NAME, clock=clock, settings=ConsumerSettings(max_batch_size=1))
        queue = SimulatedQueue(
            QUEUE_NAME,
            clock=clock,
            dead_letter=dlq,
            settings=ConsumerSettings(
                max_batch_size=1,
                max_batch_timeout=0,
                max_retries=settings_.max_retries,
                retry_delay=settings_.retry_delay_seconds,
                max_concurrency=4,
                dead_letter_queue=DLQ_NAME,
            ),
        )
        if queue_faults is not None:
            QueueFaultInjector(queue, queue_faults)
        runner: LocalRunner
        if crashes is not None:
            runner = CrashingRunner(
                db, http, settings_, clock, queue=queue, seed=1, crashes=CrashInjector(crashes)
            )
        else:
            runner = LocalRunner(db, http, settings_, clock, queue=queue, seed=1)
        runner.dlq = dlq
        # Hourly ticks, at least two, until every streamer has been crawled and nothing is unfinished:
        # what a failed or lost job misses, the next tick's crawl of the same 24 h picks up. So does a
        # clip that slipped between two pages because its views changed mid-walk (Helix ranks by
        # views), which is why one tick is not enough even without faults.
        for tick in range(MAX_TICKS):
            await runner.crawl(scheduled_time=clock.now())
            pending = await db.first(
                "SELECT (SELECT count(*) FROM jobs WHERE status IN ('queued', 'running')) AS stuck, "
                "(SELECT count(*) FROM streamers WHERE crawled_through IS NULL) AS never"
            )
            if tick >= 1 and pending == {"stuck": 0, "never": 0}:
                break
            clock.advance(3600)
        clips = await db.all(
            f"SELECT {STABLE} FROM clips WHERE created_at >= ? AND created_at < ? ORDER BY id", *COMPARED
        )
        return {
            "clips": clips,
            "duplicates": (await db.first("SELECT count(*) - count(DISTINCT id) AS n FROM clips"))["n"],
            "stuck": (await db.first("SELECT count(*) AS n FROM jobs WHERE status IN ('queued', 'running')"))[
                "n"
            ],
            "unexplained": (
                await db.first(
                    "SELECT (SELECT count(*) FROM jobs WHERE status = 'failed' AND (error IS NULL OR error = "
                    "'')) + "
                    "(SELECT count(*) FROM dead_letters WHERE reason = '') AS n"
                )
            )["n"],
            "never_crawled": pending["never"],
        }
    finally:
        await http.aclose()
        await db.close()


_reference: dict[str, Any] = {}


def reference() -> dict[str, Any]:
    if not _reference:
        _reference.update(asyncio.run(crawl(None, None, None)))
        assert len(_reference["clips"]) > 50
    return _reference


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31),
    duplicate=st.floats(0, 0.3),
    lost_ack=st.floats(0, 0.2),
    reorder=st.floats(0, 1),
    delay=st.floats(0, 0.3),
    crash=st.floats(0, 0.25),
    server_error=st.floats(0, 0.2),
    rate_limit=st.floats(0, 0.05),
    timeouts=st.floats(0, 0.1),
    expire_token_at=st.one_of(st.none(), st.integers(1, 30)),
)
def test_any_delivery_schedule_gives_the_same_database(
    seed: int,
    duplicate: float,
    lost_ack: float,
    reorder: float,
    delay: float,
    crash: float,
    server_error: float,
    rate_limit: float,
    timeouts: float,
    expire_token_at: int | None,
) -> None:
    expected = reference()
    got = asyncio.run(
        crawl(
            QueueFaults(
                seed=seed,
                duplicate_rate=duplicate,
                lost_ack_rate=lost_ack,
                reorder_rate=reorder,
                delay_rate=delay,
            ),
            ConsumerCrashes(seed=seed, rate=crash),
            HelixFaults(
                seed=seed,
                server_error_rate=server_error,
                rate_limit_rate=rate_limit,
                read_timeout_rate=timeouts,
                connect_error_rate=timeouts / 2,
                expire_tokens_at=(expire_token_at,) if expire_token_at else (),
            ),
        )
    )
    assert got["stuck"] == 0, "every job ends done or failed"
    assert got["unexplained"] == 0, "every failure has a recorded reason"
    assert got["never_crawled"] == 0
    assert got["duplicates"] == 0
    missing = {c["id"] for c in expected["clips"]} - {c["id"] for c in got["clips"]}
    extra = {c["id"] for c in got["clips"]} - {c["id"] for c in expected["clips"]}
    assert got["clips"] == expected["clips"], (
        f"not the fault-free run's clips: missing {missing}, extra {extra}"
    )
