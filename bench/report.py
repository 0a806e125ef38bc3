"""bench/report.md (each figure explained in a sentence) and bench/results.json."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.scenarios import BenchConfig
from shared.config import PLAN_LIMITS

Figures = Mapping[str, Any]


@dataclass(frozen=True)
class Row:
    label: str
    key: str
    base_key: str | None
    fmt: Callable[[Any], str]
    better: str | None  # "lower" or "higher": how the ratio to the baseline reads
    explain: Callable[[Figures, BenchConfig], str]


def _secs(v: Any) -> str:
    if v is None:
        return "n/a"
    return f"{v:,.0f} s ({v / 60:.1f} min)" if v >= 120 else f"{v:.2f} s"


def _count(v: Any) -> str:
    return "n/a" if v is None else f"{round(v):,}"


def _num(v: Any) -> str:
    return "n/a" if v is None else f"{v:,.2f}"


def _share(v: Any) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def _times(v: Any) -> str:
    return "n/a" if v is None else f"{v:,.1f}×"


def _mb(v: Any) -> str:
    return "n/a" if v is None else f"{v:,.0f} MB"


def _scaled(f: Figures) -> str:
    if f["clock_factor"] == 1:
        return ""
    return (
        f"; the clock ran {f['clock_factor']:g}× faster than real time for latencies and the rate-limit "
        f"window alike, so it took {f['real_s']:.1f} s of real time"
    )


def _wall(f: Figures, c: BenchConfig) -> str:
    text = f"Scenario time from the producer's tick to the end of the last consumer invocation{_scaled(f)}."
    runs = f["wall_s_runs"]
    if len(runs) > 1:
        text += (
            f" The design ran {len(runs)} times ({', '.join(f'{r:.2f}' for r in runs)} s); every design "
            "figure here is from the run with the median time."
        )
    if f["baseline_extrapolated"]:
        text += (
            f" The baseline crawled the first {f['baseline_streamers']:,} streamers; its counts and "
            f"time are scaled by {f['streamers'] / f['baseline_streamers']:g} (**extrapolated**: the "
            "loop is linear in streamers"
        )
        text += (
            ", and its time is raised to what the rate limit allows for its pages)."
            if f["baseline_rate_bound"]
            else ", and at its pace it stays below the rate limit)."
        )
    return text


def _floor(f: Figures, c: BenchConfig) -> str:
    fl = f["floor"]
    return (
        f"The producer's round trips before its first send ({fl['producer_s']:.2f} s; calls in flight "
        "together, such as the token minted while the slice is read, count once) plus the largest "
        f"of: every streamer's chain (a claim, then one Helix call and one D1 write per page, at "
        f"{c.helix_latency_ms:g} and {c.d1_latency_ms:g} ms) spread over {f['concurrency']} consumers "
        f"({fl['concurrency_s']:.2f} s), the longest single chain ({fl['longest_s']:.2f} s), and the "
        f"rate-limit windows needed for {f['pages_needed']:,} pages at {c.rate_limit}/min "
        f"({fl['rate_limit_s']:.2f} s); here the {fl['bound']} sets it."
    )


def _pages(f: Figures, c: BenchConfig) -> str:
    return (
        f"Get Clips answers carrying a page; {f['pages_needed']:,} is the fewest that could return every "
        "clip (100 a page, an empty answer still costs one). More means windows re-read after a split; "
        "fewer (baseline) means clips Helix never handed out."
    )


def _invocations(f: Figures, c: BenchConfig) -> str:
    outcomes = ", ".join(f"{k} {v:,}" for k, v in f["outcomes"].items())
    kinds = ", ".join(f"{v:,} {k}" for k, v in f.get("invocations_by_message", {}).items())
    return f"One message each ({kinds}); outcomes: {outcomes}. The baseline is a single invocation."


def _subrequests(f: Figures, c: BenchConfig) -> str:
    agree = (
        "they match the crawler's own budget"
        if f["subrequests_match_self_reported"]
        else "**they differ from the crawler's own budget counts**"
    )
    return (
        "Helix calls + D1 round trips + queue sends of the busiest consumer invocation, counted outside "
        f"the crawler ({agree}); the baseline makes every call in its one invocation."
    )


def _external(f: Figures, c: BenchConfig) -> str:
    allowed = PLAN_LIMITS[f["plan"]][0]
    return f"The most Helix calls in one invocation (the {f['plan']} plan allows {allowed})."


def _internal(f: Figures, c: BenchConfig) -> str:
    return (
        f"The most D1 round trips and queue sends in one invocation ({f['d1_max']} of them D1; the "
        f"{f['plan']} plan is budgeted at {PLAN_LIMITS[f['plan']][1]})."
    )


def _rate(f: Figures, c: BenchConfig) -> str:
    text = (
        f"Points spent over the most a {c.rate_limit}/min bucket (full at the start, refilled each "
        "minute) could grant between the first and the last Helix request"
    )
    # Over less than a minute the full bucket allows any burst, so a rate per minute says nothing.
    if f["points_per_minute"] is not None and f["rate_limit_span_s"] >= 60:
        text += (
            f": {_count(f['points_per_minute'])} points a minute over {f['rate_limit_span_s'] / 60:.1f} min"
        )
    return text + "."


def _memory(f: Figures, c: BenchConfig) -> str:
    hosts = (
        "" if c.services_in_processes else ", which also hosts the emulated Twitch and the in-memory database"
    )
    return (
        f"Peak resident memory of the process that ran it{hosts} (the database held "
        f"{f['database_mb']:.1f} MB at the end); {f['memory_at_start_mb']:.0f} MB were resident when the "
        "crawl began."
    )


def _lost(f: Figures, c: BenchConfig) -> str:
    return (
        f"Clips visible when the run began and created within {c.lookback_hours} h of the streamer's "
        f"first page fetched that are missing from the database ({f['expected_clips']:,} owed; baseline "
        f"{_count(f['baseline_expected_clips'])})."
    )


def _needed(f: Figures, c: BenchConfig) -> str:
    return (
        "The fewest Helix calls that serve every clip in the ranges the crawl asked for, computed by the "
        "emulator's own module (local/emulator/needed.py) on the same world: pages of 100, one call "
        "for a "
        "window with none, no window over the ~1,000-result cap."
    )


def _over_needed(f: Figures, c: BenchConfig) -> str:
    text = "Helix calls made over Helix calls needed (1.00 is a crawl that reads each clip once)."
    later = f.get("crawls", [])[1:]
    if later:
        text += (
            " A second crawl right after, starting from the window span the first found: "
            + ", ".join(
                f"{k['helix_calls']:,} calls for {k['needed']:,} needed ({_num(k['over_needed'])})"
                for k in later
            )
            + "."
        )
    return text


def _says(text: str) -> Callable[[Figures, BenchConfig], str]:
    return lambda f, c: text


ROWS: Sequence[Row] = (
    Row("Wall time", "wall_s", "baseline_wall_s", _secs, "lower", _wall),
    Row(
        "Speedup",
        "speedup",
        None,
        _times,
        None,
        _says("The baseline's wall time over the design's, both measured in this run."),
    ),
    Row("Floor", "floor_s", None, _secs, None, _floor),
    Row(
        "Wall / floor",
        "wall_over_floor",
        None,
        _num,
        None,
        _says(
            "Measured wall time as a multiple of the floor. The rest is CPU (every simulated Worker "
            "shares one Python event loop, so an invocation's answer waits while others run), latency "
            "jitter, waiting for the single-threaded database, and the last invocations' stragglers."
        ),
    ),
    Row(
        "CPU time",
        "cpu_s",
        "baseline_cpu_s",
        _secs,
        None,
        _says(
            "CPU the crawler's process used while the side ran: every simulated Worker (and, in a run with "
            "--services-in-process, the emulated Twitch and SQLite too). In Cloudflare it is spread over "
            "many isolates; here one Python process runs it all."
        ),
    ),
    Row(
        "Helix calls",
        "helix_calls",
        "baseline_helix_calls",
        _count,
        "lower",
        _says("Every request to the emulated Twitch: the token, Get Clips pages, retries and 429s."),
    ),
    Row("Helix calls needed", "helix_calls_needed", None, _count, None, _needed),
    Row("Calls over needed", "calls_over_needed", None, _num, None, _over_needed),
    Row(
        "Helix calls per streamer",
        "calls_per_streamer",
        None,
        _num,
        None,
        _says("Every Helix call of the run (the token's included) over the streamers crawled."),
    ),
    Row(
        "Token mints",
        "token_mints",
        None,
        _count,
        None,
        lambda f, c: f"App tokens minted during the run; {f['revocations']} revocation(s) were injected.",
    ),
    Row("Get Clips pages", "pages", "baseline_pages", _count, None, _pages),
    Row(
        "D1 round trips",
        "d1_calls",
        "baseline_d1_calls",
        _count,
        "lower",
        _says("Every call to the database, a batch counting once, the producer's included."),
    ),
    Row(
        "D1 round trips per page",
        "d1_calls_per_page",
        "baseline_d1_calls_per_page",
        _num,
        "lower",
        _says(
            "Round trips of crawl invocations per page, beyond each one's claim: page writes, plus "
            "hand-backs of jobs that stopped early. Fan-out invocations are left out (they are in the "
            "all-in figure). The baseline's is one INSERT per clip."
        ),
    ),
    Row(
        "… all in",
        "d1_calls_per_page_all",
        "baseline_d1_calls_per_page",
        _num,
        "lower",
        _says("Every D1 round trip per page, claims and producer included."),
    ),
    Row(
        "Rows upserted per D1 round trip",
        "rows_per_d1_call",
        "baseline_rows_per_d1_call",
        _num,
        "higher",
        lambda f, c: f"Clip rows sent to the database ({f['rows_upserted']:,}) per round trip of any kind.",
    ),
    Row(
        "Queue sends",
        "queue_sends",
        None,
        _count,
        None,
        _says(
            "send_batch calls of up to 100 messages: the fan-out, continuations and requeues. The "
            "baseline has no queue."
        ),
    ),
    Row("Consumer invocations", "consumer_invocations", None, _count, None, _invocations),
    Row(
        "Subrequests per invocation, max",
        "subrequests_max",
        "baseline_subrequests_max",
        _count,
        "lower",
        _subrequests,
    ),
    Row(
        "Subrequests per invocation, p95",
        "subrequests_p95",
        "baseline_subrequests_max",
        _count,
        "lower",
        _says("95% of consumer invocations used this many subrequests or fewer."),
    ),
    Row("External subrequests, max", "external_max", None, _count, None, _external),
    Row("Internal subrequests, max", "internal_max", None, _count, None, _internal),
    Row(
        "429 answers",
        "http_429",
        "baseline_http_429",
        _count,
        "lower",
        _says("Helix answers 'Too Many Requests': the bucket was empty."),
    ),
    Row(
        "429 share",
        "http_429_share",
        "baseline_http_429_share",
        _share,
        None,
        _says("429 answers over all Helix API requests."),
    ),
    Row("Rate-limit budget used", "rate_limit_share", "baseline_rate_limit_share", _share, "higher", _rate),
    Row("Peak memory", "peak_memory_mb", "baseline_peak_memory_mb", _mb, None, _memory),
    Row("Lost clips", "lost", "baseline_lost", _count, "lower", _lost),
)


def _versus(row: Row, f: Figures) -> str:
    if row.base_key is None or row.better is None:
        return ""
    design, base = f.get(row.key), f.get(row.base_key)
    if design is None or base is None:
        return ""
    if design == base:
        return "same"
    worse = " (worse)" if (design > base if row.better == "lower" else design < base) else ""
    if not design or not base:
        return f"{row.fmt(design)} vs {row.fmt(base)}{worse}"
    factor = max(design, base) / min(design, base)
    return f"{factor:,.1f}× {'higher' if design > base else 'lower'}{worse}"


def render(
    results: Mapping[str, Figures],
    targets: Sequence[Mapping[str, Any]],
    config: BenchConfig,
    meta: Mapping[str, Any],
) -> str:
    """The whole report as Markdown."""
    out = ["# clipcrawler benchmark: the crawl against the naive design", ""]
    out += [
        f"Generated by `{meta['command']}` on {meta['generated_at']} ({meta['platform']}, Python "
        f"{meta['python']}, {meta['cpus']} CPUs, load average {meta['load_average']} at the start); the "
        f"whole benchmark took {meta['took_s'] / 60:.1f} min. The figures are in `bench/results.json`.",
        "",
    ]
    out += _method(config, meta)
    out += ["## Targets", "", "| Target | Measured | Met |", "|---|---|---|"]
    for t in targets:
        met = {True: "yes", False: "**no**", None: "not run"}[t["met"]]
        out.append(f"| {t['label']} | {target_value(t)} | {met} |")
    findings = _findings(results, targets)
    if findings:
        out += ["", "Where a target is missed, what the figures say:", ""]
        out += [f"- {line}" for line in findings]
    out.append("")
    for name, f in results.items():
        out += [f"## {name}: {f['title']}", ""]
        out += ["| Figure | Design | Baseline | vs baseline | What it means |", "|---|---|---|---|---|"]
        for row in ROWS:
            base = row.fmt(f.get(row.base_key)) if row.base_key else ""
            if row.base_key and f["baseline_extrapolated"] and row.base_key in _EXTRAPOLATED:
                base += " (extrapolated)"
            out.append(
                f"| {row.label} | {row.fmt(f.get(row.key))} | {base} | {_versus(row, f)} | "
                f"{row.explain(f, config)} |"
            )
        jobs = ", ".join(f"{k} {v:,}" for k, v in f["jobs"].items())
        out += ["", f"Jobs by status and stop reason: {jobs}.", "", _self_reported(f), ""]
    return "\n".join(out) + "\n"


_EXTRAPOLATED = {
    "baseline_wall_s",
    "baseline_cpu_s",
    "baseline_helix_calls",
    "baseline_pages",
    "baseline_d1_calls",
    "baseline_subrequests_max",
    "baseline_http_429",
    "baseline_lost",
}


def _self_reported(f: Figures) -> str:
    """The run's own counters beside the ones measured from outside."""
    run = f["run"]
    pairs = [
        ("Helix calls", run.get("helix_calls"), f["helix_calls"]),
        ("D1 round trips", run.get("d1_calls"), f["d1_calls"]),
        ("queue sends", run.get("queue_sends"), f["queue_sends"]),
    ]
    shown = ", ".join(f"{name} {_count(own)} (measured {_count(measured)})" for name, own, measured in pairs)
    same = all(own == measured for _, own, measured in pairs)
    return f"The run's own counters (the `runs` row): {shown}" + (
        ": they agree." if same else "; the difference is calls the crawler did not add to the run."
    )


