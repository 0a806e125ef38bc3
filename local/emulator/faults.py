"""Twitch misbehaving on purpose: Helix faults via the emulator's `wrap` hook, network ones in a transport.

Every fault has a rate. Per-request faults draw from `random.Random(seed)` a fixed number of times per
request, so the same seed gives the same schedule whenever requests arrive in the same order (as they do
under the local runner for a given seed and concurrency), and changing one rate does not reshuffle the
others. Per-broadcaster and per-clip faults are keyed on the id, so they do not depend on order at all.
`injected` counts what was done.
"""

from __future__ import annotations

import copy
import hashlib
import math
import random
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import httpx
from starlette.requests import Request

from local.emulator.app import Emulator, Handler, Reply, decode_cursor, encode_cursor, helix_error
from shared.ports import Clock

HELIX_ROUTES = frozenset({"users", "clips"})
BAD_TEXT = "\udc80"  # a lone surrogate: valid as a JSON escape, impossible to encode as UTF-8
_REMEMBERED_WALKS = 10_000
_BROADCASTER_KEYS = {"users": "id", "streams": "user_id"}  # routes whose entries belong to one broadcaster


def _missing(name: str) -> Callable[[dict[str, Any]], None]:
    return lambda clip: clip.pop(name, None)


def _retyped(name: str, make: Callable[[Any], Any]) -> Callable[[dict[str, Any]], None]:
    return lambda clip: clip.__setitem__(name, make(clip.get(name)))


# Each breaks one rule shared.clips checks: a required field missing, or present with the wrong type.
MALFORMATIONS: dict[str, Callable[[dict[str, Any]], None]] = {
    "id missing": _missing("id"),
    "created_at missing": _missing("created_at"),
    "view_count missing": _missing("view_count"),
    "id not a string": _retyped("id", lambda v: 12345),
    "broadcaster_id null": _retyped("broadcaster_id", lambda v: None),
    "view_count a string": _retyped("view_count", str),
    "view_count negative": _retyped("view_count", lambda v: -1),
    "duration a string": _retyped("duration", str),
    "created_at a number": _retyped("created_at", lambda v: 1_790_000_000),
    "is_featured a string": _retyped("is_featured", lambda v: "yes"),
    "title a list": _retyped("title", lambda v: [v]),
}


@dataclass(frozen=True)
class HelixFaults:
    """What goes wrong with Twitch, and how often. Rates are probabilities in [0, 1]."""

    seed: int = 0
    routes: frozenset[str] = HELIX_ROUTES  # emulator routes the per-request faults below apply to
    # Per request:
    server_error_rate: float = 0.0  # 500 or 503 instead of an answer
    rate_limit_rate: float = 0.0  # the request opens a 429 burst: every request is refused until its reset
    rate_limit_burst_s: tuple[int, int] = (5, 60)  # a burst's length; Ratelimit-Reset says when it ends
    slow_rate: float = 0.0  # the answer takes `slow_s` on the emulator clock
    slow_s: float = 30.0  # past the crawler's default 10 s timeout, when FaultyTransport enforces it
    expire_tokens_at: tuple[int, ...] = ()  # request numbers (1-based) before which every token is revoked
    # Get Clips pagination, per page of a broadcaster's walk:
    repeat_page_rate: float = 0.0  # the previous page again, cursor and all, for the cursor it gave
    loop_cursor_rate: float = 0.0  # the next cursor points back to an earlier page (or this one)
    first_attempt_error_rate: float = 0.0  # a request's first attempt answers 503; asked again, it passes
    # Get Clips traps, by broadcaster, at the end of every walk:
    looping_broadcasters: frozenset[str] = frozenset()  # the last page's cursor leads back to that page
    empty_page_broadcasters: frozenset[str] = frozenset()  # ...leads on to an empty page with its own cursor
    # Per clip served:
    malformed_clip_rate: float = 0.0  # one of MALFORMATIONS
    oversized_title_rate: float = 0.0
    oversized_title_chars: int = 20_000
    bad_text_rate: float = 0.0  # lone surrogates in the title and the creator's name
    # Per id, decided by the id alone:
    deleted_clip_rate: float = 0.0  # the clip disappears from every answer...
    deleted_after_s: float = 3600.0  # ...this long after it was first served (0: never served)
    gone_broadcaster_rate: float = 0.0  # the broadcaster stops existing: absent from Users, Streams, Clips...
    gone_broadcasters: frozenset[str] = frozenset()  # (these ones whatever the rate)
    gone_after_s: float = 0.0  # ...this long after the first request about it
    # Network, in FaultyTransport:
    connect_error_rate: float = 0.0  # the request never reaches Twitch
    read_timeout_rate: float = 0.0  # Twitch does the work, the answer is lost

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.endswith("_rate") and not 0.0 <= value <= 1.0:
                raise ValueError(f"HelixFaults.{f.name} is {value!r}; a rate must be between 0 and 1")
        low, high = self.rate_limit_burst_s
        if not 1 <= low <= high:
            raise ValueError(
                f"HelixFaults.rate_limit_burst_s is {self.rate_limit_burst_s!r}; need 1 <= low <= high"
            )
        if any(n < 1 for n in self.expire_tokens_at):
            raise ValueError(
                f"HelixFaults.expire_tokens_at is {self.expire_tokens_at!r}; request numbers start at 1"
            )


