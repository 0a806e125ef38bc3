"""One side of one scenario (the design, or the naive baseline) from setup to measured figures."""

from __future__ import annotations

import asyncio
import copy
import math
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from bench.baseline import crawl_naive
from bench.clock import ScaledClock
from bench.d1 import D1Model, Latency
from bench.floor import pages_needed
from bench.helix_process import WorldSpec, furnish, helix_process
from bench.loopback import LoopbackTransport
from bench.memory import current_rss_mb, peak_rss_mb
from bench.probe import CountingTransport, Probe, Tally
from bench.runner import FanOutSpread, MeasuredRunner
from bench.scenarios import BenchConfig, Scenario
from bench.sqlite import SerialSqlite, SqliteProcess
from local.emulated import EMULATOR_URL, emulator_settings
from local.emulator import EmulatorConfig, HelixWorld, create_emulator_app
from local.emulator.faults import HelixFaultInjector, HelixFaults
from local.emulator.needed import NeededCalls
from local.emulator.world import Streamer
from local.runner import InvocationLog
from shared import store
from shared.config import Settings
from shared.timefmt import parse_rfc3339, to_rfc3339

HOUR_S = 3600
SIDES = ("design", "baseline")
# The database thread needs the GIL back after each statement; with the default 5 ms switch interval it
# waits behind the event loop's CPU work, which would bill simulation overhead as D1 time.
SWITCH_INTERVAL_S = 0.0005
RUN_COUNTERS = (
    "status",
    "jobs_total",
    "jobs_done",
    "jobs_failed",
    "pages",
    "clips_seen",
    "clips_new",
    "clips_updated",
    "helix_calls",
    "d1_calls",
    "queue_sends",
)


@dataclass
class Bed:
    """Everything one side of a scenario runs on; the design and the baseline each get a fresh one."""

    scenario: Scenario
    config: BenchConfig
    clock: ScaledClock
    world: HelixWorld
    world_spec: WorldSpec
    emulator: EmulatorConfig
    settings: Settings
    # Per streamer: (created_at, id) of every clip visible at the start and created in the lookback before it.
    candidates: dict[str, list[tuple[float, str]]]
    raw: SerialSqlite | SqliteProcess
    db: D1Model
    probe: Probe

    @property
    def lookback_s(self) -> float:
        return self.config.lookback_hours * HOUR_S


