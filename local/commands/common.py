"""What every subcommand shares: the database path, settings from env and flags."""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from shared.config import Settings

DEFAULT_DB = "clipcrawler.sqlite"


def settings_from(args: argparse.Namespace, env: Mapping[str, str]) -> Settings:
    """Environment first, flags over it."""
    return Settings.from_env(env, twitch_api_url=args.twitch_api_url, twitch_auth_url=args.twitch_auth_url,
                             twitch_client_id=args.client_id, twitch_client_secret=args.client_secret)


def db_path(args: argparse.Namespace, env: Mapping[str, str]) -> str:
    return args.db or env.get("CLIPCRAWLER_DB") or DEFAULT_DB
