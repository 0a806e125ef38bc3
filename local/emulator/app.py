"""A Starlette app that answers like Twitch's OAuth (id.twitch.tv) and Helix endpoints, from a HelixWorld."""

from __future__ import annotations

import base64
import binascii
import json
import math
import random
import secrets
import string
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from local.emulator.needed import NeededCalls
from local.emulator.world import HelixWorld
from shared.errors import InvalidInput
from shared.timefmt import align_down, parse_rfc3339, to_rfc3339

WEEK_S = 7 * 86_400
ALL_TIME_S = 30 * 86_400
# Windows reaching further back are clipped, so `started_at=0001-01-01` costs a year of hours, not 2,000.
HISTORY_S = 365 * 86_400
TRUNCATE_S = 600
MAX_IDS = 100
_TOKEN_ALPHABET = string.ascii_lowercase + string.digits


@dataclass(frozen=True)
class EmulatorConfig:
    """Credentials, token lifetime, simulated latency, rate limit and result cap."""

    client_id: str = "emulator-client"
    client_secret: str = "emulator-secret"
    token_lifetime_s: int = 5_011_271
    latency_s: float = 0.0
    latency_jitter_s: float = 0.0
    rate_limit_points: int = 800
    result_cap: int = 1000
    seed: int = 0


@dataclass
class Reply:
    """A response before it is serialised: the one shape every handler returns."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Awaitable[Reply]]
# Given a route name ("token", "validate", "users", "clips", "not_found") and its full handler (auth and
# rate limit included), return the handler to serve instead; this is where fault injection hooks in.
Wrap = Callable[[str, Handler], Handler]


@dataclass
class _Token:
    client_id: str
    expires_at: float


@dataclass
class _Bucket:
    remaining: int
    reset_at: int


class _AsciiJSONResponse(JSONResponse):
    """JSON with non-ASCII escaped, so a fault can put lone surrogates ("\\udc80") in a body; UTF-8 cannot."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, allow_nan=False, separators=(",", ":")).encode("ascii")


class BadRequest(Exception):
    """A Helix request parameter is invalid; answered as 400 with this message."""


def helix_error(status: int, message: str) -> Reply:
    """A Helix-style error body: `{"error", "status", "message"}`."""
    return Reply(status, {"error": HTTPStatus(status).phrase, "status": status, "message": message})