def _findings(results: Mapping[str, Figures], targets: Sequence[Mapping[str, Any]]) -> list[str]:
    """One factual line per missed target, from the figures that explain it."""
    lines = []
    for t in targets:
        if t["met"] is not False:
            continue
        f, figure = results[t["scenario"]], t["figure"]
        stopped = {k: v for k, v in f["outcomes"].items() if k not in ("done", "duplicate")}
        early = ", ".join(f"{v:,} {k}" for k, v in stopped.items()) or "none"
        if figure == "speedup":
            lines.append(
                f"{t['scenario']}: the floor alone ({_secs(f['floor_s'])}) allows at most "
                f"{_times(f['floor_speedup'])} against this baseline; the measured time is "
                f"{_num(f['wall_over_floor'])}× the floor, with {_secs(f['cpu_s'])} of CPU spent in "
                f"{_secs(f['real_s'])} of real time."
            )
        elif figure == "wall_over_floor":
            lines.append(
                f"{t['scenario']}: {_secs(f['cpu_s'])} of CPU in {_secs(f['real_s'])} of real time "
                "for every simulated Worker; stopped "
                f"early: {early}."
            )
        elif figure == "d1_calls_per_page":
            extra = round((f["d1_calls_per_page"] - 1) * f["pages"])
            upkeep = min(extra, f["upkeep_calls"])
            lines.append(
                f"{t['scenario']}: about {extra:,} crawl round trip(s) beyond one per page. {upkeep:,} of "
                "them stored what an upkeep Helix call answered (Get Games naming the run's new games, Get "
                "Clips by id checking for deletions: each answer is written once it arrives); the benchmark "
                f"does not attribute the other {extra - upkeep:,}. Invocations that stopped before "
                f"finishing: {early} (each costs a claim and a hand-back round trip, and a requeue a queue "
                "send)."
            )
        elif figure in ("http_429_share", "rate_limit_share"):
            lines.append(
                f"{t['scenario']}: {f['http_429']:,} answers were 429, invocations stopped early: "
                f"{early}, and {_share(f['rate_limit_share'])} of the rate-limit budget was spent; "
                f"the process used {_share(f['cpu_s'] / f['real_s'])} of one CPU meanwhile."
            )
        elif figure == "lost":
            lines.append(
                f"{t['scenario']}: {f['lost']:,} of {f['expected_clips']:,} owed clips are missing; "
                f"jobs: {', '.join(f'{k} {v:,}' for k, v in f['jobs'].items())}."
            )
        else:
            lines.append(f"{t['scenario']}: {figure} is {t['value']!r}, target {t['target']}.")
    return lines


