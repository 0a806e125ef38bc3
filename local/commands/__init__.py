"""The CLI's subcommands: one module each, each with `register(commands)`."""

from __future__ import annotations

from local.commands import bench, cost, crawl, export, runs, schedule, serve, soak, sql, streamers

# Each module adds its subparser(s) and sets `handler(args, env) -> int` as the default.
MODULES = (crawl, streamers, sql, soak, export, serve, schedule, runs, bench, cost)
