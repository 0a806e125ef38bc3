"""`clipcrawler bench`: the crawl against the naive design; writes bench/report.md and bench/results.json."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from bench.cli import add_arguments, run_from_args


def register(commands: Any) -> None:
    bench = commands.add_parser("bench", help="benchmark the crawl against the naive design (takes minutes)",
                                description="Run scenarios S1-S3 on the Helix emulator with D1 and Helix "
                                            "latencies, beside the naive baseline, and write a report.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_arguments(bench)
    bench.set_defaults(handler=run)


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    return run_from_args(args, "clipcrawler bench")