def target_value(t: Mapping[str, Any]) -> str:
    value = t["value"]
    if value is None:
        return "n/a"
    if t["figure"].endswith("share"):
        return _share(value)
    if isinstance(value, float):
        shown = f"{value:,.2f}"
        if t["met"] is False and float(shown.replace(",", "")) == t.get("threshold"):
            return f"{value:,.4f}"  # 1.0046 against "at most 1" must not read as 1.00
        return shown
    return f"{value:,}"


def _method(c: BenchConfig, meta: Mapping[str, Any]) -> list[str]:
    isolation = (
        "each side of each scenario runs in a fresh process, so peak memory is its own."
        if meta["isolated"]
        else "all sides ran in this one process (peak memory is cumulative)."
    )
    where = (
        "in a process of its own (as on Cloudflare, its work runs on other machines than the crawler's)"
        if c.services_in_processes
        else "in the crawler's process"
    )
    lines = [
        "## How it is measured",
        "",
        f"- **Twitch** is the local Helix emulator, {where}, on loopback HTTP, answering "
        f"{c.helix_latency_ms:g} ms ± {c.helix_jitter_ms:g} ms (uniform) after a request arrives, its own "
        "work "
        f"done within that time, with a rate limit of {c.rate_limit} points a minute; its world "
        f"(seed {c.seed}, {c.clips_per_day[0]}-{c.clips_per_day[1]} clips per streamer per day) is generated "
        "before the clock starts.",
        f"- **D1** is SQLite with the production schema, {where}, executing one batch at a "
        f"time; each call first waits out a network round trip of {c.d1_latency_ms:g} ms ± "
        f"{c.d1_jitter_ms:g} ms (half before the database, half after), which many callers wait out at once.",
        "- **Queues** is the simulated queue (Cloudflare semantics, `max_batch_size = 1`, max concurrency "
        f"{c.concurrency}); sends have no latency, and a message can be delivered while the producer's "
        "invocation that sent it is still finishing.",
        "- **The design** is the real producer and consumer code driven by the local runner. Every Helix "
        "call, D1 round trip and queue send is counted outside the crawler, per invocation, and compared "
        "with the crawler's own budget.",
        "- **The baseline** is the naive design the seed started from, on the same emulator, data and "
        "latencies: one loop over the streamers in one invocation, one Helix page (100 clips) at a time, one "
        "INSERT per clip, each a D1 round trip.",
        "- **The clock**: S1 and S3 run in real time. S2's design runs on a clock "
        f"{c.s2_clock_factor:g}× faster than real time; latencies, the rate-limit window, queue delays and "
        "leases all read it, so they scale together, while CPU time does not (it weighs "
        f"{c.s2_clock_factor:g}× more in S2's scenario time than it would in reality). S2's baseline runs in "
        "real time: its loop never nears the rate limit, so a fast clock would only inflate its CPU. "
        f"S4's design runs {c.s4_clock_factor:g}× faster for the same reason as S2's.",
        "- **Calls needed**: for every crawl, the fewest Helix calls that serve every clip of the ranges it "
        "asked Get Clips for (local/emulator/needed.py: pages of 100, one call for an empty window, no "
        "window "
        "over the ~1,000-result cap, windows on the 10-minute grid), computed on the emulator's world from "
        "the requests seen. S3 crawls its streamer a second time right after the first, from the window "
        "span the first found. S4's emulated Twitch plays the traps: the last page of the looping "
        "streamers' walks leads back to itself, the empty-page streamers' leads to an empty page with a "
        "cursor, its first streamer has clips past the cap, every token is revoked part-way, and a share of "
        "requests fails its first attempt with 503.",
        f"- **Isolation**: {isolation}",
        f"- **Lookback**: every crawl covers the {c.lookback_hours} h before it; `lost` counts clips owed by "
        "that rule and missing from the database.",
    ]
    if c.spread_fanout:
        lines.append(
            "- **PROTOTYPE, not the shipped design**: the design's fresh crawl messages were "
            f"delayed so they arrive at {100 * c.spread_fanout:g}% of the rate limit "
            "(`FanOutSpread` in bench/runner.py)."
        )
    return lines + [""]


def write(
    out_dir: Path,
    results: Mapping[str, Figures],
    targets: Sequence[Mapping[str, Any]],
    config: BenchConfig,
    meta: Mapping[str, Any],
) -> tuple[Path, Path]:
    """Write report.md and results.json into `out_dir`; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    report, figures = out_dir / "report.md", out_dir / "results.json"
    report.write_text(render(results, targets, config, meta))
    document: dict[str, Any] = {name: dict(f) for name, f in results.items()}
    document.update(targets=list(targets), meta=dict(meta))
    figures.write_text(json.dumps(document, indent=2) + "\n")
    return report, figures
