"""Per-scenario figures: the design's measurements beside the baseline's, with the floor and the ratios."""

from __future__ import annotations

import math
from typing import Any

from bench.floor import RATE_WINDOW_S, floor
from bench.scenarios import BenchConfig, Scenario

# Counts that grow with the number of streamers; a sampled baseline's are scaled up to the whole scenario.
_ADDITIVE = (
    "helix_calls",
    "helix_api_requests",
    "http_429",
    "d1_calls",
    "pages",
    "rows_upserted",
    "lost",
    "expected_clips",
)


def scenario_figures(
    scenario: Scenario, config: BenchConfig, design: dict[str, Any], baseline: dict[str, Any]
) -> dict[str, Any]:
    """The figures the report and results.json show for one scenario."""
    scale = float(baseline.get("scale", 1.0))
    base = {k: baseline[k] * scale for k in _ADDITIVE}
    # A sampled loop is linear in streamers, unless the whole loop would have to wait for the rate limit.
    base_rate_bound = rate_limit_bound(base["helix_api_requests"], config.rate_limit)
    base_wall = max(baseline["wall_s"] * scale, base_rate_bound)
    # The baseline is one invocation: a full run would make all of its calls in it.
    base_subrequests = baseline["invocations"]["subrequests_max"] * scale
    fl = floor(
        design["expected_pages"],
        concurrency=scenario.concurrency,
        helix_s=config.helix_latency_ms / 1000,
        d1_s=config.d1_latency_ms / 1000,
        producer_steps=design["producer"]["steps_before_send"],
        rate_limit=config.rate_limit,
    )
    inv = design["invocations"]
    wall = design["wall_s"]
    return {
        "title": scenario.title,
        "streamers": scenario.streamers,
        "concurrency": scenario.concurrency,
        "plan": scenario.plan,
        "clock_factor": scenario.clock_factor,
        "wall_s": wall,
        "wall_s_runs": design.get("wall_s_runs", [wall]),
        "real_s": design["real_s"],
        "cpu_s": design["cpu_s"],
        "baseline_cpu_s": baseline["cpu_s"] * scale,
        "baseline_wall_s": base_wall,
        "baseline_real_s": baseline["real_s"],
        "baseline_extrapolated": scale != 1.0,
        "baseline_rate_bound": scale != 1.0 and base_rate_bound > baseline["wall_s"] * scale,
        "baseline_streamers": baseline["streamers"],
        "speedup": ratio(base_wall, wall),
        "floor_s": fl.seconds,
        "floor": fl.as_dict(),
        "wall_over_floor": ratio(wall, fl.seconds),
        "floor_speedup": ratio(base_wall, fl.seconds),
        "helix_calls": design["helix_calls"],
        "helix_calls_needed": design["helix_calls_needed"],
        "calls_over_needed": design["crawls"][0]["over_needed"],
        "calls_per_streamer": ratio(design["helix_calls"], scenario.streamers),
        "crawls": design["crawls"],
        "second_crawl_over_needed": (
            design["crawls"][1]["over_needed"] if len(design["crawls"]) > 1 else None
        ),
        "token_mints": design["token_mints"],
        "revocations": design["revocations"],
        "mints_over_revocations": design["token_mints"] - design["revocations"],
        "helix_api_requests": design["helix_api_requests"],
        "upkeep_calls": design["upkeep_calls"],
        "baseline_helix_calls": base["helix_calls"],
        "pages": design["pages"],
        "baseline_pages": base["pages"],
        "pages_needed": sum(design["expected_pages"]),
        "d1_calls": design["d1_calls"],
        "baseline_d1_calls": base["d1_calls"],
        "queue_sends": design["queue_sends"],
        "consumer_invocations": inv["count"],
        "invocations_by_message": inv["by_message"],
        "subrequests_max": inv["subrequests_max"],
        "subrequests_p95": inv["subrequests_p95"],
        "external_max": inv["external_max"],
        "internal_max": inv["internal_max"],
        "d1_max": inv["d1_max"],
        "baseline_subrequests_max": base_subrequests,
        "d1_calls_per_page": ratio(inv["d1_after_claim"], design["pages"]),
        "d1_calls_per_page_all": ratio(design["d1_calls"], design["pages"]),
        "baseline_d1_calls_per_page": ratio(base["d1_calls"], base["pages"]),
        "rows_upserted": design["rows_upserted"],
        "baseline_rows_upserted": base["rows_upserted"],
        "rows_per_d1_call": ratio(design["rows_upserted"], design["d1_calls"]),
        "baseline_rows_per_d1_call": ratio(base["rows_upserted"], base["d1_calls"]),
        "http_429": design["http_429"],
        "http_429_share": ratio(design["http_429"], design["helix_api_requests"]),
        "baseline_http_429": base["http_429"],
        "baseline_http_429_share": ratio(base["http_429"], base["helix_api_requests"]),
        "rate_limit": config.rate_limit,
        "rate_limit_share": rate_limit_share(design["points"], design["points_span_s"], config.rate_limit),
        "baseline_rate_limit_share": rate_limit_share(
            baseline["points"], baseline["points_span_s"], config.rate_limit
        ),
        "points_per_minute": ratio(design["points"] * 60, design["points_span_s"]),
        "rate_limit_span_s": design["points_span_s"],
        "peak_memory_mb": design["peak_memory_mb"],
        "memory_at_start_mb": design["rss_start_mb"],
        "database_mb": design["database_mb"],
        "baseline_peak_memory_mb": baseline["peak_memory_mb"],
        "lost": design["lost"],
        "expected_clips": design["expected_clips"],
        "stored_clips": design["stored_clips"],
        "baseline_lost": base["lost"],
        "baseline_expected_clips": base["expected_clips"],
        "outcomes": design["outcomes"],
        "jobs": design["jobs"],
        "run": design["run"],
        "subrequests_match_self_reported": design["subrequests_match_self_reported"],
    }


def rate_limit_bound(requests: float, limit: int) -> float:
    """The least time `requests` Helix requests take at `limit` points a minute (the bucket starts full)."""
    return max(0, math.ceil(requests / limit) - 1) * RATE_WINDOW_S


def rate_limit_share(points: int, span_s: float, limit: int) -> float:
    """Points spent over the most the bucket could grant in that time.

    The bucket starts full and refills every minute, so a run spanning s seconds can spend at most
    limit x (1 + floor(s / 60)) points.
    """
    if points == 0:
        return 0.0
    return points / (limit * (1 + int(span_s // RATE_WINDOW_S)))


def ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator, or None when the denominator is 0 (JSON null: not measurable)."""
    return numerator / denominator if denominator else None
