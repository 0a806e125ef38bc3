"""Schemathesis against the app in process, from the committed openapi.json: no 500, nothing off the schema.

The database binds as D1 does (BindsAsD1), so a number the description lets through but D1 cannot bind is
a 500 here too.

Every check Schemathesis has is on. The example count is bounded (CLIPCRAWLER_SCHEMATHESIS_EXAMPLES, 25 per
operation in the suite) so the file runs in seconds; raise it to look harder.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from starlette.requests import Request

from local.clock import VirtualClock
from local.emulated import emulator_client, emulator_settings
from local.emulator import EmulatorConfig, HelixWorld, create_emulator_app
from local.runner import LocalRunner
from local.sqlite_db import SqliteDatabase
from producer.app import create_app
from producer.context import AppContext
from producer.streamers import add_streamers
from producer.throttle import AuthThrottle, WindowCounter
from shared.bindings import _bind_value
from shared.config import Settings
from shared.ports import Ports, Result, Statement
from tests.api_support import SPEC_PATH, TOKEN
from tests.conftest import START

EXAMPLES = int(os.environ.get("CLIPCRAWLER_SCHEMATHESIS_EXAMPLES", "25"))


class BindsAsD1(SqliteDatabase):
    """SQLite that refuses, as D1 does, every parameter the Worker's bind guard refuses (2**53 - 1, say)."""

    async def batch(self, statements: Sequence[Statement]) -> list[Result]:
        for statement in statements:
            for position, value in enumerate(statement.params, 1):
                _bind_value(value, position, statement.sql)
        return await super().batch(statements)


class LazyStack:
    """A local stack with a finished run, built on the first request, in the loop the app runs in."""

    def __init__(self) -> None:
        self.context: AppContext | None = None

    async def __call__(self, request: Request) -> AppContext:
        if self.context is None:
            clock = VirtualClock(START)
            world = HelixWorld(3, 3, clock=clock)
            config = EmulatorConfig()
            http = emulator_client(create_emulator_app(world, config))
            db = await BindsAsD1.open()
            merged = emulator_settings(Settings(), config).with_(
                http_backoff_seconds=0, max_retries=0, http_attempts=1
            )
            runner = LocalRunner(db, http, merged, clock, concurrency=1)
            await add_streamers(db, http, merged, clock, [s.login for s in world.all_streamers()])
            await runner.crawl()
            ports = Ports(db=db, queue=runner.queue, clock=clock, http=http)
            self.context = AppContext(ports=ports, settings=merged, api_token=TOKEN)
        return self.context


# The throttle would answer 429 to the wrong tokens Schemathesis's auth checks send on purpose; the
# throttle has its own tests (tests/test_api_hostile.py).
app = create_app(LazyStack(), throttle=AuthThrottle(WindowCounter(allowed=10**9)))
# What the description cannot say, so schema-valid requests that break it get a 422 (with `field` naming it):
# a kick's streamer ids must exist and be active, a backfill's `from` must come before its `to`, which is
# not in the future; the streamers' `after` must be a `next_after` an earlier page gave.
ALSO_422 = {"positive_data_acceptance": {"expected-statuses": ["2xx", "401", "404", "409", "422", "429"]}}
STATE_DEPENDENT = [
    {"include-path": "/runs", "include-method": "POST", "checks": ALSO_422},
    {"include-path": "/streamers", "include-method": "GET", "checks": ALSO_422},
]
# A body over the app's 64 KiB limit is refused with 413 before anything else is read (the fuzzer's negative
# cases build such bodies from long lists of long strings): a rejection, as much as a 400 is.
REJECTED = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]
schema = schemathesis.openapi.from_path(
    SPEC_PATH,
    config=SchemathesisConfig.from_dict(
        {
            "checks": {"negative_data_rejection": {"expected-statuses": REJECTED}},
            "operations": STATE_DEPENDENT,
        }
    ),
)
schema.app = app  # every call, the checks' own probes included, goes into the app in process


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_the_api_keeps_to_its_description(case: Any) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"})
