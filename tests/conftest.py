from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from local.clock import VirtualClock
from local.emulated import emulator_client, emulator_settings
from local.emulator import EmulatorConfig, HelixWorld, create_emulator_app
from local.runner import LocalRunner
from local.sqlite_db import SqliteDatabase
from producer.streamers import add_streamers
from shared import redaction
from shared.config import Settings

START = 1_790_000_000.0  # 2026-09-21T14:13:20Z


@pytest.fixture(autouse=True)
def _no_leftover_log_handlers() -> Iterator[None]:
    """The Worker entries install a redacting handler on the clipcrawler logger; don't let it
    outlive a test.
    """
    yield
    logger = logging.getLogger("clipcrawler")
    for handler in [h for h in logger.handlers if getattr(h, "_clipcrawler", False)]:
        logger.removeHandler(handler)
    logger.setLevel(logging.NOTSET)
    redaction.forget()  # nor the secrets it learnt


@dataclass
class Stack:
    """A whole local deployment: emulated Twitch, SQLite D1, simulated queue, the real cores."""

    clock: VirtualClock
    world: HelixWorld
    app: Starlette
    http: httpx.AsyncClient
    db: SqliteDatabase
    settings: Settings
    runner: LocalRunner

    @property
    def emulator(self) -> Any:
        return self.app.state.emulator

    async def add_all_streamers(self) -> None:
        await add_streamers(
            self.db, self.http, self.settings, self.clock, [s.login for s in self.world.all_streamers()]
        )

    async def clip_ids(self) -> set[str]:
        return {r["id"] for r in await self.db.all("SELECT id FROM clips")}


StackFactory = Callable[..., Any]


@pytest.fixture
async def make_stack() -> AsyncIterator[StackFactory]:
    """Build stacks; each is torn down after the test."""
    opened: list[Stack] = []

    async def make(
        streamers: int = 10,
        *,
        seed: int = 1,
        clips_per_day: tuple[int, int] = (10, 30),
        config: EmulatorConfig | None = None,
        concurrency: int = 10,
        add: bool = True,
        wrap: Any = None,
        transport_wrapper: Any = None,
        activity: Any = None,
        **settings: Any,
    ) -> Stack:
        clock = VirtualClock(START)
        world = HelixWorld(seed, streamers, clips_per_day, clock=clock, activity=activity)
        config = config or EmulatorConfig()
        app = create_emulator_app(world, config, wrap=wrap)
        http = emulator_client(app)
        if transport_wrapper is not None:
            http = httpx.AsyncClient(transport=transport_wrapper(http._transport), base_url=http.base_url)
        db = await SqliteDatabase.open()
        merged = emulator_settings(Settings(), config).with_(http_backoff_seconds=0, **settings)
        runner = LocalRunner(db, http, merged, clock, concurrency=concurrency, seed=seed)
        stack = Stack(clock, world, app, http, db, merged, runner)
        opened.append(stack)
        if add:
            await stack.add_all_streamers()
        return stack

    yield make
    for stack in opened:
        await stack.http.aclose()
        await stack.db.close()
