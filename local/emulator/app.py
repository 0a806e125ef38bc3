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
from urllib.parse import parse_qsl, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from local.emulator.needed import NeededCalls
from local.emulator.streams import StreamFilters, live_streams
from local.emulator.world import HelixWorld, RankedClips
from shared.errors import InvalidInput
from shared.timefmt import align_down, parse_rfc3339

DAY_S = 86_400
WEEK_S = 7 * DAY_S
TRUNCATE_S = 600
MAX_IDS = 100
STREAM_TYPES = ("all", "live")
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
    # The world's history: a window reaching further back (or "all time", no dates) starts here, so
    # `started_at=0001-01-01` costs a year of hours, not 2,000 years.
    history_s: float = 365 * DAY_S
    # Get Clips by game_id reads every streamer of the game: its windows are clipped to this much history.
    game_history_s: float = 30 * DAY_S
    # A token endpoint that repeats the refused request in its error text, secret and all (some proxies and
    # OAuth servers do): what the crawler stores and shows of it must still hold no secret.
    echo_refused_requests: bool = False


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


def encode_span_cursor(start: int, end: int) -> str:
    """A cursor that pages both ways: `before` it reads back from `start`, `after` it on from `end`."""

    def side(offset: int) -> dict[str, str]:
        return {"Cursor": base64.b64encode(str(offset).encode()).decode()}

    outer = json.dumps({"b": side(start), "a": side(end)}, separators=(",", ":"))
    return base64.b64encode(outer.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, side: str = "a") -> int:
    """The offset on one side ("a": after, "b": before) of a cursor made here; else BadRequest."""
    try:
        # A client that does not percent-encode sends '+' which arrives as a space.
        padded = cursor.replace(" ", "+") + "=" * (-len(cursor) % 4)
        outer = json.loads(base64.b64decode(padded, validate=True))
        offset = int(base64.b64decode(outer[side]["Cursor"], validate=True))
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
        self.needed = NeededCalls(
            world, config.result_cap
        )  # what the crawl's Get Clips calls are measured against
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
        """Charge a point to the Client-Id's bucket, then require a valid Bearer token of that client.

        The bucket is the client's, so a refused token costs a point and its 401 carries the
        `Ratelimit-*` headers like any other answer; without a Client-Id there is no bucket to name.
        """

        async def guarded(request: Request) -> Reply:
            client_id = request.headers.get("client-id")
            if not client_id:
                return helix_error(401, "Client ID is missing")
            allowed, headers = self._take_point(client_id)
            token = self._live_token(request.headers.get("authorization", ""), schemes=("bearer",))
            if not allowed:
                reply = helix_error(429, "Too Many Requests: the rate limit bucket is empty")
            elif token is None:
                reply = helix_error(401, "Invalid OAuth token")
            elif client_id != token.client_id:
                reply = helix_error(401, "Client ID and OAuth token do not match")
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
        refusal = self._refuse_grant(form)
        if refusal is not None:
            status, message = refusal
            if self.config.echo_refused_requests:
                message += f" for {urlencode(form)}; secret {form.get('client_secret')!r} is not known"
            return Reply(status, {"status": status, "message": message})
        token = self.mint_token(self.config.client_id)
        return Reply(
            200, {"access_token": token, "expires_in": self.config.token_lifetime_s, "token_type": "bearer"}
        )

    def _refuse_grant(self, form: dict[str, str]) -> tuple[int, str] | None:
        """Why id.twitch.tv refuses this client-credentials form (status, message), as clients report it."""
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        if form.get("grant_type") != "client_credentials":
            return 400, "invalid grant type"
        if not client_id:
            return 400, "missing client id"
        if not secrets.compare_digest(client_id.encode(), self.config.client_id.encode()):
            return 400, "invalid client"
        if not secret:
            return 400, "missing client secret"
        if not secrets.compare_digest(secret.encode(), self.config.client_secret.encode()):
            return 403, "invalid client secret"
        return None

    async def validate(self, request: Request) -> Reply:
        """GET /oauth2/validate."""
        if not request.headers.get("authorization", "").strip():
            return Reply(401, {"status": 401, "message": "missing authorization token"})
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
        """GET /helix/streams: live streams by user, game and language (100 each), most viewers first."""
        query = request.query_params
        filters = StreamFilters(
            user_ids=_repeated(query, "user_id"),
            user_logins=_repeated(query, "user_login"),
            game_ids=_repeated(query, "game_id"),
            languages=_repeated(query, "language"),
        )
        if query.get("type", "all") not in STREAM_TYPES:
            raise BadRequest(f'The value in the "type" query parameter is not valid: {query["type"]!r}.')
        first = _first(query.get("first"))
        if "after" in query and "before" in query:
            raise BadRequest('The "after" and "before" query parameters are mutually exclusive.')
        # Every emulated stream is live, so "all" and "live" select the same streams, as on Twitch today.
        streams = live_streams(self.world, filters)
        if "before" in query:
            end = min(decode_cursor(query["before"], side="b"), len(streams))
            return Reply(200, _span_page(streams, max(0, end - first), end))
        start = decode_cursor(query["after"]) if "after" in query else 0
        return Reply(200, _span_page(streams, start, min(start + first, len(streams))))

    async def games(self, request: Request) -> Reply:
        """GET /helix/games by id, exact name or igdb_id (100 together), in the order asked."""
        selectors = [(k, v) for k, v in request.query_params.multi_items() if k in ("id", "name", "igdb_id")]
        if not selectors:
            raise BadRequest('The "id", "name" or "igdb_id" query parameter is required.')
        if len(selectors) > MAX_IDS:
            raise BadRequest(
                f"The combined number of game IDs and names must not exceed {MAX_IDS}: {len(selectors)}."
            )
        return Reply(200, {"data": [game.to_helix() for game in self.world.games.lookup(selectors)]})

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
            if self.world.games.by_id(values[0]) is None:
                return helix_error(404, "The specified game was not found.")
            game_start = max(start, self.clock.now() - self.config.game_history_s)
            clips = self.world.ranked_game_clips(values[0], game_start, end, featured=featured)
        else:
            self.needed.record(values[0], start, end)
            clips = self.world.ranked_clips(values[0], start, end, featured=featured)
        return Reply(200, self._page(clips, offset, first))

    async def not_found(self, request: Request) -> Reply:
        return helix_error(404, "")

    def _page(self, ranked: RankedClips, offset: int, first: int) -> dict[str, Any]:
        # The ranking is recomputed on every request, so growing view counts shift offsets between pages,
        # which is how Twitch shows duplicates and misses mid-walk.
        cap = self.config.result_cap
        if offset >= cap:
            return {"data": [], "pagination": {}}
        page = ranked[offset : min(offset + first, cap)]
        more = offset + len(page) < len(ranked)
        return {"data": page, "pagination": {"cursor": encode_cursor(offset + len(page))} if more else {}}

    def _window(self, started_at: str | None, ended_at: str | None) -> tuple[float, float]:
        # No started_at means all time (Twitch ignores an ended_at alone); both are cut to 10 minutes.
        now = self.clock.now()
        history_start = now - self.config.history_s
        if started_at is None:
            return history_start, now + 1
        start = align_down(_timestamp("started_at", started_at), TRUNCATE_S)
        end = start + WEEK_S if ended_at is None else align_down(_timestamp("ended_at", ended_at), TRUNCATE_S)
        return max(start, history_start), end

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
        ("games", "/helix/games", ["GET"], emulator.helix(emulator.games)),
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


def _repeated(query: Any, name: str) -> tuple[str, ...]:
    """A parameter given once per value (`&user_id=1&user_id=2`), at most 100 times."""
    values = tuple(query.getlist(name))
    if len(values) > MAX_IDS:
        raise BadRequest(f'The parameter "{name}" may be given at most {MAX_IDS} times: {len(values)}.')
    return values


def _span_page(items: list[dict[str, Any]], start: int, end: int) -> dict[str, Any]:
    """items[start:end] with a cursor that pages on from `end` (and back from `start`) while more follow."""
    page = items[start:end]
    more = end < len(items)
    return {"data": page, "pagination": {"cursor": encode_span_cursor(start, end)} if more else {}}


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
