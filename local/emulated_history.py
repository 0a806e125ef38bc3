"""An emulator whose streamers have years of history: what `clipcrawler backfill --emulated` reads."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.applications import Starlette

from local.emulator import EmulatorConfig, HelixWorld, create_emulator_app
from local.emulator.history import ChannelHistory
from shared.ports import Clock
from shared.timefmt import parse_rfc3339

HISTORY_START = parse_rfc3339("2021-01-01T00:00:00Z")  # fixed, so a rerun (a resume) sees the same world
DAY_S = 86_400
STREAMERS = 20
BUSY_DAYS = (400, 1100, 1600)
CLIPS_PER_DAY = 9.0  # with the busy days, about 20,000 clips over 5 years


def history_world(seed: int, clock: Clock) -> HelixWorld:
    days = int((clock.now() - HISTORY_START) // DAY_S) + 1
    history = ChannelHistory(seed=seed, start=HISTORY_START, days=days, busy_days=BUSY_DAYS)
    world = HelixWorld(seed, STREAMERS, clock=clock, activity=history)
    for streamer in world.all_streamers():
        world.set_rate(streamer.id, CLIPS_PER_DAY)
    return world


def history_emulator(seed: int, logins: Sequence[str], clock: Clock) -> tuple[Starlette, EmulatorConfig]:
    """The app and its config; `logins` are checked by the crawl's Get Users, as on Twitch."""
    config = EmulatorConfig(history_s=clock.now() - HISTORY_START + DAY_S)
    return create_emulator_app(history_world(seed, clock), config), config
