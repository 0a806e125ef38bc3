"""A throttle on failed logins and bearer tokens: 429 with Retry-After, without spending D1's writes.

Failures are counted by a `FailureCounter`: the Workers Rate Limiting binding when the Worker has one
(`AUTH_FAILURES`), else a fixed-window count in memory (locally, and per isolate on Workers). Once a
client is over the limit, one row in `auth_blocks` refuses every try of that client, right or wrong,
until the block ends: a blocked client's guesses are never compared with the token. That row is the only
D1 write, at most one per blocked client per window, whatever the flood.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from starlette.requests import Request

from producer import auth
from producer.api.errors import ApiError
from shared.errors import ClipCrawlerError
from shared.logs import EventLog, Redactor
from shared.ports import Database, Statement

if TYPE_CHECKING:
    from producer.app import AppContext

FAILURES_ALLOWED = 10  # per client per window: enough for a mistyped token, far too few to guess one
WINDOW_SECONDS = 60
MAX_TRACKED_CLIENTS = 10_000  # the in-memory counter forgets the oldest windows past this


class FailureCounter(Protocol):
    async def over_limit(self, client: str, now: float) -> bool:
        """Count one failure for `client`; True once it has failed more than allowed in the window."""
        ...


@dataclass
class WindowCounter:
    """Failures per client in fixed windows, in memory: the local stand-in for the Rate Limiting binding."""

    allowed: int = FAILURES_ALLOWED
    window: int = WINDOW_SECONDS
    counts: dict[tuple[str, int], int] = field(default_factory=dict)

    async def over_limit(self, client: str, now: float) -> bool:
        key = (client, int(now) // self.window)
        self.counts[key] = self.counts.get(key, 0) + 1
        if len(self.counts) > MAX_TRACKED_CLIENTS:
            current = key[1]
            self.counts = {k: n for k, n in self.counts.items() if k[1] == current}
        return self.counts[key] > self.allowed


@dataclass
class AuthThrottle:
    """Where a failed credential is counted and a blocked client refused."""

    counter: FailureCounter = field(default_factory=WindowCounter)
    block_seconds: int = WINDOW_SECONDS

    async def refuse_if_blocked(self, db: Database, client: str, now: float) -> None:
        row = await db.first("SELECT blocked_until FROM auth_blocks WHERE client = ?", client)
        if row is not None and int(row["blocked_until"]) > now:
            raise too_many(int(row["blocked_until"]) - now)

    async def failed(self, db: Database, client: str, now: float, counter: FailureCounter | None = None) -> None:
        """Count a wrong credential (in `counter`, if the Worker has one); block the client once it is over."""
        try:
            over = await (counter or self.counter).over_limit(client, now)
        except ClipCrawlerError as exc:  # the Rate Limiting binding failed: count here rather than not at all
            EventLog(Redactor()).emit("auth_limiter_failed", level=logging.WARNING, error=type(exc).__name__)
            over = await self.counter.over_limit(client, now)
        if not over:
            return
        until = math.ceil(now) + self.block_seconds
        # Called only for a client that was not blocked when its request came in, so at most once per
        # window (a few times, for tries racing in parallel). Expired blocks are pruned with it.
        await db.batch([
            Statement("DELETE FROM auth_blocks WHERE blocked_until < ?", (math.floor(now) - 86_400,)),
            Statement("INSERT INTO auth_blocks (client, blocked_until) VALUES (?, ?) ON CONFLICT (client) "
                      "DO UPDATE SET blocked_until = excluded.blocked_until", (client, until)),
        ])
        raise too_many(until - now)


def too_many(wait: float) -> ApiError:
    seconds = max(1, math.ceil(wait))
    return ApiError(429, f"too many failed logins or bearer tokens from this address; try again in {seconds} s",
                    headers={"Retry-After": str(seconds)})


def client_of(request: Request, behind_cloudflare: bool) -> str:
    """Who is trying: Cloudflare's CF-Connecting-IP when the edge set it, else the socket's peer."""
    # Only a Worker trusts the header: Cloudflare's edge sets it there; locally anyone could send it.
    if behind_cloudflare:
        forwarded = request.headers.get("cf-connecting-ip", "").strip()
        if forwarded:
            return forwarded[:64]
    return request.client.host if request.client else "unknown"


async def check_bearer(request: Request, context: AppContext, throttle: AuthThrottle) -> bool:
    """True for the right bearer token, False for none or a wrong one (counted); 429 while blocked."""
    auth.require_token(context.api_token)
    if not auth.bearer_given(request):
        return False  # no credential is no guess: nothing to count
    client, now = client_of(request, context.behind_cloudflare), context.clock.now()
    await throttle.refuse_if_blocked(context.db, client, now)
    if auth.bearer_ok(request, context.api_token):
        return True
    await throttle.failed(context.db, client, now, context.failure_counter)
    return False
