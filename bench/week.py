"""The simulated week: 200 streamers with a realistic activity mix, crawled hourly for 7 days, side by side:
the adaptive schedule as shipped (every view count exact), the same with the opt-in view-count step, and the
naive design.

Rows read and written are D1's own figures: calibration crawls run on Miniflare's D1 (local/d1_meter.py), one
per clip upsert, and give per statement kind the rows read per statement and rows written per changed row; the
week itself runs on SQLite (Miniflare's D1 answers in ~13 ms a round trip, too slow for ~170k round trips) and
is metered with those figures. Usage: python -m bench.week [--streamers 200] [--days 7] [--out bench/week]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from local.activity_mix import DAY, HOUR, START, WeekActivity, profile_of
from local.clock import VirtualClock
from local.cost_model import Projection, Usage, day_against_free, queue_operations
from local.d1_calibration import CLIP_UPSERT, Calibration, CountingDatabase
from local.d1_meter import MiniflareD1, node_available
from local.emulated import emulator_client, emulator_settings
from local.emulator import EmulatorConfig, HelixWorld, create_emulator_app
from local.emulator.deletions import ClipDeletions
from local.runner import LocalRunner
from local.sqlite_db import SqliteDatabase
from producer.streamers import add_streamers
from shared import store
from shared.config import Settings
from shared.ports import Database
from shared.timefmt import parse_rfc3339

NAIVE_TIERS = "1,1,1"
# Clips get most of their views in their first hours; the emulator's default (linear forever) is kept for
# a stress figure, where every clip in the window changes every hour.
VIEWS_SETTLE_S = 3 * HOUR
# Hour 0 is the first crawl (a 24 h backfill: all inserts); hours 1-12 are the steady crawls compared, two
# whole
# cycles of the opt-in step's view-count max age (6 h), so the rows it rewrites late are in the figure.
CALIBRATION_HOURS = 13
Tiering = tuple[str, str]  # CLIPCRAWLER_TIER_HOURS, CLIPCRAWLER_TIER_ACTIVE_WITHIN_HOURS


# The ways of writing clips compared (bench only): as shipped, changed-only with every view count exact; the
# opt-in saving, changed-only with view counts rewritten once they moved by 5% or are 6 h old
# (CLIPCRAWLER_VIEW_COUNT_STEP=0.05, CLIPCRAWLER_VIEW_COUNT_MAX_AGE_HOURS=6); and as it was before, every
# conflicting row rewritten (store.ClipWrites.REWRITE_EVERYTHING, passed to the page write by the settings).
@dataclass(frozen=True)
class ClipWrites:
    """One way of writing a page of clips: the settings it runs with (the upsert among them)."""

    writes: store.ClipWrites
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def settings(self) -> tuple[tuple[str, Any], ...]:
        return (("clip_writes", self.writes.value), *self.options)


OPT_IN_STEP = (("view_count_step", 0.05), ("view_count_max_age_hours", 6))
UPSERTS = {
    "changed-only": ClipWrites(store.ClipWrites.CHANGED_ONLY),
    "changed-only, view-count step": ClipWrites(store.ClipWrites.CHANGED_ONLY, OPT_IN_STEP),
    "rewrite-everything": ClipWrites(store.ClipWrites.REWRITE_EVERYTHING),
}


def clip_upsert(variant: str) -> ClipWrites:
    """One of UPSERTS, by name."""
    if variant not in UPSERTS:
        raise ValueError(f"unknown upsert variant {variant!r}; expected one of {sorted(UPSERTS)}")
    return UPSERTS[variant]


@dataclass(frozen=True)
class Schedule:
    """One way of running the week: which streamers each tick crawls, and how clips are written."""

    name: str
    tiers: Tiering | None  # None: the configured defaults
    upsert: str


SHIPPED = Schedule("adaptive", None, "changed-only")
STEPPED = Schedule("adaptive, view-count step", None, "changed-only, view-count step")
NAIVE = Schedule("naive", (NAIVE_TIERS, "24,168"), "rewrite-everything")
SCHEDULES = (SHIPPED, STEPPED, NAIVE)


# --- one deployment ------------------------------------------------------------------------------------

# Twitch deletes clips over time (issue 15): a tenth of all clips, each within 60 days of its creation, so the
# week pays for the verification (Get Clips by id) it needs; Get Games is counted beside it.
DELETION_RATE = 0.1
DELETION_AFTER_S = (HOUR, 60 * DAY)
UPKEEP_CALLS = ("by_id", "games")


@dataclass
class Deployment:
    clock: VirtualClock
    world: HelixWorld
    db: Database
    runner: LocalRunner
    helix_calls: list[int]
    upkeep_calls: dict[str, int] = field(default_factory=lambda: dict.fromkeys(UPKEEP_CALLS, 0))

    async def close(self) -> None:
        await self.runner.http.aclose()


async def deploy(
    db: Database,
    streamers: int,
    seed: int,
    *,
    tiers: Tiering | None,
    writes: ClipWrites,
    views_settle_s: float | None = VIEWS_SETTLE_S,
) -> Deployment:
    clock = VirtualClock(START)
    world = HelixWorld(
        seed,
        streamers,
        (10, 30),
        clock=clock,
        activity=WeekActivity(seed),
        views_settle_s=views_settle_s,
        deletions=ClipDeletions(DELETION_RATE, DELETION_AFTER_S, seed),
    )
    config = EmulatorConfig(rate_limit_points=100_000)
    helix_calls = [0]
    upkeep_calls = dict.fromkeys(UPKEEP_CALLS, 0)

    def wrap(name: str, handler: Any) -> Any:
        async def counted(request: Any) -> Any:
            if name not in ("token", "validate"):
                helix_calls[0] += 1
            if name == "clips" and "id" in request.query_params:
                upkeep_calls["by_id"] += 1
            elif name == "games":
                upkeep_calls["games"] += 1
            return await handler(request)

        return counted

    http = emulator_client(create_emulator_app(world, config, wrap=wrap))
    settings = emulator_settings(Settings(), config).with_(http_backoff_seconds=0, **dict(writes.settings))
    if tiers is not None:
        settings = settings.with_(tier_hours=tiers[0], tier_active_within_hours=tiers[1])
    runner = LocalRunner(db, http, settings, clock, concurrency=50, seed=seed)
    await add_streamers(db, http, settings, clock, [s.login for s in world.all_streamers()])
    helix_calls[0] = 0
    return Deployment(clock, world, db, runner, helix_calls, upkeep_calls)


async def _new_clips(read: Callable[..., Awaitable[list[dict[str, Any]]]]) -> int:
    """Clips inserted by every run so far (the runs' own exact counter), read with `read`.

    The upsert's changed rows are the new clips plus the rewritten ones, whichever way clips are written.
    """
    rows = await read("SELECT coalesce(sum(clips_new), 0) AS new FROM runs")
    return int(rows[0]["new"])


def _queue_counts(runner: LocalRunner) -> tuple[int, int, int]:
    """Messages sent, retries and consumer invocations so far, over the queue and its dead-letter queue."""
    q, d = runner.queue.stats, runner.dlq.stats
    return q.sent + d.sent, q.retried + d.retried, q.invocations + d.invocations


# --- calibration on Miniflare's D1 ---------------------------------------------------------------------


async def calibrate(
    streamers: int,
    seed: int,
    *,
    upsert: str,
    hours: int = CALIBRATION_HOURS,
    views_settle_s: float | None = VIEWS_SETTLE_S,
) -> dict[str, Any]:
    """`hours` hourly crawls of every streamer on Miniflare's D1: D1's meter for each, and by
    statement kind.
    """
    db = await MiniflareD1.open()
    try:
        crawls = []
        writes = clip_upsert(upsert)
        dep = await deploy(
            db, streamers, seed, tiers=NAIVE.tiers, writes=writes, views_settle_s=views_settle_s
        )
        for h in range(hours):
            dep.clock.set(START + h * HOUR)
            before = db.meter.snapshot()
            clips_before = list(db.meter.by_kind.get(CLIP_UPSERT, [0, 0, 0, 0]))
            await dep.runner.crawl(scheduled_time=dep.clock.now())
            read, written = (a - b for a, b in zip(db.meter.snapshot(), before, strict=True))
            _, _, clips, changes = (
                a - b
                for a, b in zip(db.meter.by_kind.get(CLIP_UPSERT, [0, 0, 0, 0]), clips_before, strict=True)
            )
            new = await _new_clips(db.observe) - sum(c["clips_new"] for c in crawls)
            crawls.append(
                {
                    "hour": h,
                    "rows_read": read,
                    "rows_written": written,
                    "clip_rows_written": clips,
                    "clips_new": new,
                    "clips_rewritten": changes - new,
                }
            )
        await dep.close()
        return {
            "upsert": upsert,
            "crawls": crawls,
            "round_trips": db.meter.round_trips,
            "by_kind": {
                k: dict(zip(("statements", "rows_read", "rows_written", "changes"), v, strict=True))
                for k, v in sorted(db.meter.by_kind.items())
            },
            "calibration": Calibration.from_meter(
                db.meter, [(c["clip_rows_written"], c["clips_new"], c["clips_rewritten"]) for c in crawls]
            ),
        }
    finally:
        await db.close()


# --- the week ------------------------------------------------------------------------------------------


async def simulate(
    streamers: int,
    days: int,
    seed: int,
    schedule: Schedule,
    calibration: Calibration,
    *,
    progress: bool = False,
) -> dict[str, Any]:
    """Hourly crawls for `days` days (plus the closing tick); per-day usage, misses and freshness."""
    sqlite = await SqliteDatabase.open()
    db = CountingDatabase(sqlite)
    dep = await deploy(db, streamers, seed, tiers=schedule.tiers, writes=UPSERTS[schedule.upsert])
    db.take()
    per_day = [Usage() for _ in range(days)]
    upkeep_per_day = [dict.fromkeys(UPKEEP_CALLS, 0) for _ in range(days)]
    crawled = [0] * days
    by_kind: dict[str, list[float]] = {}  # kind -> D1 rows [read, written] a day, averaged over the week
    last_q = _queue_counts(dep.runner)
    last_new = await _new_clips(sqlite.all)
    for h in range(days * 24 + 1):
        day = min(h // 24, days - 1)  # the closing tick counts in the last day
        dep.clock.set(START + h * HOUR)
        started = await dep.runner.crawl(scheduled_time=dep.clock.now())
        crawled[day] += started.jobs
        q = _queue_counts(dep.runner)
        sent, retried, invocations = (a - b for a, b in zip(q, last_q, strict=True))
        last_q = q
        new_so_far = await _new_clips(sqlite.all)
        new, last_new = new_so_far - last_new, new_so_far
        read = written = 0.0
        for kind, (r, w) in calibration.charge(db.take(), new).items():
            read, written = read + r, written + w
            tally = by_kind.setdefault(kind, [0.0, 0.0])
            tally[0], tally[1] = tally[0] + r / days, tally[1] + w / days
        per_day[day] = per_day[day] + Usage(
            worker_requests=1 + invocations,
            queue_operations=queue_operations(sent, retried),
            d1_rows_read=read,
            d1_rows_written=written,
            helix_calls=dep.helix_calls[0],
        )
        dep.helix_calls[0] = 0
        for kind in UPKEEP_CALLS:
            upkeep_per_day[day][kind] += dep.upkeep_calls[kind]
            dep.upkeep_calls[kind] = 0
        if progress and h % 24 == 23:
            print(f"{schedule.name}: day {day + 1}/{days} simulated", file=sys.stderr)
    outcome = await _judge(dep, days)
    outcome["upkeep"] = {"per_day": upkeep_per_day, **await _judge_deletions(dep)}
    await dep.close()
    await sqlite.close()
    names = list(Usage.__dataclass_fields__)
    worst = Usage(*(max(getattr(d, f) for d in per_day) for f in names))
    return {
        "schedule": schedule.name,
        "tiers": "/".join(schedule.tiers) if schedule.tiers else "defaults",
        "upsert": schedule.upsert,
        "streamers": streamers,
        "days": days,
        "jobs": sum(crawled),
        "d1_rows_per_day_by_kind": {
            k: {"read": round(v[0]), "written": round(v[1])} for k, v in sorted(by_kind.items())
        },
        "per_day": [asdict(u) for u in per_day],
        "worst_day": asdict(worst),
        "free_quotas_worst_day": day_against_free(worst),
        **outcome,
    }


async def _judge(dep: Deployment, days: int) -> dict[str, Any]:
    """Every clip the emulator made in the week against the database: misses and freshness by class."""
    end = START + days * DAY
    stored = {r["id"]: r for r in await dep.db.all("SELECT id, created_at, first_seen_at FROM clips")}
    lags: dict[str, list[float]] = {}
    missed: list[str] = []
    created = 0
    for streamer in dep.world.all_streamers():
        profile = profile_of(streamer.index)
        for clip in dep.world.clips(streamer.id, START, end):
            created += 1
            row = stored.get(clip["id"])
            if row is None:
                missed.append(clip["id"])
                continue
            lag = parse_rfc3339(row["first_seen_at"]) - parse_rfc3339(clip["created_at"])
            lags.setdefault(profile, []).append(lag)
    # "Active that day" is the daily streamers; the rest stream on a few days or wake once.
    active = lags.get("daily", [])
    quiet = [lag for profile, values in lags.items() if profile != "daily" for lag in values]
    profiles: dict[str, int] = {}
    for s in dep.world.all_streamers():
        profiles[profile_of(s.index)] = profiles.get(profile_of(s.index), 0) + 1
    return {
        "clips_created": created,
        "clips_stored": len(stored),
        "missed": len(missed),
        "missed_ids": missed[:20],
        "freshness_p95_active_s": _p95(active),
        "freshness_p95_quiet_s": _p95(quiet),
        "freshness_max_s": max(active + quiet, default=0.0),
        "profiles": profiles,
        "freshness_p95_by_profile_s": {p: _p95(v) for p, v in sorted(lags.items())},
    }


async def _judge_deletions(dep: Deployment) -> dict[str, Any]:
    """The archive's deletion marks against the emulator's truth at the end of the week."""
    settings = dep.runner.settings
    schedule, early = settings.check_schedule, settings.verify_early_hours * HOUR
    slowest = max(settings.tiers.every_hours) * HOUR  # a check waits at most for the streamer's next crawl
    rows = await dep.db.all("SELECT id, created_at, deleted_at FROM clips")
    wrong = due_unmarked = marked = deleted = 0
    for row in rows:
        span = dep.world.deletion(row["id"])
        gone = span is not None and span[0] <= dep.clock.now()
        deleted += gone
        if row["deleted_at"] is not None:
            marked += 1
            wrong += not gone
        elif gone and span is not None:
            bound = schedule.next_after(parse_rfc3339(row["created_at"]), span[0] + early) + slowest
            due_unmarked += bound <= dep.clock.now()
    return {
        "clips_deleted_by_twitch": deleted,
        "clips_marked": marked,
        "live_clips_marked": wrong,
        "deleted_past_their_check_unmarked": due_unmarked,
    }


def _p95(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


# --- the report ----------------------------------------------------------------------------------------


async def run_week(
    streamers: int = 200,
    days: int = 7,
    seed: int = 7,
    *,
    calibrate_streamers: int | None = None,
    progress: bool = False,
    schedules: Sequence[Schedule] = SCHEDULES,
) -> dict[str, Any]:
    """Calibrate each clip upsert on Miniflare's D1 (when node is there), then the week under each
    schedule.
    """
    calibrations = {variant: Calibration() for variant in UPSERTS}
    measured: dict[str, Any] = {}
    variants = [v for v in UPSERTS if any(s.upsert == v for s in schedules)]
    if node_available() and len(variants) < len(UPSERTS):
        # Only some schedules: calibrate their writes alone (no side-by-side comparison of the ways of
        # writing).
        n = calibrate_streamers or streamers
        for variant in variants:
            if progress:
                print(f"calibrating on Miniflare's D1: {variant}", file=sys.stderr)
            calibrations[variant] = (await calibrate(n, seed, upsert=variant))["calibration"]
        measured = {"streamers": n, "partial": variants}
    elif node_available():
        n = calibrate_streamers or streamers
        runs = {}
        for variant in UPSERTS:
            if progress:
                print(f"calibrating on Miniflare's D1: {variant}", file=sys.stderr)
            runs[variant] = await calibrate(n, seed, upsert=variant)
            calibrations[variant] = runs[variant]["calibration"]
        linear = [
            steady_crawl(await calibrate(n, seed, upsert=v, hours=3, views_settle_s=None))
            for v in ("changed-only", "rewrite-everything")
        ]
        steady = {v: steady_crawl(r) for v, r in runs.items()}
        changed, rewrite = steady["changed-only"], steady["rewrite-everything"]
        measured = {
            "streamers": n,
            "runs": {v: _plain(r) for v, r in runs.items()},
            "steady": steady,
            "steady_crawl_rows_written": _ratio(changed["rows_written"], rewrite["rows_written"]),
            "steady_crawl_clip_upsert_rows_written": _ratio(
                changed["clip_rows_written"], rewrite["clip_rows_written"]
            ),
            "linear_views_steady_crawl_rows_written": _ratio(*(c["rows_written"] for c in linear)),
        }
    weeks = [
        await simulate(streamers, days, seed, s, calibrations[s.upsert], progress=progress) for s in schedules
    ]
    return {
        "seed": seed,
        "miniflare_calibration": measured,
        "calibration": {v: asdict(c) for v, c in calibrations.items()},
        "weeks": weeks,
    }


def steady_crawl(run: dict[str, Any]) -> dict[str, float]:
    """D1's figures for the mean crawl after the first (which backfills 24 h and so only inserts)."""
    steady = run["crawls"][1:]
    return {
        key: sum(c[key] for c in steady) / len(steady) if steady else 0.0
        for key in ("rows_read", "rows_written", "clip_rows_written")
    }


def _ratio(changed: float, rewrite: float) -> dict[str, Any]:
    return {
        "changed_only": changed,
        "rewrite_everything": rewrite,
        "ratio": changed / rewrite if rewrite else None,
    }


def _plain(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k != "calibration"}


def verdicts(week: dict[str, Any], measured: dict[str, Any]) -> list[tuple[str, bool]]:
    """The issue's targets for one adaptive week, each with whether it was met."""
    upkeep = week.get("upkeep") or {}
    out = [
        ("0 clips missed", week["missed"] == 0),
        ("p95 freshness <= 1 h, daily streamers", week["freshness_p95_active_s"] <= HOUR),
        ("p95 freshness <= 12 h, the rest", week["freshness_p95_quiet_s"] <= 12 * HOUR),
    ]
    if upkeep:
        out += [
            ("no live clip marked deleted", upkeep["live_clips_marked"] == 0),
            (
                "every clip deleted past its next check is marked",
                upkeep["deleted_past_their_check_unmarked"] == 0,
            ),
        ]
    out += [
        (f"{q['metric']} >= 20% Free headroom on the worst day ({q['headroom']:.0%})", q["headroom"] >= 0.2)
        for q in week["free_quotas_worst_day"]
    ]
    steady = measured.get("steady") or {}
    # The "half of rewrite-everything" target belongs to the opt-in step: exact view counts, the default,
    # rewrite every clip whose views moved, which in a 24 h lookback is most of them (reported, not a target).
    if week["upsert"] == STEPPED.upsert and week["upsert"] in steady and "rewrite-everything" in steady:
        mine, rewrite = steady[week["upsert"]], steady["rewrite-everything"]
        key = "clip_rows_written"
        ratio = mine[key] / rewrite[key] if rewrite[key] else 0.0
        out.append(
            (
                (
                    f"D1 rows written by the clip upserts of a steady crawl, {week['upsert']} <= half of "
                    f"rewrite-everything ({mine[key]:,.0f} vs {rewrite[key]:,.0f}: {ratio:.0%})"
                ),
                ratio <= 0.5,
            )
        )
    return out


def render(report: dict[str, Any]) -> str:
    weeks, cal = report["weeks"], report["miniflare_calibration"]
    first = weeks[0]
    lines = [
        (
            f"# Simulated week: {first['streamers']} streamers, {first['days']} days, hourly cron "
            f"(seed {report['seed']})"
        ),
        "",
        "Generated by `python -m bench.week`. Activity mix: "
        + ", ".join(f"{v} {k}" for k, v in sorted(first["profiles"].items()))
        + " (daily: one 3-6 h stream every day; bursty: such a stream on ~30% of days; dormant: none; "
        "waker: dormant, then one stream on day 4-6). Clips appear 5-120 s late, video ids 25-35 min late; "
        f"views grow and settle over ~{VIEWS_SETTLE_S // HOUR} h. D1 rows are Miniflare-calibrated (below).",
        "",
    ]
    for week in weeks:
        if week["schedule"] != NAIVE.name:
            lines += [f"## Targets: {week['schedule']} (tiers {week['tiers']}, {week['upsert']} upsert)", ""]
            lines += [f"- [{'x' if ok else ' '}] {name}" for name, ok in verdicts(week, cal)]
            lines.append("")
    head = "| | " + " | ".join(w["schedule"] for w in weeks) + " |"
    lines += ["## Side by side", "", head, "|---" + "|---:" * len(weeks) + "|"]
    lines.append("| tiers (every / active within, h) | " + " | ".join(w["tiers"] for w in weeks) + " |")
    lines.append("| clip upsert | " + " | ".join(w["upsert"] for w in weeks) + " |")
    for label, key in (
        ("crawl jobs in the week", "jobs"),
        ("clips created by the emulator", "clips_created"),
        ("clips missed", "missed"),
    ):
        lines.append(f"| {label} | " + " | ".join(f"{w[key]:,}" for w in weeks) + " |")
    for label, key in (
        ("p95 freshness, daily streamers", "freshness_p95_active_s"),
        ("p95 freshness, the rest", "freshness_p95_quiet_s"),
        ("max freshness", "freshness_max_s"),
    ):
        lines.append(f"| {label} | " + " | ".join(f"{w[key] / 60:.0f} min" for w in weeks) + " |")
    lines += [
        "",
        "## Free-plan daily quotas, worst day of the week (day 1 includes the first backfill)",
        "",
        "| quota | Free/day | " + " | ".join(f"{w['schedule']} | headroom" for w in weeks) + " |",
        "|---|---:" + "|---:|---:" * len(weeks) + "|",
    ]
    for i, quota in enumerate(first["free_quotas_worst_day"]):
        cells = []
        for w in weeks:
            q = w["free_quotas_worst_day"][i]
            cells.append(f"{q['used']:,.0f} | {q['headroom']:.0%}{' **exceeded**' if q['exceeded'] else ''}")
        lines.append(f"| {quota['metric']} | {quota['quota']:,} | " + " | ".join(cells) + " |")
    lines.append(
        "| helix_calls | – | " + " | ".join(f"{w['worst_day']['helix_calls']:,.0f} | –" for w in weeks) + " |"
    )
    lines += [
        "",
        (
            "## Deleted clips and games (a tenth of all clips deleted within 60 days of creation; "
            "checks of clips out of the lookback ride on each streamer's completed crawl)"
        ),
        "",
        "| | " + " | ".join(w["schedule"] for w in weeks) + " |",
        "|---" + "|---:" * len(weeks) + "|",
    ]
    for label, pick in (
        ("Get Clips by id calls/day, mean", lambda u: _mean(u, "by_id")),
        ("Get Clips by id calls/day, worst", lambda u: _worst(u, "by_id")),
        ("Get Games calls/day, mean", lambda u: _mean(u, "games")),
        ("extra Helix calls/day, worst (both)", lambda u: max(d["by_id"] + d["games"] for d in u["per_day"])),
        ("clips deleted by Twitch by the end", lambda u: u["clips_deleted_by_twitch"]),
        ("clips marked deleted", lambda u: u["clips_marked"]),
        ("live clips marked (must be 0)", lambda u: u["live_clips_marked"]),
        ("deleted, past their check, unmarked (must be 0)", lambda u: u["deleted_past_their_check_unmarked"]),
    ):
        lines.append(
            f"| {label} | "
            + " | ".join(f"{pick(w['upkeep']):,.0f}" if "upkeep" in w else "–" for w in weeks)
            + " |"
        )
    lines += [
        "",
        "## Cost model: the week's mean day, and a 30-day month, against both plans",
        "",
        "| schedule | metric | mean day | Free/day | headroom | month | Paid included/month | headroom |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for w in weeks:
        mean_day = Usage(
            *(sum(d[f] for d in w["per_day"]) / len(w["per_day"]) for f in Usage.__dataclass_fields__)
        )
        for row in Projection(mean_day, 1).rows():
            lines.append(
                f"| {w['schedule']} | {row['metric']} | {row['day']:,.0f} | {_num(row['free_daily'])} | "
                f"{_pct(row['free_headroom'])} | {row['month']:,.0f} | {_num(row['paid_monthly'])} | "
                f"{_pct(row['paid_headroom'])} |"
            )
    for label, measured_cost in (report.get("cost_command") or {}).items():
        lines += [
            "",
            (
                f"`clipcrawler cost --streamers {measured_cost['streamers']}{label}` (the busy case: every "
                "streamer clips around the clock, so every one stays hourly; measured on Miniflare's D1):"
            ),
            "",
            "| metric | crawl | day | month | Free/day | headroom | Paid included/month | headroom |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in measured_cost["projection"]["table"]:
            lines.append(
                f"| {row['metric']} | {row['crawl']:,.0f} | {row['day']:,.0f} | {row['month']:,.0f} | "
                f"{_num(row['free_daily'])} | {_pct(row['free_headroom'])} | {_num(row['paid_monthly'])} | "
                f"{_pct(row['paid_headroom'])} |"
            )
    lines += [
        "",
        "D1 rows written a day by statement kind (week average): "
        + "; ".join(
            f"{w['schedule']}: "
            + ", ".join(
                f"{k} {v['written']:,}" for k, v in w["d1_rows_per_day_by_kind"].items() if v["written"]
            )
            for w in weeks
        ),
        "",
    ]
    if cal.get("partial"):
        lines += [
            (
                f"D1 rows are Miniflare-calibrated ({cal['streamers']} streamers, {CALIBRATION_HOURS} hourly "
                "crawls) "
                f"for {', '.join(cal['partial'])} only: a run of some schedules (--schedules), without the "
                "side-by-side metering of every way of writing clips."
            ),
            "",
        ]
        return "\n".join(lines)
    if not cal:
        lines += [
            (
                "D1 rows are NOT Miniflare-metered in this report: node/miniflare was missing "
                "(each statement charged 1 row read, 2 rows written per changed row)."
            ),
            "",
        ]
        return "\n".join(lines)
    whole, clips, lin = (
        cal["steady_crawl_rows_written"],
        cal["steady_crawl_clip_upsert_rows_written"],
        cal["linear_views_steady_crawl_rows_written"],
    )
    lines += [
        "## D1 metering (Miniflare's D1, `meta.rows_read` / `meta.rows_written`)",
        "",
        (
            f"Calibration: {cal['streamers']} streamers, every one crawled hourly at hours 0 (the first "
            "crawl, a "
            f"24 h backfill) to {CALIBRATION_HOURS - 1} on Miniflare's D1, once per way of writing clips, "
            "over "
            "the same emulated clips. The week itself runs on SQLite (a Miniflare D1 round trip takes ~13 "
            "ms, "
            "and a naive week is ~170,000 of them) and charges each statement the rows read per statement "
            "and rows written per changed row that D1 metered for its kind in the calibration with the same "
            "writes."
        ),
        "",
        "| way of writing clips | first crawl: rows written | steady crawl (mean of hours 1-"
        f"{CALIBRATION_HOURS - 1}): rows read | rows written | of which clip upserts |",
        "|---|---:|---:|---:|---:|",
    ]
    for variant, run in cal["runs"].items():
        mean = cal["steady"][variant]
        lines.append(
            f"| {variant} | {run['crawls'][0]['rows_written']:,} | {mean['rows_read']:,.0f} | "
            f"{mean['rows_written']:,.0f} | {mean['clip_rows_written']:,.0f} |"
        )
    stepped = cal["steady"].get(STEPPED.upsert)
    rewrite_clips = cal["steady"]["rewrite-everything"]["clip_rows_written"]
    lines += [
        "",
        (
            f"A steady crawl's clip upserts write {clips['changed_only']:,.0f} rows with the shipped writes "
            f"(every view count exact) against {clips['rewrite_everything']:,.0f} when every clip is "
            f"rewritten ({clips['ratio']:.0%}): most clips in the 24 h lookback still gain a few views an "
            "hour"
            + (
                f"; with the opt-in view-count step (5% or 6 h), {stepped['clip_rows_written']:,.0f} "
                f"({stepped['clip_rows_written'] / rewrite_clips:.0%}), at the price of stored view counts "
                "up to 5% or 6 h behind Twitch's"
                if stepped and rewrite_clips
                else ""
            )
            + f". The whole crawl: {whole['changed_only']:,.0f} vs {whole['rewrite_everything']:,.0f} "
            f"({whole['ratio']:.0%}); the rest is each job's bookkeeping (job row, claim, finish, run "
            "counters, streamer schedule), the same however clips are written. With the emulator's default "
            "views (linear growth forever), changed-only against rewrite-everything over a whole crawl: "
            f"{lin['changed_only']:,.0f} vs {lin['rewrite_everything']:,.0f} ({lin['ratio']:.0%})."
        ),
        "",
        "Per statement kind, shipped writes, the whole calibration: statements, rows read, rows written, "
        "changed rows:",
        "",
        "| kind | statements | rows read | rows written | changes |",
        "|---|---:|---:|---:|---:|",
    ]
    for kind, v in cal["runs"]["changed-only"]["by_kind"].items():
        lines.append(
            f"| {kind} | {v['statements']:,} | {v['rows_read']:,} | {v['rows_written']:,} | {v['changes']:,} "
            "|"
        )
    return "\n".join(lines) + "\n"


def _mean(upkeep: dict[str, Any], kind: str) -> float:
    days = upkeep["per_day"]
    return sum(d[kind] for d in days) / len(days) if days else 0.0


def _worst(upkeep: dict[str, Any], kind: str) -> float:
    return max((d[kind] for d in upkeep["per_day"]), default=0)


def _num(value: int | None) -> str:
    return "–" if value is None else f"{value:,}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.week", description=__doc__)
    parser.add_argument("--streamers", type=int, default=200)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--out", default=str(Path(__file__).resolve().parent / "week"), help="writes OUT.md and OUT.json"
    )
    parser.add_argument("--render", action="store_true", help="only rewrite OUT.md from an existing OUT.json")
    parser.add_argument(
        "--schedules",
        default=",".join(s.name for s in SCHEDULES),
        help="comma-separated schedules to run (default: all, side by side)",
    )
    args = parser.parse_args(argv)
    if args.render:
        report = json.loads(Path(args.out + ".json").read_text())
    else:
        chosen = [s for s in SCHEDULES if s.name in args.schedules.split(",")]
        if not chosen:
            parser.error(f"--schedules {args.schedules!r} names none of {[s.name for s in SCHEDULES]}")
        report = asyncio.run(run_week(args.streamers, args.days, args.seed, progress=True, schedules=chosen))
        Path(args.out + ".json").write_text(json.dumps(report, indent=2) + "\n")
    Path(args.out + ".md").write_text(render(report))
    print(render(report))
    shipped = next(w for w in report["weeks"] if w["schedule"] == SHIPPED.name)
    return 0 if all(ok for _, ok in verdicts(shipped, report["miniflare_calibration"])) else 1


if __name__ == "__main__":
    raise SystemExit(main())
