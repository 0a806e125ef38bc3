"""The CLI's subcommands: one module each, each with `register(commands)`.

A command's module is imported only when that command runs (the others get a one-line entry for
`--help`), so a typo or a bad value is answered without loading Parquet, the benchmark or the emulator.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# Each module adds its subparser(s) and sets `handler(args, env) -> int` as the default.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("crawl", "crawl emulated streamers end to end, no account needed"),
    "crawl": ("crawl", "crawl the streamers in the database from Twitch"),
    "backfill": ("backfill", "crawl streamers' history back to --since (resumable)"),
    "streamers": ("streamers", "manage the streamer list"),
    "sql": ("sql", "run SQL on the local database and print the rows"),
    "soak": ("soak", "crawl emulated streamers through injected faults; fail if anything was lost"),
    "export": ("export", "write clips, runs and jobs to Parquet (only what changed since the last export)"),
    "serve": ("serve", "serve the API and dashboard on loopback (token: CLIPCRAWLER_API_TOKEN)"),
    "schedule": (
        "schedule",
        "tick the producer on wrangler.producer.toml's cron (sweep included) until Ctrl-C",
    ),
    "runs": ("runs", "list runs; `runs show ID`; `runs retry-failed RUN`; `runs resume RUN`"),
    "cost": (
        "cost",
        "measure a crawl's Workers, Queues, D1 and Helix usage and project it against the plans",
    ),
}


def load(name: str) -> ModuleType:
    """The module that registers command `name`."""
    return importlib.import_module(f"local.commands.{COMMANDS[name][0]}")
