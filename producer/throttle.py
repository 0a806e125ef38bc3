"""A throttle on failed logins and bearer tokens: 429 with Retry-After, without spending D1's writes.

Failures are counted by a `FailureCounter`: the Workers Rate Limiting binding when the Worker has one
(`AUTH_FAILURES`), else a fixed-window count in memory (locally, and per isolate on Workers). Once a
client is over the limit, one row in `auth_blocks` refuses every try of that client, right or wrong,
until the block ends: a blocked client's guesses are never compared with the token. That row is the only
D1 write, at most one per blocked client per window, and at most MAX_BLOCK_WRITES per window in all.
"""

from __future__ import annotations

import ipaddress
import logging
import math
from dataclasses import dataclass, field

from starlette.requests import Request

from producer import auth
from producer.api.errors import ApiError
from producer.context import AppContext, FailureCounter
from shared.batch import Batch
from shared.errors import ClipCrawlerError
from shared.logs import EventLog, Redactor
from shared.ports import Database, Statement

FAILURES_ALLOWED = 10  # per client per window: enough for a mistyped token, far too few to guess one
WINDOW_SECONDS = 60
MAX_TRACKED_CLIENTS = 10_000  # the in-memory counter forgets the oldest windows past this
MAX_BLOCK_WRITES = 20  # block rows written to D1 per window at most, however many addresses flood
IPV6_PREFIX = 64  # one IPv6 client is its /64: a host holds a whole one, and would rotate through it


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
    max_block_writes: int = MAX_BLOCK_WRITES  # per window, whatever the number of clients
    blocked: dict[str, int] = field(default_factory=dict)  # what this isolate knows, before asking D1
    writes: dict[int, int] = field(default_factory=dict)  # block rows written, by window

    async def refuse_if_blocked(self, db: Database, client: str, now: float) -> None:
        until = self.blocked.get(client)
        if until is None or until <= now:
            row = await db.first("SELECT blocked_until FROM auth_blocks WHERE client = ?", client)
            until = int(row["blocked_until"]) if row is not None else None
        if until is not None and until > now:
            self._remember(client, until, now)
            raise too_many(until - now)

    async def failed(
        self, db: Database, client: str, now: float, counter: FailureCounter | None = None
    ) -> None:
        """Count a wrong credential (in `counter`, if the Worker has one); block the client once it
        is over.
        """
        try:
            over = await (counter or self.counter).over_limit(client, now)
        except ClipCrawlerError as exc:  # the Rate Limiting binding failed: count here rather than not at all
            EventLog(Redactor()).emit("auth_limiter_failed", level=logging.WARNING, error=type(exc).__name__)
            over = await self.counter.over_limit(client, now)
        if not over:
            return
        until = math.ceil(now) + self.block_seconds
        self._remember(client, until, now)
        window = int(now) // WINDOW_SECONDS
        self.writes = {window: self.writes.get(window, 0) + 1}
        # Called only for a client that was not blocked when its request came in, so at most once per
        # window (a few times, for tries racing in parallel). Past max_block_writes in a window (a flood
        # from many addresses), blocks stay in this isolate's memory only: D1's writes are the crawl's.
        if self.writes[window] <= self.max_block_writes:
            await (
                Batch()
                .add(
                    Statement(
                        "DELETE FROM auth_blocks WHERE blocked_until < ?1", (math.floor(now) - 86_400,)
                    ),
                    "pruned",
                )
                .add(
                    Statement(
                        "INSERT INTO auth_blocks (client, blocked_until) VALUES (?1, ?2) ON CONFLICT "
                        "(client) DO UPDATE SET blocked_until = excluded.blocked_until",
                        (client, until),
                    ),
                    "blocked",
                )
                .run(db)
            )
        raise too_many(until - now)

    def _remember(self, client: str, until: int, now: float) -> None:
        if len(self.blocked) >= MAX_TRACKED_CLIENTS:
            self.blocked = {c: u for c, u in self.blocked.items() if u > now}
        if len(self.blocked) < MAX_TRACKED_CLIENTS:
            self.blocked[client] = until


def too_many(wait: float) -> ApiError:
    seconds = max(1, math.ceil(wait))
    return ApiError(
        429,
        f"too many failed logins or bearer tokens from this address; try again in {seconds} s",
        headers={"Retry-After": str(seconds)},
    )


def client_of(request: Request, behind_cloudflare: bool) -> str:
    """Who is trying: Cloudflare's CF-Connecting-IP when the edge set it, else the socket's peer."""
    # Only a Worker trusts the header: Cloudflare's edge sets it there; locally anyone could send it.
    address = request.client.host if request.client else "unknown"
    if behind_cloudflare:
        address = request.headers.get("cf-connecting-ip", "").strip()[:64] or address
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if parsed.version == 6:
        return str(ipaddress.ip_network(f"{parsed}/{IPV6_PREFIX}", strict=False))
    return str(parsed)


async def check_bearer(request: Request, context: AppContext, throttle: AuthThrottle) -> bool:
    """True for the right bearer token, False for none or a wrong one (counted); 429 while blocked."""
    auth.require_token(context.api_token)
    if not auth.bearer_given(request):
        return False  # no credential is no guess: nothing to count
    client, now = client_of(request, context.behind_cloudflare), context.ports.clock.now()
    await throttle.refuse_if_blocked(context.ports.db, client, now)
    if auth.bearer_ok(request, context.api_token):
        return True
    await throttle.failed(context.ports.db, client, now, context.failure_counter)
    return False
