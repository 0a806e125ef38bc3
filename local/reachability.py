"""Stop a crawl that cannot reach Twitch at all, instead of retrying every streamer for minutes."""

from __future__ import annotations

import logging
import sys
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx

from shared import store
from shared.logs import EVENTS_LOGGER
from shared.ports import Clock, Database
from shared.states import UNFINISHED_JOBS, StopReason
from shared.timefmt import to_rfc3339

if TYPE_CHECKING:
    from local.runner import LocalRunner

CONNECT_FAILURES_IN_A_ROW = 5


class Unreachable(httpx.ConnectError):
    """Raised without trying once the service was found unreachable."""


class ReachabilityTransport(httpx.AsyncBaseTransport):
    """Counts connection failures in a row (an HTTP answer of any status resets it); past the limit, trips.

    Only failures to connect count: a 500 or a read timeout means Twitch is there, just unwell, and the
    usual retries handle that.
    """

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        on_unreachable: Callable[[str, str], None],
        *,
        limit: int = CONNECT_FAILURES_IN_A_ROW,
    ) -> None:
        self.inner = inner
        self.on_unreachable = on_unreachable
        self.limit = limit
        self.failures = 0
        self.tripped: tuple[str, str] | None = None  # (url, why) of the failure that tripped it

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url.copy_with(query=None))
        if self.tripped is not None:
            raise Unreachable(f"not tried: {self.tripped[0]} could not be reached", request=request)
        try:
            response = await self.inner.handle_async_request(request)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            self.failures += 1
            if self.failures >= self.limit and self.tripped is None:
                self.tripped = (url, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
                self.on_unreachable(*self.tripped)
            raise
        self.failures = 0
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


class UnreachableStop:
    """Wires a ReachabilityTransport to the crawl: when it trips, say so once, stop the runner, quiet the
    rest.
    """

    QUIETED = (EVENTS_LOGGER, "clipcrawler.consumer", "clipcrawler.producer")

    def __init__(self, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.transport = ReachabilityTransport(inner or httpx.AsyncHTTPTransport(), self._trip)
        self.reason: str | None = None
        self.runner: LocalRunner | None = None
        self._levels = {name: logging.getLogger(name).level for name in self.QUIETED}

    def _trip(self, url: str, why: str) -> None:
        self.reason = f"Twitch unreachable: {url} could not be reached ({why})"
        print(f"clipcrawler: cannot reach {url} ({why}): stopping the crawl", file=sys.stderr, flush=True)
        # What the invocations in flight log next is this same failure, once per streamer: that line says it.
        for name in self.QUIETED:
            logging.getLogger(name).setLevel(logging.ERROR)
        if self.runner is not None:
            self.runner.stop()

    async def close_run(self, db: Database, run_id: int, clock: Clock) -> int:
        """Fail the run's unfinished jobs with the reason, which closes it; `runs retry-failed`
        reopens them.
        """
        assert self.reason is not None
        now = to_rfc3339(clock.now())
        jobs = await db.all(
            "SELECT id, streamer_id FROM jobs WHERE run_id = ?1 AND status IN (?2, ?3)",
            run_id,
            *UNFINISHED_JOBS,
        )
        for job in jobs:
            await store.fail_job(
                int(job["id"]),
                run_id,
                str(job["streamer_id"]),
                uuid.uuid4().hex,
                now,
                store.Calls(),
                StopReason.TWITCH_UNREACHABLE,
                self.reason,
            ).run(db)
        return len(jobs)

    def reset(self) -> None:
        """Try Twitch again (the next scheduled tick), with the usual logging."""
        self.reason = None
        self.transport.tripped = None
        self.transport.failures = 0
        for name, level in self._levels.items():
            logging.getLogger(name).setLevel(level)
