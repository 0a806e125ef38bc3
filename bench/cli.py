"""The benchmark's command line, shared by `python -m bench`, `make bench` and `clipcrawler-bench`."""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.figures import scenario_figures
from bench.report import write
from bench.run import run_side
from bench.scenarios import NAMES, BenchConfig, Scenario, scenarios
from bench.targets import check_targets

OUT_DIR = Path(__file__).resolve().parent
_FLAGS = {"spread_fanout": "--prototype-spread-fanout"}  # options whose flag is not the field's name
Log = Callable[[str], None]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = BenchConfig()
    parser.add_argument("--scenarios", default=",".join(NAMES), help="comma-separated")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="where report.md and results.json go")
    parser.add_argument("--helix-latency-ms", type=float, default=d.helix_latency_ms, help="per Helix call")
    parser.add_argument("--helix-jitter-ms", type=float, default=d.helix_jitter_ms, help="uniform, ±")
    parser.add_argument("--d1-latency-ms", type=float, default=d.d1_latency_ms, help="per D1 round trip")
    parser.add_argument("--d1-jitter-ms", type=float, default=d.d1_jitter_ms, help="uniform, ±")
    parser.add_argument("--concurrency", type=int, default=d.concurrency, help="consumer invocations at once")
    parser.add_argument("--rate-limit", type=int, default=d.rate_limit, help="Helix points per minute")
    parser.add_argument("--seed", type=int, default=d.seed, help="the emulated world")
    parser.add_argument("--s1-streamers", type=int, default=d.s1_streamers)
    parser.add_argument("--s2-streamers", type=int, default=d.s2_streamers)
    parser.add_argument(
        "--s2-clock-factor",
        type=float,
        default=d.s2_clock_factor,
        help="how many times faster than real time S2's clock runs",
    )
    parser.add_argument(
        "--s2-baseline-sample",
        type=int,
        default=d.s2_baseline_sample,
        help="streamers the S2 baseline really crawls; the rest is extrapolated",
    )
    parser.add_argument(
        "--s3-clips", type=int, default=d.s3_clips, help="clips in S3's heavy streamer's window"
    )
    parser.add_argument(
        "--s4-streamers", type=int, default=d.s4_streamers, help="streamers in S4, the traps scenario"
    )
    parser.add_argument(
        "--s4-clock-factor",
        type=float,
        default=d.s4_clock_factor,
        help="how many times faster than real time S4's clock runs",
    )
    parser.add_argument(
        "--prototype-spread-fanout",
        dest="spread_fanout",
        type=float,
        default=d.spread_fanout,
        metavar="SHARE",
        help="PROTOTYPE: delay crawl messages to SHARE of the rate limit (0: off)",
    )
    parser.add_argument(
        "--services-in-process",
        action="store_true",
        help="serve the emulated Twitch and SQLite from the crawler's own process (starts faster; "
        "their CPU is then billed to the crawler)",
    )
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="run every side in this process (starts faster; peak memory is then cumulative)",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--rerender",
        action="store_true",
        help="only rewrite report.md from the results.json already in --out",
    )


def config_from(args: argparse.Namespace) -> BenchConfig:
    return BenchConfig(
        helix_latency_ms=args.helix_latency_ms,
        helix_jitter_ms=args.helix_jitter_ms,
        d1_latency_ms=args.d1_latency_ms,
        d1_jitter_ms=args.d1_jitter_ms,
        concurrency=args.concurrency,
        rate_limit=args.rate_limit,
        seed=args.seed,
        s1_streamers=args.s1_streamers,
        s2_streamers=args.s2_streamers,
        s2_clock_factor=args.s2_clock_factor,
        s2_baseline_sample=args.s2_baseline_sample,
        s3_clips=args.s3_clips,
        s4_streamers=args.s4_streamers,
        s4_clock_factor=args.s4_clock_factor,
        spread_fanout=args.spread_fanout,
        services_in_processes=not args.services_in_process,
    )


