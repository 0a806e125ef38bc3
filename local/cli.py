"""The `clipcrawler` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from typing import NoReturn

import httpx

from local.commands import COMMANDS, load
from local.commands.common import DEFAULT_DB, db_path
from local.sqlite_db import missing_database
from shared.errors import ClipCrawlerError
from shared.logs import Redactor, configure
from shared.redaction import process_redactor

# Every secret the CLI can be handed (besides --client-secret): masked in all it prints, as the Workers do.
SECRET_ENV = (
    "TWITCH_CLIENT_SECRET",
    "CLIPCRAWLER_WEBHOOK_URL",
    "CLIPCRAWLER_API_TOKEN",
    "CLOUDFLARE_API_TOKEN",
)

EXIT_INTERRUPTED = 130
# Commands that only read or change an existing database: a mistyped --db must not become a new empty one.
NEEDS_EXISTING_DB = ("sql", "runs", "streamers list", "streamers remove")


class Parser(argparse.ArgumentParser):
    """argparse that answers bad input in one line (and `--help` for the rest), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


class _Scout(argparse.ArgumentParser):
    """Finds the sub-command and says nothing: errors are the real parser's to report."""

    def error(self, message: str) -> NoReturn:
        raise argparse.ArgumentError(None, message)


def _global_options(parser: argparse.ArgumentParser, *, default: object = None) -> None:
    parser.add_argument(
        "--db", default=default, help=f"SQLite database (env CLIPCRAWLER_DB, default {DEFAULT_DB})"
    )
    parser.add_argument("--twitch-api-url", default=default, help="Helix base URL (env TWITCH_API_URL)")
    parser.add_argument("--twitch-auth-url", default=default, help="OAuth base URL (env TWITCH_AUTH_URL)")
    parser.add_argument("--client-id", default=default, help="Twitch client id (env TWITCH_CLIENT_ID)")
    parser.add_argument(
        "--client-secret", default=default, help="Twitch client secret (prefer env TWITCH_CLIENT_SECRET)"
    )


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every sub-command's parser, nested ones included."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in dict.fromkeys(action.choices.values()):  # aliases map to the same parser
                found += [sub, *_subparsers(sub)]
    return found


def _selected_command(argv: Sequence[str] | None) -> str | None:
    """The sub-command named in `argv`, found without loading any command's module."""
    scout = _Scout(add_help=False)
    _global_options(scout)
    scout.add_argument("command", nargs="?")
    try:
        known, _ = scout.parse_known_args(argv)
    except argparse.ArgumentError:  # a global option without its value: the real parser says so
        return None
    return known.command if known.command in COMMANDS else None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser, with the full arguments of the command `argv` selects (every command's if None)."""
    parser = Parser(prog="clipcrawler", description="Crawl Twitch clips into SQLite / D1.")
    _global_options(parser)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    selected = _selected_command(argv) if argv is not None else None
    if selected is not None:
        load(selected).register(commands)
    for name, (_, summary) in COMMANDS.items():
        if name in commands.choices:
            continue  # registered along with another command of its module
        if argv is None:
            load(name).register(commands)
        else:
            commands.add_parser(name, help=summary)
    for sub in _subparsers(parser):
        # Accepted after the sub-command too (`demo --db x`); SUPPRESS keeps one given before it.
        _global_options(sub, default=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
    redactor = Redactor(
        [getattr(args, "client_secret", None) or "", *(env.get(name, "") for name in SECRET_ENV)]
    )
    configure(redactor, level=logging.WARNING)  # warnings only, as before, but masked (and error text too)
    try:
        if _needs_existing_db(args):
            path = db_path(args, env)
            if not os.path.exists(path):
                raise missing_database(path)
        return int(args.handler(args, env))
    except ClipCrawlerError as exc:  # bad input, bad SQL (a DatabaseError), a database that cannot be used
        return _fail(str(exc))
    except httpx.HTTPError as exc:
        where = exc.request.url if _has_request(exc) else "the service"
        return _fail(f"cannot reach {where}: {type(exc).__name__}: {exc}".rstrip(": "))
    except OSError as exc:
        target = f" {exc.filename}" if exc.filename else ""
        return _fail(f"cannot use{target}: {exc.strerror or exc}")
    except (KeyboardInterrupt, asyncio.CancelledError):  # Ctrl-C outside a crawl's own handling of it
        print("clipcrawler: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug: one line, and the traceback on request
        if env.get("CLIPCRAWLER_DEBUG"):
            raise
        return _fail(f"unexpected {type(exc).__name__}: {exc} (set CLIPCRAWLER_DEBUG=1 for the traceback)")


def _needs_existing_db(args: argparse.Namespace) -> bool:
    words = [args.command, getattr(args, "streamers_command", None), getattr(args, "runs_command", None)]
    name = " ".join(w for w in words if w)
    return name in NEEDS_EXISTING_DB or args.command in NEEDS_EXISTING_DB


def _fail(message: str) -> int:
    print(f"clipcrawler: {process_redactor().text(message)}", file=sys.stderr)
    return 2


def _has_request(exc: httpx.HTTPError) -> bool:
    try:
        _ = exc.request  # httpx raises RuntimeError when the error has no request
    except RuntimeError:
        return False
    return True


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
