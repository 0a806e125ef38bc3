"""`clipcrawler sql "SELECT ..."`: SQL on the local database, the way `wrangler d1 execute` does on D1."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Mapping
from typing import Any

from local.commands.common import db_path
from local.sqlite_db import SqliteDatabase
from local.summary import render_rows


def register(commands: Any) -> None:
    sql = commands.add_parser("sql", help="run SQL on the local database and print the rows")
    sql.add_argument("query")
    sql.add_argument("--json", action="store_true", help="print the rows as JSON")
    sql.set_defaults(handler=lambda args, env: asyncio.run(run(args, env)))


async def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    db = await SqliteDatabase.open(db_path(args, env))
    try:
        rows = await db.all(args.query)
    finally:
        await db.close()
    print(json.dumps(rows, indent=2, ensure_ascii=False) if args.json else render_rows(rows))
    return 0
