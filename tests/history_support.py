"""A channel with 5 years of history on the emulator, and a backfill of it on the Free plan."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from local.emulator import EmulatorConfig
from local.emulator.history import ChannelHistory
from producer.core import start_run
from shared.backfill import backfill_range
from shared.ports import Ports
from shared.timefmt import parse_rfc3339
from shared.windows import Window
from tests.conftest import START, Stack, StackFactory

DAY = 86_400
YEARS = 5
HISTORY_START = (START // DAY - YEARS * 365) * DAY
BUSY_DAYS = (400, 1100, 1600)
CLIPS = 20_000


async def history_stack(make_stack: StackFactory, seed: int = 7, **settings: object) -> Stack:
    """One streamer whose history starts 5 years before the stack's clock, about 20,000 clips in all."""
    history = ChannelHistory(seed=seed, start=HISTORY_START, days=YEARS * 365, busy_days=BUSY_DAYS)
    config = EmulatorConfig(history_s=(YEARS + 1) * 365 * DAY)
    stack = await make_stack(1, seed=seed, activity=history, config=config, **settings)
    streamer = stack.world.all_streamers()[0]
    stack.world.set_rate(streamer.id, 1.04 * (CLIPS - 1_300 * len(BUSY_DAYS)) / (YEARS * 365))
    return stack


def the_range(stack: Stack) -> Window:
    return backfill_range(HISTORY_START, stack.clock.now())


async def start_backfill(stack: Stack) -> int:
    ports = Ports(db=stack.db, queue=stack.runner.queue, clock=stack.clock, http=stack.http)
    streamer = stack.world.all_streamers()[0]
    started = await start_run(ports, stack.settings, streamer_ids=[streamer.id], backfill=the_range(stack))
    return started.run_id


@dataclass
class Truth:
    """The emulator world's clips in the backfilled range: what a complete backfill stored."""

    ids: set[str]
    per_day: Counter[int]

    @classmethod
    def of(cls, stack: Stack) -> Truth:
        streamer = stack.world.all_streamers()[0]
        window = the_range(stack)
        clips = stack.world.clips(streamer.id, window.start, window.end)
        days = Counter(int((parse_rfc3339(c["created_at"]) - HISTORY_START) // DAY) for c in clips)
        return cls({c["id"] for c in clips}, days)
