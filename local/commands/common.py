"""What every subcommand shares: the database path, settings from env and flags, argument types."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping

from local.sqlite_db import SqliteDatabase
from shared.config import Settings

DEFAULT_DB = "clipcrawler.sqlite"


def settings_from(args: argparse.Namespace, env: Mapping[str, str]) -> Settings:
    """Environment first, flags over it."""
    return Settings.from_env(
        env,
        twitch_api_url=args.twitch_api_url,
        twitch_auth_url=args.twitch_auth_url,
        twitch_client_id=args.client_id,
        twitch_client_secret=args.client_secret,
    )


def db_path(args: argparse.Namespace, env: Mapping[str, str]) -> str:
    return args.db or env.get("CLIPCRAWLER_DB") or DEFAULT_DB


async def open_db(
    args: argparse.Namespace, env: Mapping[str, str], *, create: bool = False
) -> SqliteDatabase:
    """The command's database; only the commands that fill one (`create`) may start a new file."""
    return await SqliteDatabase.open(db_path(args, env), create=create)


def int_between(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number in [low, high], or a one-line error naming the value."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is out of range; expected {low}-{high:,}")
        return value

    parse.__name__ = "number"
    return parse