def run_benchmark(
    config: BenchConfig, names: Sequence[str] = NAMES, *, isolate: bool = True, log: Log = lambda line: None
) -> dict[str, dict[str, Any]]:
    """Every scenario named, design then baseline, one after the other; their figures by scenario name."""
    results: dict[str, dict[str, Any]] = {}
    for scenario in scenarios(config, tuple(names)):
        runs = [_run("design", scenario, config, isolate, log) for _ in range(scenario.design_runs)]
        design = median_run(runs)
        baseline = _run("baseline", scenario, config, isolate, log)
        results[scenario.name] = scenario_figures(scenario, config, design, baseline)
    return results


def median_run(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median wall time, carrying every run's wall time (a cheap guard against noise)."""
    ordered = sorted(runs, key=lambda r: r["wall_s"])
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    chosen["wall_s_runs"] = [r["wall_s"] for r in runs]
    return chosen


def _run(side: str, scenario: Scenario, config: BenchConfig, isolate: bool, log: Log) -> dict[str, Any]:
    log(f"{scenario.name} {side}: running ...")
    began = time.perf_counter()
    if isolate:
        # A fresh interpreter per side: its peak memory is its own, and no warm cache carries over.
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
            result = pool.submit(run_side, side, scenario, config).result()
    else:
        result = run_side(side, scenario, config)
    took = time.perf_counter() - began
    log(f"{scenario.name} {side}: {result['wall_s']:.2f} s scenario time, {took:.1f} s real")
    return result


def main(argv: Sequence[str] | None = None, command: str = "python -m bench") -> int:
    parser = argparse.ArgumentParser(
        prog=command,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Benchmark the crawl against the naive design.",
    )
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv), command)


def run_from_args(args: argparse.Namespace, command: str) -> int:
    """Run, write the report and the figures, print the targets; 1 only with --strict and a missed target."""
    if args.rerender:
        return rerender(args.out)
    config = config_from(args)
    names = [n.strip().upper() for n in args.scenarios.split(",") if n.strip()]
    scenarios(config, tuple(names))  # fail on an unknown name before anything runs

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    began = time.perf_counter()
    load = _load_average()
    results = run_benchmark(config, names, isolate=not args.in_process, log=log)
    targets = check_targets(results)
    took_s = round(time.perf_counter() - began, 1)
    meta: dict[str, Any] = {
        "command": _reproduce(command, args, config, names),
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "platform": f"{platform.system()} {platform.machine()}",
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average": load,
        "isolated": not args.in_process,
        "took_s": took_s,
        "config": {k: v for k, v in vars(config).items()},
    }
    report, figures = write(args.out, results, targets, config, meta)
    for t in targets:
        status = {True: "met", False: "MISSED", None: "not run"}[t["met"]]
        print(f"{status:8s} {t['label']}: {t['value']!r}")
    print(f"wrote {report} and {figures} in {took_s / 60:.1f} min")
    missed = any(t["met"] is False for t in targets)
    return 1 if args.strict and missed else 0


def rerender(out_dir: Path) -> int:
    """Rewrite report.md from results.json, for changes to the report's wording without a new run."""
    document = json.loads((out_dir / "results.json").read_text())
    meta = document.pop("meta")
    document.pop("targets")
    targets = check_targets(document)  # checked again, so the report follows the targets as written now
    settings = dict(meta["config"])
    settings["clips_per_day"] = tuple(settings["clips_per_day"])
    report, _ = write(out_dir, document, targets, BenchConfig(**settings), meta)
    print(f"rewrote {report} from {out_dir / 'results.json'}")
    return 0


def _reproduce(command: str, args: argparse.Namespace, config: BenchConfig, names: Sequence[str]) -> str:
    """The command line that reproduces this run: the non-default options only."""
    parts = [command]
    if tuple(names) != NAMES:
        parts.append("--scenarios " + ",".join(names))
    defaults = BenchConfig()
    for key, value in vars(config).items():
        if value != getattr(defaults, key) and hasattr(args, key):
            flag = _FLAGS.get(key, "--" + key.replace("_", "-"))
            parts.append(f"{flag} {value:g}" if isinstance(value, float) else f"{flag} {value}")
    if args.in_process:
        parts.append("--in-process")
    if args.services_in_process:
        parts.append("--services-in-process")
    return " ".join(parts)


def _load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"
