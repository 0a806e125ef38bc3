from __future__ import annotations

import math
from typing import Any

import pytest

from bench.week import (
    DAY,
    HOUR,
    NAIVE,
    SHIPPED,
    START,
    STEPPED,
    UPSERTS,
    Calibration,
    WeekActivity,
    clip_upsert,
    profile_of,
    render,
    simulate,
    verdicts,
)
from local.clock import VirtualClock
from local.cost_model import queue_operations
from local.d1_calibration import _two_rates
from local.emulator import HelixWorld
from shared import store
from shared.timefmt import parse_rfc3339


@pytest.mark.parametrize(
    ("index", "profile"),
    [(0, "daily"), (1, "bursty"), (2, "bursty"), (3, "waker"), (7, "dormant"), (15, "waker"), (4, "daily")],
)
def test_profiles(index: int, profile: str) -> None:
    assert profile_of(index) == profile


def test_the_mix_is_a_quarter_daily_and_the_rest_bursty_or_dormant() -> None:
    counts: dict[str, int] = {}
    for i in range(200):
        counts[profile_of(i)] = counts.get(profile_of(i), 0) + 1
    assert counts["daily"] == 50 and counts["bursty"] == 100 and counts["dormant"] + counts["waker"] == 50


def test_activity_shapes_the_clips_without_changing_the_default_world() -> None:
    clock = VirtualClock(START + 7 * DAY)
    plain = HelixWorld(3, 8, clock=clock)
    flat = HelixWorld(3, 8, clock=clock, activity=lambda s, h: 1.0)
    week = HelixWorld(3, 8, clock=clock, activity=WeekActivity(3))
    s = plain.all_streamers()
    assert plain.clips(s[0].id, START, START + DAY) == flat.clips(s[0].id, START, START + DAY)
    assert week.clips(s[7].id, START, START + 7 * DAY) == []  # dormant all week
    on_air = {
        h for h in range(int(START // HOUR), int(START // HOUR) + 7 * 24) if WeekActivity(3)(s[0], h) > 0
    }
    assert 7 * 3 <= len(on_air) <= 7 * 6  # one 3-6 h stream a day
    daily = week.clips(s[0].id, START, START + 7 * DAY)
    assert daily and all(math.floor(parse_rfc3339(c["created_at"]) / HOUR) in on_air for c in daily)


def test_views_settle_when_asked_and_grow_linearly_by_default() -> None:
    clock = VirtualClock(START)
    linear = HelixWorld(5, 1, (100, 100), clock=clock)
    settling = HelixWorld(5, 1, (100, 100), clock=clock, views_settle_s=HOUR)
    sid = linear.all_streamers()[0].id
    clock.set(START + 2 * DAY)
    early = {c["id"]: c["view_count"] for c in settling.clips(sid, START, START + DAY)}
    clock.set(START + 3 * DAY)
    later = {c["id"]: c["view_count"] for c in settling.clips(sid, START, START + DAY)}
    grown = {c["id"]: c["view_count"] for c in linear.clips(sid, START, START + DAY)}
    assert early and early == later  # settled long ago
    assert all(grown[i] >= later[i] for i in grown)


async def test_a_one_day_week_runs_and_its_figures_agree() -> None:
    adaptive = await simulate(20, 1, 11, SHIPPED, Calibration())
    naive = await simulate(20, 1, 11, NAIVE, Calibration())
    for week in (adaptive, naive):
        assert week["clips_created"] > 0 and week["missed"] == 0
        assert week["per_day"][0] == week["worst_day"]
        for quota in week["free_quotas_worst_day"]:
            assert quota["headroom"] == pytest.approx(1 - quota["used"] / quota["quota"])
            assert quota["exceeded"] == (quota["used"] > quota["quota"])
        assert week["freshness_p95_active_s"] <= week["freshness_max_s"] <= 2 * HOUR
        by_kind = week["d1_rows_per_day_by_kind"]
        assert sum(v["written"] for v in by_kind.values()) == pytest.approx(
            week["worst_day"]["d1_rows_written"], 1e-3
        )
    assert naive["jobs"] == 20 * 25  # every streamer at every one of the 25 ticks
    assert adaptive["jobs"] < naive["jobs"]
    # One message per job, each delivered once here: 3 operations apiece.
    assert naive["worst_day"]["queue_operations"] == queue_operations(naive["jobs"])
    assert adaptive["worst_day"]["queue_operations"] < naive["worst_day"]["queue_operations"]
    report = render({"seed": 11, "miniflare_calibration": {}, "weeks": [adaptive, naive]})
    assert "NOT Miniflare-metered" in report and "| clips missed | 0 | 0 |" in report
    assert dict(verdicts(adaptive, {}))["0 clips missed"]


def test_the_upsert_variants_differ_only_where_meant_and_production_is_not_patched() -> None:
    shipped = store._UPSERT_CLIPS
    fence: dict[str, Any] = dict(
        now="t",
        page="[]",
        job_id=1,
        run_id=1,
        streamer_id="1",
        lease_token="l",
        views=store.EXACT_VIEW_COUNTS,
    )

    def sql(variant: str) -> str:
        return store.ClipWrites(dict(UPSERTS[variant].settings)["clip_writes"]).statement(**fence).sql

    assert sql("changed-only") == shipped and dict(UPSERTS["changed-only"].settings) == {
        "clip_writes": "changed-only"
    }
    stepped = UPSERTS["changed-only, view-count step"]
    assert sql("changed-only, view-count step") == shipped and dict(stepped.settings) == {
        "clip_writes": "changed-only",
        "view_count_step": 0.05,
        "view_count_max_age_hours": 6,
    }
    rewrite = sql("rewrite-everything")
    assert "WHERE clips." not in rewrite and shipped.startswith(rewrite)
    assert clip_upsert("rewrite-everything") is UPSERTS["rewrite-everything"]
    assert store._UPSERT_CLIPS == shipped
    with pytest.raises(ValueError, match="'nope'"):
        clip_upsert("nope")
    assert (
        SHIPPED.tiers is None and STEPPED.tiers is None and STEPPED.upsert == "changed-only, view-count step"
    )


def test_clip_rows_are_charged_per_new_clip_and_per_rewritten_clip() -> None:
    # A backfill (only new clips) and steady crawls (only rewrites): D1 writes 4 rows a new clip (the row, its
    # primary key and two indexes), 1 a rewrite.
    crawls = [(4 * 87, 87, 0), (25, 0, 25), (4 * 3 + 29, 3, 29)]
    calibration = Calibration(written_per_change={"insert clips": 2.5})
    calibration.written_per_new_clip, calibration.written_per_rewritten_clip = _two_rates(crawls)
    assert calibration.clip_rows_written(10, 100) == pytest.approx(140)
    assert _two_rates([(50, 0, 50)]) == (
        None,
        None,
    )  # one kind of change alone cannot tell the two rates apart
    assert Calibration().clip_rows_written(10, 100) is None  # uncalibrated: the per-change average applies
