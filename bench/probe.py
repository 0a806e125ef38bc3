"""Counting every outbound call, per consumer invocation, independently of the crawler's own budget."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

import httpx

from shared.ports import Clock

HELIX_PREFIX = "/helix/"
CLIPS_PATH = "/helix/clips"
GAMES_PATH = "/helix/games"
TOKEN_SUFFIX = "/oauth2/token"


@dataclass
class Tally:
    """Subrequests of one invocation (or of a whole run), by kind."""

    helix: int = 0
    d1: int = 0
    queue: int = 0
    message: str = ""  # the type of message a consumer invocation handled ("crawl", "fanout")
    # The round trips made before the first queue send, which every consumer waits on, as steps of [helix,
    # d1]:
    # a call that starts while another is in flight joins that call's step (the producer mints the token while
    # it reads its slice).
    steps: list[list[int]] = field(default_factory=list)
    sent: bool = False
    in_flight: int = 0

    @property
    def before_first_send(self) -> tuple[int, int] | None:
        """(helix, d1) made before the first queue send; None if nothing was sent."""
        if not self.sent:
            return None
        return sum(step[0] for step in self.steps), sum(step[1] for step in self.steps)

    @property
    def external(self) -> int:
        return self.helix

    @property
    def internal(self) -> int:
        return self.d1 + self.queue

    @property
    def total(self) -> int:
        return self.helix + self.d1 + self.queue

    def add(self, kind: str) -> None:
        if kind == "queue":
            self.sent = True
        else:
            if not self.sent:
                if self.in_flight == 0 or not self.steps:
                    self.steps.append([0, 0])
                self.steps[-1][0 if kind == "helix" else 1] += 1
            self.in_flight += 1
        setattr(self, kind, getattr(self, kind) + 1)

    def done(self, kind: str) -> None:
        """A helix or d1 call counted by `add` has been answered."""
        if kind != "queue":
            self.in_flight -= 1


# Each consumer invocation runs in its own asyncio task, which carries its own copy of this variable.
_current: ContextVar[Tally | None] = ContextVar("bench_invocation", default=None)


@dataclass
class Probe:
    """What a run sent out: totals, one tally per invocation, and what Helix answered."""

    totals: Tally = field(default_factory=Tally)
    producer: list[Tally] = field(default_factory=list)
    consumer: list[Tally] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)  # Helix API answers (not the token endpoint)
    clip_pages: int = 0  # Get Clips answers with a page of a broadcaster's clips (200)
    upkeep_calls: int = 0  # Get Clips by id and Get Games: the upkeep after a crawl (consumer/upkeep.py)
    points_at: list[float] = field(default_factory=list)  # virtual times of answers that cost a point
    # broadcaster id -> when the first Get Clips request that was answered with a page went out
    first_fetch: dict[str, float] = field(default_factory=dict)
    # (broadcaster id, started_at, ended_at) of every Get Clips request, for the calls the crawl needed
    clip_queries: list[dict[str, str]] = field(default_factory=list)
    token_mints: int = 0  # token endpoint answers that handed out a token

    def count(self, kind: str) -> None:
        """Count one outbound call of `kind` ('helix', 'd1' or 'queue') as it goes out."""
        self.totals.add(kind)
        current = _current.get()
        if current is not None:
            current.add(kind)

    def finished(self, kind: str) -> None:
        """The call of `kind` counted last in this task has its answer."""
        self.totals.done(kind)
        current = _current.get()
        if current is not None:
            current.done(kind)

    @contextmanager
    def invocation(self, role: str, message: str = "") -> Iterator[Tally]:
        """Attribute the calls made inside the block (in this task) to one invocation of `role`."""
        tally = Tally(message=message)
        token = _current.set(tally)
        try:
            yield tally
        finally:
            _current.reset(token)
            (self.producer if role == "producer" else self.consumer).append(tally)

    def answered(self, path: str, status: int, when: float, by_broadcaster: bool = True) -> None:
        if not path.startswith(HELIX_PREFIX):
            return
        if path == GAMES_PATH or (path == CLIPS_PATH and not by_broadcaster):
            self.upkeep_calls += 1
        self.statuses[status] += 1
        # The emulator charges a point for every Helix answer except 401 (no token) and 429 (no point left).
        if status not in (401, 429):
            self.points_at.append(when)
        if path == CLIPS_PATH and status == 200 and by_broadcaster:
            self.clip_pages += 1

    @property
    def helix_requests(self) -> int:
        return sum(self.statuses.values())


class CountingTransport(httpx.AsyncBaseTransport):
    """An httpx transport that counts each request as one external subrequest, then forwards it."""

    def __init__(self, inner: httpx.AsyncBaseTransport, probe: Probe, clock: Clock) -> None:
        self._inner = inner
        self._probe = probe
        self._clock = clock

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self._probe.count("helix")
        sent_at = self._clock.now()
        try:
            response = await self._inner.handle_async_request(request)
        finally:
            self._probe.finished("helix")
        # httpx parses the query string again on every `url.params`: read it once (this is the harness's CPU).
        params, path = request.url.params, request.url.path
        self._probe.answered(
            path, response.status_code, self._clock.now(), "broadcaster_id" in params or "game_id" in params
        )
        if path.endswith(TOKEN_SUFFIX) and response.status_code == 200:
            self._probe.token_mints += 1
        broadcaster = params.get("broadcaster_id")
        if path == CLIPS_PATH and broadcaster:
            self._probe.clip_queries.append(
                {k: params.get(k, "") for k in ("broadcaster_id", "started_at", "ended_at")}
            )
        if path == CLIPS_PATH and response.status_code == 200 and broadcaster:
            self._probe.first_fetch.setdefault(broadcaster, sent_at)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()
