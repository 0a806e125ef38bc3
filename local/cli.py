"""The `clipcrawler` command."""

from __future__ import annotations

import argparse
import logging
import os
import sqlite3
import sys
from collections.abc import Mapping, Sequence

from local.commands import MODULES
from local.commands.common import DEFAULT_DB
from local.sqlite_db import D1Error
from shared.errors import ClipCrawlerError
from shared.logs import Redactor, configure

# Every secret the CLI can be handed (besides --client-secret): masked in all it prints, as the Workers do.
SECRET_ENV = ("TWITCH_CLIENT_SECRET", "CLIPCRAWLER_WEBHOOK_URL", "CLIPCRAWLER_API_TOKEN",
              "CLOUDFLARE_API_TOKEN")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clipcrawler", description="Crawl Twitch clips into SQLite / D1.")
    parser.add_argument("--db", help=f"SQLite database (env CLIPCRAWLER_DB, default {DEFAULT_DB})")
    parser.add_argument("--twitch-api-url", help="Helix base URL (env TWITCH_API_URL)")
    parser.add_argument("--twitch-auth-url", help="OAuth base URL (env TWITCH_AUTH_URL)")
    parser.add_argument("--client-id", help="Twitch client id (env TWITCH_CLIENT_ID)")
    parser.add_argument("--client-secret", help="Twitch client secret (prefer env TWITCH_CLIENT_SECRET)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in MODULES:
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    env = os.environ if env is None else env
    redactor = Redactor([args.client_secret or "", *(env.get(name, "") for name in SECRET_ENV)])
    configure(redactor, level=logging.WARNING)  # warnings only, as before, but masked (and error text too)
    try:
        return int(args.handler(args, env))
    except ClipCrawlerError as exc:
        print(f"clipcrawler: {redactor.text(str(exc))}", file=sys.stderr)
        return 2
    except (D1Error, sqlite3.Error) as exc:  # bad SQL given to `sql`, a database that cannot be opened
        print(f"clipcrawler: {redactor.text(str(exc))}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
