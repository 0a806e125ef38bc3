"""`clipcrawler streamers add LOGIN...`, `clipcrawler streamers remove LOGIN...` and `clipcrawler streamers
list`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from local.commands.common import db_path, settings_from
from local.sqlite_db import SqliteDatabase
from local.summary import render_rows
from producer import queries
from producer.streamers import add_streamers
from shared.clock import SystemClock
from shared.errors import ConfigError
from shared.helix import check_logins


def register(commands: Any) -> None:
    streamers = commands.add_parser("streamers", help="manage the streamer list")
    actions = streamers.add_subparsers(dest="streamers_command", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="resolve logins through Get Users and store them")
    add.add_argument("logins", nargs="+", metavar="LOGIN")
    add.set_defaults(handler=lambda args, env: asyncio.run(run_add(args, env)))
    remove = actions.add_parser(
        "remove", help="stop crawling streamers (deactivate them); their clips and runs stay"
    )
    remove.add_argument("logins", nargs="+", metavar="LOGIN")
    remove.set_defaults(handler=lambda args, env: asyncio.run(run_remove(args, env)))
    listing = actions.add_parser("list", help="print the streamers")
    listing.set_defaults(handler=lambda args, env: asyncio.run(run_list(args, env)))


async def run_add(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    settings = settings_from(args, env)
    settings.require_credentials()
    db = await SqliteDatabase.open(db_path(args, env))
    try:
        async with httpx.AsyncClient() as http:
            result = await add_streamers(db, http, settings, SystemClock(), args.logins)
    finally:
        await db.close()
    for streamer in result.added:
        print(f"added {streamer['login']} ({streamer['id']})")
    for login in result.unknown:
        print(f"unknown login: {login}", file=sys.stderr)
    return 0 if not result.unknown else 1


async def run_remove(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """Deactivate by login, as the API's DELETE /streamers/{id} does; `streamers add` activates again."""
    logins = check_logins(args.logins)
    path = db_path(args, env)
    if not Path(path).is_file():
        raise ConfigError(f"no database at {path}: there are no streamers to remove")
    db = await SqliteDatabase.open(path)
    missing = []
    try:
        for login in logins:
            row = await db.first("SELECT id, login, active FROM streamers WHERE login = ?", login)
            if row is None:
                missing.append(login)
            elif not row["active"]:
                print(f"{row['login']} ({row['id']}) was already removed")
            else:
                await queries.deactivate_streamer(db, row["id"])
                print(f"removed {row['login']} ({row['id']}): no longer crawled; its clips stay")
    finally:
        await db.close()
    for login in missing:
        print(f"no streamer with login {login!r} in {path}", file=sys.stderr)
    return 1 if missing else 0


async def run_list(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    db = await SqliteDatabase.open(db_path(args, env))
    try:
        rows = await db.all(
            "SELECT id, login, display_name, active, tier, next_crawl_at, last_clip_at, last_live_at, "
            "crawled_through, last_success_at, failure_streak FROM streamers ORDER BY login"
        )
    finally:
        await db.close()
    print(render_rows(rows) if rows else "no streamers yet: clipcrawler streamers add LOGIN...")
    return 0
