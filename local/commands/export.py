"""`clipcrawler export`: clips, runs, jobs and games to Parquet, incrementally, from SQLite or a deployed
D1."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping
from contextlib import ExitStack
from typing import Any

import httpx

from local.commands.common import db_path
from local.export import (
    ExportError,
    ExportOptions,
    ExportReport,
    ExportState,
    SqliteSource,
    open_destination,
    run_export,
)
from local.export.d1 import CLOUDFLARE_API, D1DumpSource, D1HttpSource
from local.export.destinations import DEFAULT_OUT
from local.export.exporter import DEFAULT_OVERLAP_S
from local.export.reader import DEFAULT_BATCH_ROWS
from local.export.sources import Source
from local.sqlite_db import missing_database
from shared.clock import SystemClock

D1_API_BATCH_ROWS = 1_000  # one HTTP response per page: keep each well under D1's response limits


def register(commands: Any) -> None:
    export = commands.add_parser(
        "export",
        help="write clips, runs, jobs and games to Parquet (only what changed since the last export)",
        description="Write clips (partitioned by created_date), runs and jobs (by run_date) as Parquet. Each "
        "export adds files holding the rows changed since the last one; read the newest row per "
        "id (docs/export.md). The watermark is kept in the local database (--db).",
    )
    export.add_argument(
        "--out",
        help=f"a directory, s3://bucket/prefix or r2://bucket/prefix "
        f"(env CLIPCRAWLER_EXPORT_OUT, default {DEFAULT_OUT}/)",
    )
    export.add_argument(
        "--full", action="store_true", help="export every row, then remove the files of earlier exports"
    )
    export.add_argument(
        "--source",
        choices=("local", "d1-sql", "d1-api"),
        default="local",
        help="local: the SQLite database (--db); d1-sql: a `wrangler d1 export` file; "
        "d1-api: a deployed D1 through the Cloudflare API (default local)",
    )
    export.add_argument("dump", nargs="?", help="with --source d1-sql: the .sql file wrangler wrote")
    export.add_argument(
        "--d1-database-id",
        help="with --source d1-api (env CLIPCRAWLER_D1_DATABASE_ID); the "
        "token is read from CLOUDFLARE_API_TOKEN only",
    )
    export.add_argument(
        "--overlap-seconds",
        type=int,
        default=DEFAULT_OVERLAP_S,
        help=f"re-read rows changed this long before the last export's newest change, for "
        f"writes that commit late (default {DEFAULT_OVERLAP_S})",
    )
    export.add_argument(
        "--batch-rows",
        type=int,
        help=f"rows per read and per row group (default {DEFAULT_BATCH_ROWS}; "
        f"{D1_API_BATCH_ROWS} for d1-api)",
    )
    export.add_argument("--json", action="store_true", help="print the report as one JSON object")
    export.set_defaults(handler=run)


def run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    if (args.source == "d1-sql") != (args.dump is not None):
        raise ExportError(
            "--source d1-sql takes the dump file: clipcrawler export --source d1-sql x.sql"
            if args.dump is None
            else f"{args.dump!r} is only read with --source d1-sql"
        )
    out = args.out or env.get("CLIPCRAWLER_EXPORT_OUT") or DEFAULT_OUT
    try:
        return _export(args, env, out)
    except OSError as exc:  # pyarrow and the filesystem: a read-only or missing directory, a full disk
        raise ExportError(f"cannot export to {out}: {exc.strerror or exc}") from exc


def _export(args: argparse.Namespace, env: Mapping[str, str], out: str) -> int:
    destination = open_destination(out, env)
    batch_rows = args.batch_rows or (D1_API_BATCH_ROWS if args.source == "d1-api" else DEFAULT_BATCH_ROWS)
    options = ExportOptions(full=args.full, overlap_s=args.overlap_seconds, batch_rows=batch_rows)
    if args.source == "local" and not os.path.exists(db_path(args, env)):
        raise missing_database(db_path(args, env))
    with ExitStack() as resources:
        source = _open_source(args, env, resources)
        resources.callback(source.close)
        state = ExportState(db_path(args, env))
        resources.callback(state.close)
        report = run_export(source, destination, state, SystemClock(), options)
    print(json.dumps(report.as_dict()) if args.json else render(report))
    return 0


def _open_source(args: argparse.Namespace, env: Mapping[str, str], resources: ExitStack) -> Source:
    if args.source == "d1-sql":
        return D1DumpSource(args.dump)
    if args.source == "d1-api":
        http = resources.enter_context(httpx.Client(timeout=60.0))
        return D1HttpSource(
            http,
            env.get("CLOUDFLARE_ACCOUNT_ID", ""),
            args.d1_database_id or env.get("CLIPCRAWLER_D1_DATABASE_ID", ""),
            env.get("CLOUDFLARE_API_TOKEN", ""),
            base_url=env.get("CLOUDFLARE_API_BASE_URL") or CLOUDFLARE_API,
        )
    return SqliteSource(db_path(args, env))


def render(report: ExportReport) -> str:
    lines = [
        f"clipcrawler export {report.export_id}: {report.rows} rows "
        f"from {report.source} to {report.destination}"
    ]
    for t in report.tables:
        skipped = f", {t.unchanged} unchanged skipped" if t.unchanged else ""
        mark = f", watermark {t.watermark}" if t.watermark else ""
        lines.append(f"  {t.table:<6} {t.mode:<11} {t.rows:>9} rows in {len(t.files)} files{skipped}{mark}")
    if report.removed_files:
        lines.append(f"  removed {report.removed_files} files of earlier exports")
    lines += [f"  warning: {w}" for w in report.warnings]
    return "\n".join(lines)
