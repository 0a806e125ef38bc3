"""Stop a crawl that cannot reach Twitch at all, instead of retrying every streamer for minutes."""

from __future__ import annotations

import logging
import sys
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx

from shared import redaction, store
from shared.logs import EVENTS_LOGGER
from shared.ports import Clock, Database
from shared.states import UNFINISHED_JOBS, StopReason
from shared.timefmt import to_rfc3339

if TYPE_CHECKING:
    from local.runner import LocalRunner

CONNECT_FAILURES_IN_A_ROW = 5
TOKEN_PATH = "/token"
# How id.twitch.tv refuses client credentials; HelixClient.mint_token reads the same statuses as a refusal.
REFUSED = (400, 401, 403)


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
        on_refused: Callable[[int, str], None] = lambda status, message: None,
    ) -> None:
        self.inner = inner
        self.on_unreachable = on_unreachable
        self.on_refused = on_refused  # the token endpoint refused the client credentials: (status, message)
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
        token_call = request.method == "POST" and request.url.path.endswith(TOKEN_PATH)
        if token_call and response.status_code in REFUSED:
            await response.aread()
            self.on_refused(response.status_code, _message(response))
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


class UnreachableStop:
    """Wires a ReachabilityTransport to the crawl: when it trips, say so once, stop the runner, quiet the
    rest.
    """

    QUIETED = (EVENTS_LOGGER, "clipcrawler.consumer", "clipcrawler.producer")

    def __init__(self, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.transport = ReachabilityTransport(
            inner or httpx.AsyncHTTPTransport(), self._trip, on_refused=self._refused
        )
        self.reason: str | None = None
        self.refused = False
        self.runner: LocalRunner | None = None
        self._levels = {name: logging.getLogger(name).level for name in self.QUIETED}

    def _trip(self, url: str, why: str) -> None:
        self.reason = f"Twitch unreachable: {url} could not be reached ({why})"
        print(f"clipcrawler: cannot reach {url} ({why}): stopping the crawl", file=sys.stderr, flush=True)
        # What the invocations in flight log next is this same failure, once per streamer: that line says it.
        self._quiet()
        if self.runner is not None:
            self.runner.stop()

    def _refused(self, status: int, message: str) -> None:
        # The run's jobs fail by themselves, asking Twitch no more (shared/token_store.py): say why once, and
        # quiet the line each of them would log.
        if self.refused:
            return
        self.refused = True
        print(
            f"clipcrawler: Twitch refused the client credentials (HTTP {status}: {message}): check "
            "TWITCH_CLIENT_ID and TWITCH_CLIENT_SECRET (or --client-id / --client-secret)",
            file=sys.stderr,
            flush=True,
        )
        self._quiet()

    def _quiet(self) -> None:
        for name in self.QUIETED:
            logging.getLogger(name).setLevel(logging.ERROR)

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
        self.refused = False
        self.transport.tripped = None
        self.transport.failures = 0
        for name, level in self._levels.items():
            logging.getLogger(name).setLevel(level)


def _message(response: httpx.Response) -> str:
    """What the token endpoint said, scrubbed: some servers repeat the refused request, secret and all."""
    try:
        body = response.json()
    except ValueError:
        body = None
    message = body.get("message") if isinstance(body, dict) else None
    return redaction.scrub(str(message)[:200] if message else response.reason_phrase or "no message")
