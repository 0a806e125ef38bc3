"""A small Twitch Helix client: app token, Get Clips, Get Users, rate-limit headers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

import httpx
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from shared.budget import Budget
from shared.config import Settings
from shared.errors import AuthFailed, HelixError, InvalidInput, RateLimited, TransientHelixError
from shared.ports import Clock
from shared.timefmt import parse_rfc3339, to_rfc3339
from shared.windows import Window

PAGE_SIZE = 100
USERS_PER_CALL = 100
IDS_PER_CALL = 100  # Get Clips and Get Games by id
TOKEN_MARGIN_SECONDS = 3600  # re-mint a token this close to expiry rather than risk a 401 mid-crawl
# Sent on every request (fetch() in a Worker drops Accept-Encoding and decompresses by itself).
_CLIENT_HEADERS = {"User-Agent": "clipcrawler", "Accept-Encoding": "gzip, deflate"}
# While another consumer mints the replacement token, re-read the stored one after these pauses (s).
MINT_WAITS = (0.25, 0.5, 1.0, 2.0, 4.0)


@dataclass(frozen=True)
class AppToken:
    access_token: str
    expires_at: float

    @classmethod
    def from_row(cls, row: dict[str, Any] | None) -> AppToken | None:
        """The token cached in `app_tokens`, if there is one."""
        return cls(row["access_token"], parse_rfc3339(row["expires_at"])) if row else None

    def usable(self, now: float) -> bool:
        return bool(self.access_token) and self.expires_at - TOKEN_MARGIN_SECONDS > now

    def __repr__(self) -> str:
        return f"AppToken(expires_at={self.expires_at})"


@dataclass(frozen=True)
class TokenClaim:
    """The token as stored now, and whether the caller won the right to mint the next one."""

    stored: AppToken | None
    may_mint: bool
    refused: str | None = None  # Twitch refused the client credentials earlier in this run, and said this


class TokenSource(Protocol):
    """Where concurrent consumers share the app token (D1's `app_tokens`, see shared/token_store.py)."""

    async def claim(self, stale: AppToken | None) -> TokenClaim:
        """Re-read the stored token; claim the mint if it is still `stale` and nobody else claimed it."""
        ...

    async def store(self, token: AppToken) -> None:
        """Store a token just minted (which also releases the claim)."""
        ...

    async def release(self) -> None:
        """Give up a claim whose mint failed, so the consumers waiting on it try (and learn why) at once."""
        ...

    async def refuse(self, error: str) -> None:
        """Twitch refused the client credentials: give up the claim, and tell the run's other consumers."""
        ...


@dataclass(frozen=True)
class RateLimit:
    """The `Ratelimit-*` headers of the latest Helix answer."""

    limit: int | None = None
    remaining: int | None = None
    reset_at: float | None = None

    @classmethod
    def from_headers(cls, headers: httpx.Headers) -> RateLimit:
        return cls(
            _int(headers.get("ratelimit-limit")),
            _int(headers.get("ratelimit-remaining")),
            _int(headers.get("ratelimit-reset")),
        )

    def pause_before_next(self, now: float, low_water: float) -> float:
        """Seconds to wait before the next request so the bucket lasts until it refills; 0 if plenty is left.

        Spreading the remaining points over the time to the reset slows every consumer down together,
        as each reads the same shared reading, before Twitch starts answering 429.
        """
        if self.limit is None or self.remaining is None or self.reset_at is None or self.reset_at <= now:
            return 0.0
        if self.remaining >= max(1.0, self.limit * low_water):
            return 0.0
        return (self.reset_at - now) / (self.remaining + 1)

    @property
    def low(self) -> bool:
        """Worth sharing with other consumers: under half the bucket left."""
        return self.limit is not None and self.remaining is not None and self.remaining < self.limit / 2


@dataclass(frozen=True)
class ClipsPage:
    data: Any  # validated by shared.clips, clip by clip
    cursor: str | None


class HelixClient:
    """Helix on an injected httpx.AsyncClient. Every request is charged to the budget first."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        settings: Settings,
        budget: Budget,
        clock: Clock,
        token: AppToken | None = None,
        rate_limit: RateLimit | None = None,
        tokens: TokenSource | None = None,
    ) -> None:
        self._http = http
        self._settings = settings
        self._budget = budget
        self._clock = clock
        self.token = token
        self.minted: AppToken | None = None  # set when this client minted a token the caller should store
        self._tokens = tokens  # None: mint on every need, and leave storing the token to the caller
        self.rate_limit = rate_limit or RateLimit()
        self._endpoints: dict[str, httpx.URL] = {}

    async def get_clips(self, broadcaster_id: str, window: Window, cursor: str | None) -> ClipsPage:
        """One forward page of a broadcaster's clips created in `window`."""
        params: list[tuple[str, str]] = [
            ("broadcaster_id", broadcaster_id),
            ("started_at", to_rfc3339(window.start)),
            ("ended_at", to_rfc3339(window.end)),
            ("first", str(PAGE_SIZE)),
        ]
        if cursor:
            params.append(("after", cursor))
        body = await self._get("/clips", params)
        pagination = body.get("pagination")
        next_cursor = pagination.get("cursor") if isinstance(pagination, dict) else None
        if next_cursor is not None and not isinstance(next_cursor, str):
            raise HelixError(f"Get Clips returned a non-string cursor: {next_cursor!r}")
        return ClipsPage(body.get("data"), next_cursor or None)

    async def get_clips_by_id(self, clip_ids: Sequence[str]) -> ClipsPage:
        """Get Clips by `id` (at most 100, one call): the clips Twitch still has, unknown ids left out.

        `first=100` because Get Clips pages 20 by default; a cursor in the answer would mean more pages.
        """
        if len(clip_ids) > IDS_PER_CALL:
            raise InvalidInput(f"Get Clips takes at most {IDS_PER_CALL} ids a call, not {len(clip_ids)}")
        body = await self._get("/clips", [("id", i) for i in clip_ids] + [("first", str(PAGE_SIZE))])
        data = body.get("data")
        if not isinstance(data, list):
            raise HelixError(f"Get Clips by id returned no data list: {type(data).__name__}")
        pagination = body.get("pagination")
        cursor = pagination.get("cursor") if isinstance(pagination, dict) else None
        return ClipsPage(data, cursor if isinstance(cursor, str) and cursor else None)

    async def get_games(self, game_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Get Games by `id` (at most 100, one call): the games Twitch knows, unknown ids left out."""
        if len(game_ids) > IDS_PER_CALL:
            raise InvalidInput(f"Get Games takes at most {IDS_PER_CALL} ids a call, not {len(game_ids)}")
        body = await self._get("/games", [("id", i) for i in game_ids])
        data = body.get("data")
        if not isinstance(data, list):
            raise HelixError(f"Get Games returned no data list: {type(data).__name__}")
        return [
            g
            for g in data
            if isinstance(g, dict) and isinstance(g.get("id"), str) and isinstance(g.get("name"), str)
        ]

    async def get_users(self, logins: Sequence[str] = (), ids: Sequence[str] = ()) -> list[dict[str, Any]]:
        """Users by login and id, 100 per call; unknown ones are simply absent."""
        wanted = [("login", login) for login in logins] + [("id", i) for i in ids]
        users: list[dict[str, Any]] = []
        for start in range(0, len(wanted), USERS_PER_CALL):
            body = await self._get("/users", wanted[start : start + USERS_PER_CALL])
            data = body.get("data")
            if not isinstance(data, list):
                raise HelixError(f"Get Users returned no data list: {type(data).__name__}")
            users.extend(u for u in data if isinstance(u, dict) and isinstance(u.get("id"), str))
        return users

    async def get_live(self, user_ids: Sequence[str]) -> set[str]:
        """Which of these broadcasters are live now (Get Streams, 100 ids per call)."""
        live: set[str] = set()
        for start in range(0, len(user_ids), USERS_PER_CALL):
            chunk = user_ids[start : start + USERS_PER_CALL]
            body = await self._get("/streams", [("user_id", i) for i in chunk] + [("first", str(PAGE_SIZE))])
            data = body.get("data")
            if not isinstance(data, list):
                raise HelixError(f"Get Streams returned no data list: {type(data).__name__}")
            live.update(
                s["user_id"] for s in data if isinstance(s, dict) and isinstance(s.get("user_id"), str)
            )
        return live & set(user_ids)

    async def ensure_token(self) -> AppToken:
        if self.token is None or not self.token.usable(self._clock.now()):
            await self.replace_token()
        assert self.token is not None
        return self.token

    async def replace_token(self) -> bool:
        """Replace a token Twitch refused (or one near expiry); True if this client minted the new one.

        With a token source, the stored token is read first: another consumer may have replaced it already.
        Otherwise the first to claim the mint mints and stores it while the others wait and re-read, so a
        revocation costs one mint across every consumer, and the common path (a usable token read with the
        job's claim) no round trip at all.
        """
        if self._tokens is None:
            await self.mint_token()
            return True
        stale = self.token
        for pause in (*MINT_WAITS, None):
            claim = await self._tokens.claim(stale)
            stored = claim.stored
            if (
                stored is not None
                and stored.usable(self._clock.now())
                and (stale is None or stored.access_token != stale.access_token)
            ):
                self.token = stored
                return False
            if claim.refused is not None:
                # Asking again cannot help: the credentials stay wrong until someone changes them.
                raise AuthFailed(claim.refused)
            if claim.may_mint:
                try:
                    token = await self.mint_token()
                except AuthFailed as exc:
                    await self._tokens.refuse(str(exc))
                    raise
                except Exception:  # a cancelled claimant's claim simply expires (CLAIM_SECONDS)
                    await self._tokens.release()
                    raise
                await self._tokens.store(token)
                self.minted = None  # stored already
                return True
            if pause is None:
                break
            await self._clock.sleep(pause)
        raise TransientHelixError("another consumer claimed the app token's mint and stored no token yet")

    async def mint_token(self) -> AppToken:
        """Client-credentials grant. App tokens cannot be refreshed, only minted anew."""
        self._settings.require_credentials()
        form = {
            "client_id": self._settings.twitch_client_id,
            "client_secret": self._settings.twitch_client_secret,
            "grant_type": "client_credentials",
        }
        response = await self._send("POST", self._settings.twitch_auth_url.rstrip("/") + "/token", data=form)
        if response.status_code in (400, 401, 403):
            raise AuthFailed(
                f"Twitch refused the client credentials (HTTP {response.status_code}: {_message(response)})",
                status=response.status_code,
            )
        _raise_for_status(response, "token")
        body = _json(response, "token")
        token, expires_in = body.get("access_token"), body.get("expires_in")
        if not isinstance(token, str) or not token or not isinstance(expires_in, (int, float)):
            raise HelixError("token endpoint answered without access_token/expires_in")
        self.token = self.minted = AppToken(token, self._clock.now() + float(expires_in))
        return self.token

    async def _get(self, path: str, params: list[tuple[str, str]]) -> dict[str, Any]:
        url = self._url(path, params)
        await self._pace()
        await self.ensure_token()
        response = await self._send("GET", url, headers=self._auth_headers())
        for _ in range(2):
            if response.status_code != 401:
                break
            # Twitch revokes app tokens at will; "respond reactively to 401" with a new one. A token another
            # consumer stored may have been revoked too: then this one mints.
            minted = await self.replace_token()
            response = await self._send("GET", url, headers=self._auth_headers())
            if response.status_code == 401 and minted:
                raise AuthFailed(f"Helix refused a freshly minted token: {_message(response)}", status=401)
        if response.status_code == 401:
            raise AuthFailed(f"Helix refused the app token twice: {_message(response)}", status=401)
        if response.status_code == 429:
            raise RateLimited(self.rate_limit.reset_at)
        _raise_for_status(response, path)
        body = _json(response, path)
        return body

    async def _pace(self) -> None:
        pause = self.rate_limit.pause_before_next(self._clock.now(), self._settings.ratelimit_low_water)
        if pause > self._settings.max_pace_seconds:
            # Sleeping that long burns the invocation's wall time; a delayed continuation costs nothing.
            raise RateLimited(self.rate_limit.reset_at)
        if pause > 0:
            await self._clock.sleep(pause)

    def _url(self, path: str, params: list[tuple[str, str]]) -> httpx.URL:
        """The endpoint's URL with `params` as its query.

        The endpoint is parsed once per client: httpx parses a URL string (and merges `params=`) in pure
        Python, a cost paid on every call, and CPU is what a Free-plan invocation has least of.
        """
        endpoint = self._endpoints.get(path)
        if endpoint is None:
            endpoint = self._endpoints[path] = httpx.URL(self._settings.twitch_api_url.rstrip("/") + path)
        return endpoint.copy_with(query=urlencode(params).encode("ascii"))

    def _auth_headers(self) -> dict[str, str]:
        assert self.token is not None
        return {
            "Authorization": f"Bearer {self.token.access_token}",
            "Client-Id": self._settings.twitch_client_id,
        }

    async def _send(self, method: str, url: str | httpx.URL, **kwargs: Any) -> httpx.Response:
        """One logical request: short in-invocation retries of timeouts and 5xx, each one charged."""
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._settings.http_attempts),
            wait=wait_exponential(multiplier=self._settings.http_backoff_seconds, max=8),
            retry=retry_if_exception_type(TransientHelixError),
            sleep=self._clock.sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                self._budget.charge("helix")
                try:
                    response = await self._http.send(self._request(method, url, **kwargs))
                except httpx.TimeoutException as exc:
                    raise TransientHelixError(f"{method} {_path(url)} timed out") from exc
                except httpx.TransportError as exc:
                    raise TransientHelixError(f"{method} {_path(url)} failed: {type(exc).__name__}") from exc
                if "ratelimit-limit" in response.headers:
                    self.rate_limit = RateLimit.from_headers(response.headers)
                if response.status_code >= 500:
                    raise TransientHelixError(
                        f"{method} {_path(url)} answered {response.status_code}", status=response.status_code
                    )
        return response

    def _request(self, method: str, url: str | httpx.URL, **kwargs: Any) -> httpx.Request:
        """A request sent as built: Helix needs none of the client's defaults (base URL, cookies, headers)."""
        timeout = httpx.Timeout(self._settings.http_timeout_seconds)
        headers = {**_CLIENT_HEADERS, **kwargs.pop("headers", {})}
        extensions = {"timeout": timeout.as_dict()}
        return httpx.Request(method, url, headers=headers, extensions=extensions, **kwargs)


def _raise_for_status(response: httpx.Response, what: str) -> None:
    if response.status_code >= 400:
        raise HelixError(
            f"{what} answered HTTP {response.status_code}: {_message(response)}", status=response.status_code
        )


def _json(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as exc:
        raise TransientHelixError(f"{what} answered a body that is not JSON") from exc
    if not isinstance(body, dict):
        raise TransientHelixError(f"{what} answered JSON that is not an object")
    return body


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase or "no message"
    message = body.get("message") if isinstance(body, dict) else None
    return str(message)[:200] if message else response.reason_phrase or "no message"


def _path(url: str | httpx.URL) -> str:
    return httpx.URL(url).path


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def check_logins(logins: Sequence[str]) -> list[str]:
    """Normalise Twitch logins (lower case, 1-25 of [a-z0-9_]) or raise naming the bad one."""
    cleaned: list[str] = []
    for login in logins:
        value = login.strip().lower()
        if not value or len(value) > 25 or not all(c.isascii() and (c.isalnum() or c == "_") for c in value):
            raise InvalidInput(f"not a Twitch login: {login!r}")
        if value not in cleaned:
            cleaned.append(value)
    return cleaned