class HelixFaultInjector:
    """Applies a HelixFaults: `wrap` for create_emulator_app, `transport` for the client's httpx transport."""

    def __init__(self, faults: HelixFaults) -> None:
        self.faults = faults
        self.injected: Counter[str] = Counter()
        self.requests = 0  # requests on `faults.routes` while active
        self.active = True  # inactive: everything passes through untouched and uncounted
        self.withheld_clips: set[str] = set()  # deleted clips left out of an answer at least once
        self.withheld_broadcasters: set[str] = set()
        self._rng = random.Random(f"{faults.seed}:helix")
        self._burst_reset = 0
        self._walks: OrderedDict[tuple[str, ...], tuple[str, dict[str, Any]]] = OrderedDict()
        self._first_seen: dict[str, float] = {}
        self._attempted: set[str] = set()

    def wrap(self, name: str, handler: Handler) -> Handler:
        """The emulator's `wrap` hook."""

        async def faulty(request: Request) -> Reply:
            if not self.active:
                return await handler(request)
            emulator: Emulator = request.app.state.emulator
            if name in self.faults.routes:
                refused = await self._before(emulator) or self._first_attempt(request)
                if refused is not None:
                    return refused
            reply = await handler(request)
            if reply.status == 200 and name == "clips":
                self._clips(request, reply, emulator.clock.now())
            elif reply.status == 200 and name in _BROADCASTER_KEYS:
                self._drop_gone(reply, emulator.clock.now(), _BROADCASTER_KEYS[name])
            return reply

        return faulty

    def transport(self, inner: httpx.AsyncBaseTransport, clock: Clock | None = None) -> FaultyTransport:
        """`inner` with the network faults; with `clock`, answers slower than the read timeout time out."""
        return FaultyTransport(
            inner,
            seed=f"{self.faults.seed}:transport",
            connect_error_rate=self.faults.connect_error_rate,
            read_timeout_rate=self.faults.read_timeout_rate,
            clock=clock,
            injected=self.injected,
        )

    async def _before(self, emulator: Emulator) -> Reply | None:
        """Faults that replace or delay the answer; None lets the request through."""
        f = self.faults
        roll_burst, roll_length, roll_error, roll_status, roll_slow = (self._rng.random() for _ in range(5))
        self.requests += 1
        if self.requests in f.expire_tokens_at:
            emulator.expire_all_tokens()
            self.injected["token_expiry"] += 1
        now = emulator.clock.now()
        if now >= self._burst_reset and roll_burst < f.rate_limit_rate:
            low, high = f.rate_limit_burst_s
            self._burst_reset = math.ceil(now) + low + int(roll_length * (high - low + 1))
            self.injected["rate_limit_burst"] += 1
        if now < self._burst_reset:
            self.injected["rate_limited"] += 1
            reply = helix_error(429, "Too Many Requests")
            reply.headers.update(
                {
                    "Ratelimit-Limit": str(emulator.config.rate_limit_points),
                    "Ratelimit-Remaining": "0",
                    "Ratelimit-Reset": str(self._burst_reset),
                }
            )
            return reply
        if roll_error < f.server_error_rate:
            status = 503 if roll_status < 0.5 else 500
            self.injected[f"server_error_{status}"] += 1
            return helix_error(status, "")
        if roll_slow < f.slow_rate:
            self.injected["slow"] += 1
            await emulator.clock.sleep(f.slow_s)
        return None

    def _first_attempt(self, request: Request) -> Reply | None:
        """503 for the first attempt of a request chosen by its URL (keyed: no other fault is reshuffled)."""
        rate = self.faults.first_attempt_error_rate
        key = f"{request.url.path}?{sorted(request.query_params.multi_items())}"
        if rate == 0 or key in self._attempted:
            return None
        self._attempted.add(key)
        if _keyed(self.faults.seed, "first_attempt", key) >= rate:
            return None
        self.injected["first_attempt_503"] += 1
        return helix_error(503, "")

    def _end_of_walk(self, broadcaster: str, query: Any, body: dict[str, Any]) -> None:
        """The traps of a walk's last page: a cursor where the list has ended."""
        offset = decode_cursor(query["after"]) if "after" in query else 0
        if broadcaster in self.faults.looping_broadcasters:
            # Twitch's endless walks (CommanderRoot/twitch-tools#136): the last page leads back to itself.
            body["pagination"]["cursor"] = encode_cursor(offset)
            self.injected["looping_cursor"] += 1
        elif broadcaster in self.faults.empty_page_broadcasters:
            # "the cursor may return an empty page near the end of the list" (Twitch's API guide), and that
            # empty page carries a cursor too.
            step = max(len(body["data"]), int(query.get("first", 20)))
            body["pagination"]["cursor"] = encode_cursor(offset + step)
            self.injected["empty_page_cursor"] += 1

    def _clips(self, request: Request, reply: Reply, now: float) -> None:
        query = request.query_params
        roll_repeat, roll_loop, roll_back = (self._rng.random() for _ in range(3))
        broadcaster = query.get("broadcaster_id")
        if broadcaster is None:  # by id or by game: only deletions and damaged clips
            self._clip_faults(reply.body, now)
            return
        if self._gone(broadcaster, now):
            reply.body = {"data": [], "pagination": {}}
            return
        walk = (broadcaster, query.get("started_at", ""), query.get("ended_at", ""), query.get("first", ""))
        after = query.get("after")
        last = self._walks.get(walk)
        if last is not None and after == last[0] and roll_repeat < self.faults.repeat_page_rate:
            self.injected["repeated_page"] += 1
            reply.body = copy.deepcopy(last[1])
            return
        self._clip_faults(reply.body, now)
        cursor = reply.body["pagination"].get("cursor")
        if cursor is None:
            self._end_of_walk(broadcaster, query, reply.body)
            return
        if roll_loop < self.faults.loop_cursor_rate:
            page = int(query.get("first", "20"))
            offset = decode_cursor(after) if after is not None else 0
            earlier = int(roll_back * (offset // page + 1)) * page
            cursor = reply.body["pagination"]["cursor"] = encode_cursor(earlier)
            self.injected["looped_cursor"] += 1
        self._walks[walk] = (cursor, copy.deepcopy(reply.body))
        self._walks.move_to_end(walk)
        if len(self._walks) > _REMEMBERED_WALKS:
            self._walks.popitem(last=False)

    def _clip_faults(self, body: dict[str, Any], now: float) -> None:
        body["data"] = [clip for clip in body["data"] if not self._deleted(clip["id"], now)]
        for clip in body["data"]:
            self._corrupt(clip)

    def _drop_gone(self, reply: Reply, now: float, key: str) -> None:
        """A gone broadcaster has no user and no stream."""
        reply.body["data"] = [entry for entry in reply.body["data"] if not self._gone(entry[key], now)]

    def _corrupt(self, clip: dict[str, Any]) -> None:
        f = self.faults
        roll_malformed, roll_kind, roll_oversized, roll_text = (self._rng.random() for _ in range(4))
        if roll_oversized < f.oversized_title_rate:
            self.injected["oversized_title"] += 1
            base = clip["title"] + " "
            clip["title"] = (base * (f.oversized_title_chars // len(base) + 1))[: f.oversized_title_chars]
        if roll_text < f.bad_text_rate:
            self.injected["bad_text"] += 1
            clip["title"] = clip["title"] + BAD_TEXT
            clip["creator_name"] = BAD_TEXT + clip["creator_name"]
        if roll_malformed < f.malformed_clip_rate:
            kinds = list(MALFORMATIONS)
            kind = kinds[int(roll_kind * len(kinds))]
            self.injected["malformed_clip"] += 1
            MALFORMATIONS[kind](clip)

    def _deleted(self, clip_id: str, now: float) -> bool:
        f = self.faults
        if f.deleted_clip_rate == 0 or _keyed(f.seed, "deleted", clip_id) >= f.deleted_clip_rate:
            return False
        first = self._first_seen.setdefault("clip:" + clip_id, now)
        if now < first + f.deleted_after_s:
            return False
        self.injected["deleted_clip"] += 1
        self.withheld_clips.add(clip_id)
        return True

    def _gone(self, broadcaster_id: str, now: float) -> bool:
        f = self.faults
        chosen = broadcaster_id in f.gone_broadcasters or (
            f.gone_broadcaster_rate > 0 and _keyed(f.seed, "gone", broadcaster_id) < f.gone_broadcaster_rate
        )
        if not chosen:
            return False
        first = self._first_seen.setdefault("broadcaster:" + broadcaster_id, now)
        if now < first + f.gone_after_s:
            return False
        self.injected["gone_broadcaster"] += 1
        self.withheld_broadcasters.add(broadcaster_id)
        return True


class FaultyTransport(httpx.AsyncBaseTransport):
    """An httpx transport around another one that loses connections and answers, at a rate.

    ASGITransport never times out, so with a `clock` this one raises ReadTimeout for an answer that took
    longer than the request's read timeout on that clock (see HelixFaults.slow_rate).
    """

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        *,
        seed: int | str = 0,
        connect_error_rate: float = 0.0,
        read_timeout_rate: float = 0.0,
        clock: Clock | None = None,
        injected: Counter[str] | None = None,
    ) -> None:
        rates = {"connect_error_rate": connect_error_rate, "read_timeout_rate": read_timeout_rate}
        for name, value in rates.items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"FaultyTransport {name} is {value!r}; a rate must be between 0 and 1")
        self.inner = inner
        self.connect_error_rate = connect_error_rate
        self.read_timeout_rate = read_timeout_rate
        self.clock = clock
        self.injected: Counter[str] = Counter() if injected is None else injected
        self._rng = random.Random(seed)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        roll_connect, roll_read = self._rng.random(), self._rng.random()
        if roll_connect < self.connect_error_rate:
            self.injected["connect_error"] += 1
            raise httpx.ConnectError("injected fault: connection refused", request=request)
        started = self.clock.now() if self.clock is not None else 0.0
        response = await self.inner.handle_async_request(request)
        if roll_read < self.read_timeout_rate:
            await response.aclose()
            self.injected["read_timeout"] += 1
            raise httpx.ReadTimeout("injected fault: the answer was lost", request=request)
        limit = request.extensions.get("timeout", {}).get("read")
        if self.clock is not None and limit is not None and self.clock.now() - started > limit:
            await response.aclose()
            self.injected["late_answer"] += 1
            raise httpx.ReadTimeout(f"no answer within the {limit} s read timeout", request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def _keyed(seed: int, kind: str, key: str) -> float:
    """A number in [0, 1) fixed by (seed, kind, key): the same id gets the same fate in every run."""
    digest = hashlib.sha256(f"{seed}:{kind}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64