def encode_cursor(offset: int) -> str:
    """Twitch-shaped cursor: base64 of `{"b":null,"a":{"Cursor":<base64 offset>}}`, unpadded."""
    inner = base64.b64encode(str(offset).encode()).decode()
    outer = json.dumps({"b": None, "a": {"Cursor": inner}}, separators=(",", ":"))
    return base64.b64encode(outer.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The offset inside a cursor made by `encode_cursor`; BadRequest for anything else."""
    try:
        # A client that does not percent-encode sends '+' which arrives as a space.
        padded = cursor.replace(" ", "+") + "=" * (-len(cursor) % 4)
        outer = json.loads(base64.b64decode(padded, validate=True))
        offset = int(base64.b64decode(outer["a"]["Cursor"], validate=True))
    except (ValueError, TypeError, KeyError, binascii.Error) as exc:
        raise BadRequest("cursor is not valid") from exc
    if offset < 0:
        raise BadRequest("cursor is not valid")
    return offset


class Emulator:
    """The emulator's state (tokens, rate-limit buckets, counters) and its handlers; `app.state.emulator`."""

    def __init__(self, world: HelixWorld, config: EmulatorConfig) -> None:
        self.world = world
        self.config = config
        self.clock = world.clock
        self.requests: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.tokens_minted = 0
        self.needed = NeededCalls(world, config.result_cap)  # what the crawl's Get Clips calls are measured against
        self._tokens: dict[str, _Token] = {}
        self._buckets: dict[str, _Bucket] = {}
        self._jitter = random.Random(config.seed)

    def mint_token(self, client_id: str) -> str:
        """Remember and return a fresh token for this client."""
        token = "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(30))
        self._tokens[token] = _Token(client_id, self.clock.now() + self.config.token_lifetime_s)
        self.tokens_minted += 1
        return token

    def expire_all_tokens(self) -> None:
        """Make every token minted so far answer 401."""
        self._tokens.clear()

    def reset_counters(self) -> None:
        self.requests.clear()
        self.statuses.clear()
        self.tokens_minted = 0

    def endpoint(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """The single place where a request is counted, delayed, answered and turned into a Response."""

        async def serve(request: Request) -> Response:
            self.requests[request.url.path] += 1
            # Half the round trip on the way in, the rest on the way out: the work of answering is done
            # within the round trip, as on Twitch's many servers, not queued after it on this one loop.
            round_trip = self._round_trip()
            answer_at = self.clock.now() + round_trip
            if round_trip > 0:
                await self.clock.sleep(round_trip / 2)
            reply = await handler(request)
            self.statuses[reply.status] += 1
            response = _AsciiJSONResponse(reply.body, status_code=reply.status, headers=reply.headers)
            if (remaining := answer_at - self.clock.now()) > 0:
                await self.clock.sleep(remaining)
            return response

        return serve

    def helix(self, handler: Handler) -> Handler:
        """Require a valid Bearer token whose client matches Client-Id, then charge one rate-limit point."""

        async def guarded(request: Request) -> Reply:
            token = self._live_token(request.headers.get("authorization", ""), schemes=("bearer",))
            if token is None:
                return helix_error(401, "Invalid OAuth token")
            if request.headers.get("client-id") != token.client_id:
                return helix_error(401, "Client ID and OAuth token do not match")
            allowed, headers = self._take_point(token.client_id)
            if not allowed:
                reply = helix_error(429, "Too Many Requests: the rate limit bucket is empty")
            else:
                try:
                    reply = await handler(request)
                except BadRequest as exc:
                    reply = helix_error(400, str(exc))
            reply.headers.update(headers)
            return reply

        return guarded

    async def token(self, request: Request) -> Reply:
        """POST /oauth2/token (client credentials grant)."""
        form = dict(request.query_params)
        form.update(parse_qsl((await request.body()).decode("utf-8", "replace")))
        if form.get("grant_type") != "client_credentials":
            return Reply(400, {"status": 400, "message": "unsupported grant type"})
        credentials = (form.get("client_id"), form.get("client_secret"))
        if credentials != (self.config.client_id, self.config.client_secret):
            return Reply(403, {"status": 403, "message": "invalid client secret"})
        token = self.mint_token(self.config.client_id)
        return Reply(
            200, {"access_token": token, "expires_in": self.config.token_lifetime_s, "token_type": "bearer"}
        )

    async def validate(self, request: Request) -> Reply:
        """GET /oauth2/validate."""
        token = self._live_token(request.headers.get("authorization", ""), schemes=("oauth", "bearer"))
        if token is None:
            return Reply(401, {"status": 401, "message": "invalid access token"})
        body = {
            "client_id": token.client_id,
            "scopes": [],
            "expires_in": max(0, int(token.expires_at - self.clock.now())),
            "login": None,
            "user_id": None,
        }
        return Reply(200, body)

    async def users(self, request: Request) -> Reply:
        """GET /helix/users?login=..&id=.. (at most 100 combined)."""
        keys = [(k, v) for k, v in request.query_params.multi_items() if k in ("id", "login")]
        if not keys:
            raise BadRequest("Must provide an ID, Login or OAuth Token.")
        if len(keys) > MAX_IDS:
            raise BadRequest(f"The sum of the id and login parameters must not exceed {MAX_IDS}.")
        found: dict[str, dict[str, Any]] = {}
        for kind, value in keys:
            lookup = self.world.streamer_by_id if kind == "id" else self.world.streamer_by_login
            streamer = lookup(value)
            if streamer is not None and streamer.id not in found:
                found[streamer.id] = streamer.to_user()
        return Reply(200, {"data": list(found.values())})

    async def streams(self, request: Request) -> Reply:
        """GET /helix/streams?user_id=..: the live ones among at most 100 users."""
        ids = request.query_params.getlist("user_id")
        if len(ids) > MAX_IDS:
            raise BadRequest(f"The number of user_id parameters must not exceed {MAX_IDS}.")
        now = self.world.clock.now()
        live = [self.world.streamer_by_id(i) for i in dict.fromkeys(ids) if self.world.is_live(i)]
        return Reply(200, {"data": [
            {"id": f"stream-{s.id}", "user_id": s.id, "user_login": s.login, "user_name": s.display_name,
             "game_id": s.games[0] if s.games else "", "type": "live", "title": f"{s.display_name} live",
             "viewer_count": 100, "started_at": to_rfc3339(math.floor(now / 3600) * 3600 - 3600),
             "language": s.language, "tags": []}
            for s in live if s is not None], "pagination": {}})

    async def clips(self, request: Request) -> Reply:
        """GET /helix/clips by broadcaster_id, game_id or id."""
        query = request.query_params
        selectors = {n: query.getlist(n) for n in ("broadcaster_id", "game_id", "id") if n in query}
        if len(selectors) != 1:
            raise BadRequest('Exactly one of "broadcaster_id", "game_id" or "id" must be given.')
        if "before" in query:
            raise BadRequest('The parameter "before" cursor is not valid.')
        first = _first(query.get("first"))
        if "id" in selectors:
            ids = selectors["id"]
            if len(ids) > MAX_IDS:
                raise BadRequest(f'The parameter "id" may be given at most {MAX_IDS} times.')
            data = [clip for clip_id in dict.fromkeys(ids) if (clip := self.world.clip(clip_id)) is not None]
            return Reply(200, {"data": data, "pagination": {}})
        name, values = next(iter(selectors.items()))
        if len(values) != 1:
            raise BadRequest(f'The parameter "{name}" may be given only once.')
        start, end = self._window(query.get("started_at"), query.get("ended_at"))
        featured = _featured(query.get("is_featured"))
        offset = decode_cursor(query["after"]) if "after" in query else 0
        if name == "game_id":
            if values[0] not in self.world.game_ids():
                return helix_error(404, "The specified game was not found.")
            clips = self.world.game_clips(values[0], start, end)
        else:
            self.needed.record(values[0], start, end)
            clips = self.world.clips(values[0], start, end)
        if featured is not None:
            clips = [c for c in clips if c["is_featured"] is featured]
        return Reply(200, self._page(clips, offset, first))

    async def not_found(self, request: Request) -> Reply:
        return helix_error(404, "")

    def _page(self, clips: list[dict[str, Any]], offset: int, first: int) -> dict[str, Any]:
        # The ranking is recomputed on every request, so growing view counts shift offsets between pages,
        # which is how Twitch shows duplicates and misses mid-walk.
        ranked = sorted(clips, key=lambda c: (-c["view_count"], c["id"]))
        cap = self.config.result_cap
        if offset >= cap:
            return {"data": [], "pagination": {}}
        page = ranked[offset : min(offset + first, cap)]
        more = offset + len(page) < len(ranked)
        return {"data": page, "pagination": {"cursor": encode_cursor(offset + len(page))} if more else {}}

    def _window(self, started_at: str | None, ended_at: str | None) -> tuple[float, float]:
        # Twitch ignores an ended_at without a started_at, and truncates both to 10-minute boundaries.
        if started_at is None:
            now = self.clock.now()
            return align_down(now - ALL_TIME_S, TRUNCATE_S), now + 1
        start = align_down(_timestamp("started_at", started_at), TRUNCATE_S)
        end = start + WEEK_S if ended_at is None else align_down(_timestamp("ended_at", ended_at), TRUNCATE_S)
        return max(start, self.clock.now() - HISTORY_S), end

    def _live_token(self, authorization: str, *, schemes: tuple[str, ...]) -> _Token | None:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() not in schemes:
            return None
        token = self._tokens.get(value.strip())
        if token is None or self.clock.now() >= token.expires_at:
            return None
        return token

    def _take_point(self, client_id: str) -> tuple[bool, dict[str, str]]:
        now = self.clock.now()
        bucket = self._buckets.get(client_id)
        if bucket is None or now >= bucket.reset_at:
            bucket = self._buckets[client_id] = _Bucket(self.config.rate_limit_points, math.ceil(now) + 60)
        allowed = bucket.remaining > 0
        if allowed:
            bucket.remaining -= 1
        headers = {
            "Ratelimit-Limit": str(self.config.rate_limit_points),
            "Ratelimit-Remaining": str(bucket.remaining),
            "Ratelimit-Reset": str(bucket.reset_at),
        }
        return allowed, headers

    def _round_trip(self) -> float:
        jitter = self.config.latency_jitter_s
        return max(0.0, self.config.latency_s + (self._jitter.uniform(-jitter, jitter) if jitter else 0.0))


def create_emulator_app(
    world: HelixWorld, config: EmulatorConfig | None = None, *, wrap: Wrap | None = None
) -> Starlette:
    """The emulator as an ASGI app serving both id.twitch.tv (/oauth2/...) and api.twitch.tv (/helix/...)."""
    emulator = Emulator(world, config or EmulatorConfig())
    routes = [
        ("token", "/oauth2/token", ["POST"], emulator.token),
        ("validate", "/oauth2/validate", ["GET"], emulator.validate),
        ("users", "/helix/users", ["GET"], emulator.helix(emulator.users)),
        ("clips", "/helix/clips", ["GET"], emulator.helix(emulator.clips)),
        ("streams", "/helix/streams", ["GET"], emulator.helix(emulator.streams)),
        ("not_found", "/helix/{rest:path}", None, emulator.helix(emulator.not_found)),
    ]
    app = Starlette(
        routes=[
            Route(path, emulator.endpoint(wrap(name, handler) if wrap else handler), methods=methods)
            for name, path, methods, handler in routes
        ]
    )
    app.state.emulator = emulator
    return app


def _first(raw: str | None) -> int:
    if raw is None:
        return 20
    try:
        first = int(raw)
    except ValueError as exc:
        raise BadRequest(f'The parameter "first" must be an integer: {raw!r}.') from exc
    if not 1 <= first <= 100:
        raise BadRequest(f'The parameter "first" must be between 1 and 100: {first}.')
    return first


def _featured(raw: str | None) -> bool | None:
    if raw is None:
        return None
    if raw.lower() not in ("true", "false"):
        raise BadRequest(f'The parameter "is_featured" must be true or false: {raw!r}.')
    return raw.lower() == "true"


def _timestamp(name: str, raw: str) -> float:
    try:
        return parse_rfc3339(raw)
    except InvalidInput as exc:
        raise BadRequest(f'The parameter "{name}" is not an RFC 3339 timestamp: {raw!r}.') from exc