def trap_faults(config: BenchConfig, chosen: Sequence[Streamer], helix_requests: int) -> HelixFaults:
    """S4's traps on the streamers after the heavy first one; the revocations spread over the run's
    requests.
    """
    after_looping = 1 + config.s4_looping
    looping = frozenset(s.id for s in chosen[1:after_looping])
    empty = frozenset(s.id for s in chosen[after_looping : after_looping + config.s4_empty_page])
    every = max(1, helix_requests // (config.s4_revocations + 1))
    return HelixFaults(
        seed=config.seed,
        looping_broadcasters=looping,
        empty_page_broadcasters=empty,
        first_attempt_error_rate=config.s4_first_attempt_errors,
        expire_tokens_at=tuple(every * (i + 1) for i in range(config.s4_revocations)),
    )


async def prepare(
    scenario: Scenario, config: BenchConfig, streamers: int, clock_factor: float, traps: bool = False
) -> Bed:
    """A world, an emulator config, a database holding the first `streamers` streamers, the expected clips."""
    clock = ScaledClock(config.origin, clock_factor)
    now = clock.now()
    lookback_s = config.lookback_hours * HOUR_S
    world = HelixWorld(config.seed, scenario.streamers, config.clips_per_day, clock=clock)
    chosen = world.all_streamers()[:streamers]
    heavy = None
    if scenario.heavy_clips is not None:
        heavy = (chosen[0].id, scenario.heavy_clips * 24 / config.lookback_hours)
    faults = trap_faults(config, chosen, streamers) if traps and scenario.traps else None
    spec = WorldSpec(
        config.seed,
        scenario.streamers,
        config.clips_per_day,
        heavy,
        tuple(s.id for s in chosen),
        now - lookback_s,
        now,
        faults,
    )
    # This also fills the emulator's clip cache, so generating the world is not timed as crawling.
    furnish(world, spec)
    candidates = {
        s.id: [(parse_rfc3339(c["created_at"]), c["id"]) for c in world.clips(s.id, now - lookback_s, now)]
        for s in chosen
    }
    raw = await (SqliteProcess.open() if config.services_in_processes else SerialSqlite.open())
    await raw.batch([store.upsert_streamers([s.to_user() for s in chosen], to_rfc3339(now))])
    probe = Probe()
    db = D1Model(
        raw,
        clock,
        Latency(config.d1_latency_ms / 1000, config.d1_jitter_ms / 1000),
        probe=probe,
        seed=config.seed,
    )
    emulator = EmulatorConfig(
        latency_s=config.helix_latency_ms / 1000,
        latency_jitter_s=config.helix_jitter_ms / 1000,
        rate_limit_points=config.rate_limit,
        seed=config.seed,
    )
    settings = emulator_settings(
        Settings(
            plan=scenario.plan, lookback_hours=config.lookback_hours, backfill_hours=config.lookback_hours
        ),
        emulator,
    )
    return Bed(scenario, config, clock, world, spec, emulator, settings, candidates, raw, db, probe)


@asynccontextmanager
async def helix_client(bed: Bed) -> AsyncIterator[httpx.AsyncClient]:
    """A client for the emulated Twitch, counting every request; points `bed.settings` at it."""
    if not bed.config.services_in_processes:
        faults = bed.world_spec.faults
        app = create_emulator_app(
            bed.world, bed.emulator, wrap=HelixFaultInjector(faults).wrap if faults is not None else None
        )
        transport = CountingTransport(httpx.ASGITransport(app=app), bed.probe, bed.clock)
        async with httpx.AsyncClient(transport=transport, base_url=EMULATOR_URL) as http:
            yield http
        return
    with helix_process(bed.world_spec, bed.emulator, bed.clock) as url:
        bed.settings = bed.settings.with_(twitch_api_url=url + "/helix", twitch_auth_url=url + "/oauth2")
        inner = LoopbackTransport(*_host_and_port(url))
        async with httpx.AsyncClient(
            transport=CountingTransport(inner, bed.probe, bed.clock), base_url=url
        ) as http:
            yield http


def _host_and_port(url: str) -> tuple[str, int]:
    parsed = httpx.URL(url)
    return parsed.host, int(parsed.port or 80)


async def run_design(scenario: Scenario, config: BenchConfig) -> dict[str, Any]:
    """The crawler as built: the producer's tick, then the queue drained through the consumer."""
    bed = await prepare(scenario, config, scenario.streamers, scenario.clock_factor, traps=True)
    crawls: list[dict[str, Any]] = []
    try:
        async with helix_client(bed) as http:
            spread = None
            if config.spread_fanout:
                spread = FanOutSpread(config.rate_limit * config.spread_fanout, bed.clock)
            runner = MeasuredRunner(
                bed.db,
                http,
                bed.settings,
                bed.clock,
                concurrency=scenario.concurrency,
                seed=config.seed,
                probe=bed.probe,
                spread=spread,
            )
            rss_start, cpu_start = current_rss_mb(), time.process_time()
            bed.clock.start()
            began = time.perf_counter()
            started = await runner.crawl_overlapped()
            wall_s, real_s = bed.clock.now() - bed.clock.origin, time.perf_counter() - began
            cpu_s = time.process_time() - cpu_start
            crawls.append(_crawl_calls(bed, 0, 0, 0))
            # Everything but `crawls` describes the first crawl: read it before any second one.
            run = await bed.raw.first("SELECT * FROM runs WHERE id = ?", started.run_id) or {}
            jobs = await bed.raw.all(
                "SELECT status, coalesce(stop_reason, '') AS stop_reason, count(*) AS n "
                "FROM jobs GROUP BY 1, 2 ORDER BY 3 DESC"
            )
            result = await _common(bed, wall_s, real_s, cpu_s, rss_start)
            consumer, invocations = list(bed.probe.consumer), copy.deepcopy(runner.invocations)
            token_mints = bed.probe.token_mints
            for _ in range(scenario.crawls - 1):  # a manual kick for the same streamers, right after
                helix_before, queries_before = bed.probe.totals.helix, len(bed.probe.clip_queries)
                upkeep_before = bed.probe.upkeep_calls
                ids = [row["id"] for row in await bed.raw.all("SELECT id FROM streamers ORDER BY id")]
                await runner.crawl(streamer_ids=ids)
                crawls.append(_crawl_calls(bed, helix_before, queries_before, upkeep_before))
    finally:
        await bed.raw.close()
    result.update(
        invocations=_invocation_stats(consumer),
        producer=_tally(bed.probe.producer[:1]),
        subrequests_match_self_reported=_matches(invocations, consumer),
        outcomes=dict(sorted(invocations.outcomes.items())),
        run={k: run.get(k) for k in RUN_COUNTERS},
        jobs={f"{j['status']}/{j['stop_reason'] or '-'}": j["n"] for j in jobs},
        rows_upserted=int(run.get("clips_seen") or 0),
        crawls=crawls,
        token_mints=token_mints,
        revocations=len(bed.world_spec.faults.expire_tokens_at) if bed.world_spec.faults else 0,
    )
    # The first crawl is the scenario's; a second one is reported beside it.
    result.update(helix_calls_needed=crawls[0]["needed"])
    return result


def _crawl_calls(bed: Bed, helix_before: int, queries_before: int, upkeep_before: int) -> dict[str, Any]:
    """One crawl's Helix calls beside the fewest serving every clip it asked for (local/emulator/needed.py).

    The upkeep's calls after a crawl (Get Games for new game ids, Get Clips by id for deletion checks) are
    not the crawl's: they are counted apart, in `upkeep_calls`, and left out of `over_needed`."""
    needed = NeededCalls(bed.world, bed.emulator.result_cap)
    for query in bed.probe.clip_queries[queries_before:]:
        needed.record_query(query)
    per_streamer = needed.needed()
    upkeep = bed.probe.upkeep_calls - upkeep_before
    calls = bed.probe.totals.helix - helix_before - upkeep
    total = sum(per_streamer.values())
    return {
        "helix_calls": calls,
        "upkeep_calls": upkeep,
        "needed": total,
        "over_needed": ratio(calls, total),
        "streamers": len(per_streamer),
        "heaviest": max(per_streamer.values(), default=0),
    }


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


async def run_baseline(scenario: Scenario, config: BenchConfig) -> dict[str, Any]:
    """The naive loop over the first `baseline_streamers` streamers, in one invocation."""
    bed = await prepare(scenario, config, scenario.baseline_streamers, scenario.baseline_clock_factor)
    try:
        async with helix_client(bed) as http:
            rss_start, cpu_start = current_rss_mb(), time.process_time()
            with bed.probe.invocation("consumer"):
                bed.clock.start()
                began = time.perf_counter()
                naive = await crawl_naive(bed.db, http, bed.settings, bed.clock, bed.lookback_s)
                wall_s, real_s = bed.clock.now() - bed.clock.origin, time.perf_counter() - began
            cpu_s = time.process_time() - cpu_start
        result = await _common(bed, wall_s, real_s, cpu_s, rss_start)
    finally:
        await bed.raw.close()
    result.update(
        invocations=_invocation_stats(bed.probe.consumer),
        streamers=naive.streamers,
        rows_upserted=naive.inserts,
        waits_429=naive.waits_429,
        scale=scenario.streamers / scenario.baseline_streamers,
    )
    return result


async def _common(bed: Bed, wall_s: float, real_s: float, cpu_s: float, rss_start: float) -> dict[str, Any]:
    """What both sides measure the same way."""
    stored = {row["id"] for row in await bed.raw.all("SELECT id FROM clips")}
    probe = bed.probe
    points = probe.points_at
    expected = expected_clips(bed.candidates, probe.first_fetch, bed.clock.now(), bed.lookback_s)
    return {
        "wall_s": wall_s,
        "real_s": real_s,
        "cpu_s": cpu_s,  # every thread: the crawler, the emulated Twitch and the database
        "clock_factor": bed.clock.factor,
        "helix_calls": probe.totals.helix,
        "helix_api_requests": probe.helix_requests,
        "upkeep_calls": probe.upkeep_calls,  # of helix_calls: Get Clips by id and Get Games after the crawls
        "http_429": probe.statuses.get(429, 0),
        "statuses": {str(k): v for k, v in sorted(probe.statuses.items())},
        "d1_calls": probe.totals.d1,
        "queue_sends": probe.totals.queue,
        "pages": probe.clip_pages,
        "points": len(points),
        "points_span_s": (max(points) - min(points)) if points else 0.0,
        "expected_clips": sum(len(ids) for ids in expected.values()),
        "expected_pages": [pages_needed(len(ids)) for ids in expected.values()],
        "stored_clips": len(stored),
        "lost": sum(len(ids - stored) for ids in expected.values()),
        "database_mb": await _database_mb(bed.raw),
        "rss_start_mb": rss_start,
        "peak_memory_mb": peak_rss_mb(),
    }


def expected_clips(
    candidates: dict[str, list[tuple[float, str]]],
    first_fetch: dict[str, float],
    end: float,
    lookback_s: float,
) -> dict[str, set[str]]:
    """What each streamer is owed: clips visible at the start, created in the lookback before its first page.

    The lookback slides while a long run goes on, so a streamer crawled ten minutes in no longer owes
    the clips that aged out of its 24 hours meanwhile. A streamer never fetched owes the clips of the
    lookback before the run's end.
    """
    owed = {}
    for streamer, clips in candidates.items():
        since = first_fetch.get(streamer, end) - lookback_s
        owed[streamer] = {clip for created, clip in clips if created >= since}
    return owed


async def _database_mb(db: SerialSqlite | SqliteProcess) -> float:
    pages = await db.first("PRAGMA page_count")
    size = await db.first("PRAGMA page_size")
    return float((pages or {}).get("page_count", 0) * (size or {}).get("page_size", 0)) / (1024 * 1024)


def _matches(log: InvocationLog, tallies: Sequence[Tally]) -> bool:
    """Whether the crawler's own per-invocation budget counts equal the ones measured from outside."""
    pairs = [(log.subrequests, [t.total for t in tallies])]
    for kind in ("external", "internal"):  # logged per kind by newer runners
        if hasattr(log, kind):
            pairs.append((getattr(log, kind), [getattr(t, kind) for t in tallies]))
    return all(sorted(own) == sorted(measured) for own, measured in pairs)


def _tally(tallies: Sequence[Tally]) -> dict[str, Any]:
    first = [t.before_first_send or (t.helix, t.d1) for t in tallies]
    return {
        "helix": sum(t.helix for t in tallies),
        "d1": sum(t.d1 for t in tallies),
        "queue": sum(t.queue for t in tallies),
        "helix_before_send": sum(h for h, _ in first),
        "d1_before_send": sum(d for _, d in first),
        "steps_before_send": [tuple(step) for t in tallies for step in t.steps],
    }


def _invocation_stats(tallies: Sequence[Tally]) -> dict[str, Any]:
    totals = [t.total for t in tallies]
    return {
        "count": len(tallies),
        "subrequests_max": max(totals, default=0),
        "subrequests_p95": percentile(totals, 95),
        "subrequests_p50": percentile(totals, 50),
        "external_max": max((t.external for t in tallies), default=0),
        "internal_max": max((t.internal for t in tallies), default=0),
        "d1_max": max((t.d1 for t in tallies), default=0),
        # The first D1 call of a crawl invocation is its claim; the rest write pages or hand the job back.
        # (The baseline's one invocation has no message: its every call counts.)
        "d1_after_claim": sum(max(0, t.d1 - 1) for t in tallies if t.message in ("crawl", "")),
        "by_message": {
            kind: sum(1 for t in tallies if t.message == kind)
            for kind in sorted({t.message for t in tallies if t.message})
        },
    }


def percentile(values: Sequence[int], pct: float) -> int:
    """Nearest-rank percentile: the smallest value with at least pct% of the values at or below it."""
    if not values:
        return 0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def run_side(side: str, scenario: Scenario, config: BenchConfig) -> dict[str, Any]:
    """Run one side to completion in a fresh event loop (the entry point of a worker process)."""
    if side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}, got {side!r}")
    previous = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    try:
        run = run_design if side == "design" else run_baseline
        return asyncio.run(run(scenario, config))
    finally:
        sys.setswitchinterval(previous)
