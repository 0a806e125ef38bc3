"""The Worker's bindings as the core's ports: D1 -> Database, a queue -> QueueSender, JS fetch -> httpx.

The one module besides the entries that touches `js` and `pyodide`. It imports them only when a binding
is used, so it imports on CPython too, where tests hand it JS-shaped doubles.

Two SDK generations reach this code. The runtime's built-in `workers` module hands out raw bindings
(`JsProxy`): arguments must be converted with `to_js`, results with `.to_py()`, and JS `null` arrives as
`pyodide.ffi.jsnull`. The vendored `workers-runtime-sdk` (compatibility date >= 2026-04-21) wraps
bindings and converts both ways itself. Results come out as plain dicts and None either way.

Budgets: the core wraps these ports in shared.metered, which charges each call before it goes out; the
adapters only adapt, so nothing is charged twice.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Any

import httpx

from shared.clock import SystemClock
from shared.config import Settings
from shared.errors import ClipCrawlerError, ConfigError, DatabaseError, QueueError
from shared.ports import OutgoingMessage, Ports, Result, Row, Statement

DB_BINDING = "DB"
QUEUE_BINDING = "JOBS"
API_TOKEN_VAR = "CLIPCRAWLER_API_TOKEN"
AUTH_LIMITER_BINDING = "AUTH_FAILURES"  # optional: [[ratelimits]] counting failed logins and bearer tokens
DEAD_LETTER_QUEUE_VAR = "CLIPCRAWLER_DEAD_LETTER_QUEUE"
DEFAULT_DEAD_LETTER_QUEUE = "clipcrawler-jobs-dlq"

# https://developers.cloudflare.com/queues/platform/limits/
MAX_SEND_MESSAGES = 100
MAX_SEND_BYTES = 256_000
MAX_MESSAGE_BYTES = 128_000
MESSAGE_OVERHEAD_BYTES = 100  # metadata the limits count in every message
MAX_DELAY_SECONDS = 43_200  # older docs say 12 h, newer 24 h: stay under both
MAX_SAFE_INTEGER = 2**53 - 1  # a JS number holds integers exactly only up to here
# Pyodide hands 2**53-1 itself to JS as a BigInt, which D1 refuses (D1_TYPE_ERROR: Type 'bigint' not
# supported), seen under workerd on local D1: the largest integer D1 binds from Python is one less.
MAX_BINDABLE_INTEGER = MAX_SAFE_INTEGER - 1


class BindingError(ClipCrawlerError):
    """A binding call failed; the message names the call, never the bound values (they may be secrets)."""


class D1BindingError(BindingError, DatabaseError):
    """The D1 binding refused a statement, failed, or answered something unusable."""


class QueueBindingError(BindingError, QueueError):
    """The Queues binding refused a send, or the send cannot fit its limits."""


# --- JS interop ------------------------------------------------------------------------------------


def _ffi() -> Any:
    """pyodide.ffi when running in a Worker (or a test that fakes it); None on plain CPython."""
    try:
        from pyodide import ffi  # type: ignore[import-not-found]
    except ImportError:
        return None
    return ffi


def _js_null() -> Any:
    ffi = _ffi()
    return getattr(ffi, "jsnull", None) if ffi is not None else None


def _is_js(value: Any) -> bool:
    """True for a raw JS object (the built-in SDK's bindings and results), False for Python values."""
    ffi = _ffi()
    return ffi is not None and isinstance(value, ffi.JsProxy)


def _to_js(value: Any) -> Any:
    """A Python list or dict as a JS array or object (dicts become plain objects, not Maps)."""
    import js  # type: ignore[import-not-found]

    return _ffi().to_js(value, dict_converter=js.Object.fromEntries)


def to_py(value: Any) -> Any:
    """Any binding result as plain Python: dicts, lists, scalars, and None for JS null."""
    null = _js_null()
    if value is None or (null is not None and value is null):
        return None
    if _is_js(value):
        value = value.to_py()
    if isinstance(value, dict):
        return {str(k): to_py(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_py(v) for v in value]
    if isinstance(value, memoryview):
        return value.tobytes()
    return value


# --- D1 --------------------------------------------------------------------------------------------


class D1Database:
    """The D1 binding behind the Database port (https://developers.cloudflare.com/d1/worker-api/)."""

    def __init__(self, binding: Any) -> None:
        self._binding = binding
        self._raw = _is_js(binding)

    async def all(self, sql: str, *params: Any) -> list[Row]:
        return _result(await self._execute("all", Statement(sql, params))).rows

    async def first(self, sql: str, *params: Any) -> Row | None:
        row = to_py(await self._execute("first", Statement(sql, params)))
        return dict(row) if row else None

    async def run(self, sql: str, *params: Any) -> Result:
        return _result(await self._execute("run", Statement(sql, params)))

    async def batch(self, statements: Sequence[Statement]) -> list[Result]:
        """One round trip, one transaction: D1 rolls back every statement if one fails."""
        if not statements:
            return []
        prepared = [self._prepare(s) for s in statements]
        argument = _to_js(prepared) if self._raw else prepared
        what = f"D1 batch() of {len(statements)} statements"
        answer = await _call(what, D1BindingError, self._binding.batch, argument)
        results = to_py(answer)
        if not isinstance(results, list) or len(results) != len(statements):
            count = len(results) if isinstance(results, list) else type(results).__name__
            raise D1BindingError(f"D1 batch() of {len(statements)} statements answered {count} results")
        return [_result(r) for r in results]

    def _prepare(self, statement: Statement) -> Any:
        values = [_bind_value(v, i, statement.sql) for i, v in enumerate(statement.params, 1)]
        try:  # prepare() and bind() throw at once, e.g. on a binding the runtime has torn down
            return self._binding.prepare(statement.sql).bind(*values)
        except Exception as exc:
            raise D1BindingError(f"D1 prepare() of {_preview(statement.sql)} failed: {exc}") from exc

    async def _execute(self, op: str, statement: Statement) -> Any:
        prepared = self._prepare(statement)
        return await _call(f"D1 {op}() of {_preview(statement.sql)}", D1BindingError, getattr(prepared, op))


async def _call(what: str, error: type[BindingError], method: Any, *args: Any) -> Any:
    """Await a binding call; its JS error becomes `error` (a BindingError) saying which call failed."""
    try:
        return await method(*args)
    except Exception as exc:
        raise error(f"{what} failed: {exc}") from exc


def _bind_value(value: Any, position: int, sql: str) -> Any:
    """A parameter as D1 binds it."""
    if value is None:
        return _js_null()  # a bare None reaches JS as `undefined`, which D1's bind() refuses
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        if abs(value) > MAX_BINDABLE_INTEGER:
            raise D1BindingError(
                f"parameter {position} ({value}) is beyond what a JS number holds exactly "
                f"(statement: {_preview(sql)})"
            )
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise D1BindingError(
                f"parameter {position} ({value}) is not a finite number (statement: {_preview(sql)})"
            )
        return value
    if isinstance(value, str):
        return str(value)  # a StrEnum (shared.states) as the plain string it stands for
    raise D1BindingError(
        f"parameter {position} has type {type(value).__name__}; D1 binds only None, numbers "
        f"and text here (statement: {_preview(sql)})"
    )


def _result(raw: Any) -> Result:
    """D1's `{results, meta: {changes, last_row_id, rows_read, rows_written}}` as a Result."""
    answer = to_py(raw) or {}
    meta = answer.get("meta") or {}
    return Result(
        rows=[dict(row) for row in answer.get("results") or []],
        changes=int(meta.get("changes") or 0),
        last_row_id=meta.get("last_row_id"),
        rows_read=int(meta.get("rows_read") or 0),
        rows_written=int(meta.get("rows_written") or 0),
    )


def _preview(sql: str, limit: int = 80) -> str:
    flat = " ".join(sql.split())
    return flat if len(flat) <= limit else flat[:limit] + "…"


# --- Rate Limiting ---------------------------------------------------------------------------------


class RateLimitBinding:
    """The Workers Rate Limiting binding as a failure counter.

    https://developers.cloudflare.com/workers/runtime-apis/bindings/rate-limit/
    """

    def __init__(self, binding: Any) -> None:
        self._binding = binding

    async def over_limit(self, client: str, now: float) -> bool:
        """Count one failure for `client`; True once the binding's limit for its period is spent."""
        options = {"key": client}
        argument = _to_js(options) if _is_js(self._binding) else options
        outcome = to_py(await _call("Rate Limiting limit()", BindingError, self._binding.limit, argument))
        return not (isinstance(outcome, dict) and outcome.get("success"))


# --- Queues ----------------------------------------------------------------------------------------


class QueueBinding:
    """A Queues producer binding behind the QueueSender port
    (https://developers.cloudflare.com/queues/configuration/javascript-apis/)."""

    def __init__(self, binding: Any) -> None:
        self._binding = binding
        self._raw = _is_js(binding)

    async def send_batch(self, messages: Sequence[OutgoingMessage]) -> None:
        """sendBatch() in calls of at most 100 messages and 256 KB.

        MeteredQueue already cuts batches at 100; the size cut only matters for bodies far larger than
        a crawl job's (~100 bytes), so in practice each metered send is one sendBatch().
        """
        for chunk in _send_chunks(messages):
            entries = [{"body": m.body, "delaySeconds": _delay(m.delay_seconds)} for m in chunk]
            await _call(
                f"queue sendBatch() of {len(entries)} messages",
                QueueBindingError,
                self._binding.sendBatch,
                _to_js(entries) if self._raw else entries,
            )


def _send_chunks(messages: Sequence[OutgoingMessage]) -> Iterator[list[OutgoingMessage]]:
    chunk: list[OutgoingMessage] = []
    size = 0
    for message in messages:
        bytes_ = len(json.dumps(message.body, separators=(",", ":")).encode()) + MESSAGE_OVERHEAD_BYTES
        if bytes_ > MAX_MESSAGE_BYTES:
            raise QueueBindingError(
                f"a queue message of {bytes_} bytes exceeds the {MAX_MESSAGE_BYTES}-byte limit"
            )
        if chunk and (len(chunk) == MAX_SEND_MESSAGES or size + bytes_ > MAX_SEND_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(message)
        size += bytes_
    if chunk:
        yield chunk


def _delay(seconds: float | None) -> int:
    return max(0, min(MAX_DELAY_SECONDS, int(seconds or 0)))


class DeliveredMessage:
    """A delivered queue message in the shape consumer.dispatch expects."""

    def __init__(self, message: Any) -> None:
        self.message = message
        self.attempts = int(message.attempts)
        self.body: Any
        try:
            self.body = to_py(message.body)
        except Exception as exc:
            # Unreadable now is unreadable on every retry: as text, the core records it and acks it.
            self.body = f"<unreadable message body: {type(exc).__name__}>"

    def ack(self) -> None:
        self.message.ack()

    def retry(self, delay_seconds: int | None = None) -> None:
        options = {"delaySeconds": _delay(delay_seconds)}
        self.message.retry(_to_js(options) if _is_js(self.message) else options)


# --- HTTP ------------------------------------------------------------------------------------------

# The runtime sets these itself; Host and Content-Length cannot be set on a fetch() at all.
_REQUEST_HEADERS_DROPPED = frozenset(
    {"host", "content-length", "connection", "transfer-encoding", "accept-encoding"}
)
# fetch() has already decompressed the body, so these would make httpx decode it a second time.
_RESPONSE_HEADERS_DROPPED = frozenset({"content-encoding", "content-length", "transfer-encoding"})


class JsFetchTransport(httpx.AsyncBaseTransport):
    """httpx over the runtime's fetch(), so HelixClient keeps its injected httpx.AsyncClient."""

    def __init__(self, fetch: Any = None) -> None:
        self._fetch = fetch

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        fetch = self._fetch or _global_fetch()
        body = await request.aread()
        sent = [[k, v] for k, v in request.headers.items() if k.lower() not in _REQUEST_HEADERS_DROPPED]
        init: dict[str, Any] = {"method": request.method, "headers": sent}
        if body:
            init["body"] = body
        signal = _timeout_signal(request)
        if signal is not None:
            init["signal"] = signal
        try:
            response = await fetch(str(request.url), _to_js(init))
            content = _bytes(await response.arrayBuffer())
        except Exception as exc:
            # The AbortSignal's DOMException: name "TimeoutError", "The operation was aborted due to timeout".
            what = f"{getattr(exc, 'name', '')} {exc}".lower()
            where = f"{request.method} {request.url.host}{request.url.path}"
            if "timeout" in what or "abort" in what:
                raise httpx.ReadTimeout(f"{where} timed out", request=request) from exc
            raise httpx.ConnectError(f"{where} failed: {type(exc).__name__}", request=request) from exc
        headers = [
            (str(k), str(v))
            for k, v in (to_py(pair) for pair in response.headers.entries())
            if str(k).lower() not in _RESPONSE_HEADERS_DROPPED
        ]
        return httpx.Response(int(response.status), headers=headers, content=content, request=request)


def _bytes(buffer: Any) -> bytes:
    """An ArrayBuffer's contents (JsProxy.to_bytes in Pyodide)."""
    to_bytes = getattr(buffer, "to_bytes", None)
    return bytes(to_bytes()) if callable(to_bytes) else bytes(to_py(buffer) or b"")


def _global_fetch() -> Any:
    import js

    return js.fetch


def _timeout_signal(request: httpx.Request) -> Any:
    """An AbortSignal for httpx's timeout: fetch() has no timeout of its own."""
    timeouts = request.extensions.get("timeout") or {}
    seconds = [t for t in timeouts.values() if t is not None]
    if not seconds:
        return None
    import js

    return js.AbortSignal.timeout(int(max(seconds) * 1000))


def fetch_client() -> httpx.AsyncClient:
    """An httpx client whose requests go out through fetch(). The transport holds nothing to close."""
    return httpx.AsyncClient(transport=JsFetchTransport(), trust_env=False)


# --- env -> ports ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class WorkerEnv:
    """Everything an invocation gets from the Worker's env: the core's ports and what sits beside them."""

    ports: Ports
    settings: Settings
    api_token: str
    dead_letter_queue: str
    auth_limiter: RateLimitBinding | None = None

    @property
    def http(self) -> httpx.AsyncClient:
        """The ports' fetch() client, which the entry closes when the invocation ends."""
        if self.ports.http is None:  # worker_env always gives one; a hand-built WorkerEnv may not
            raise ConfigError("this WorkerEnv's ports have no http client")
        return self.ports.http

    def __repr__(self) -> str:
        return f"WorkerEnv(settings={self.settings!r}, dead_letter_queue={self.dead_letter_queue!r})"


def worker_env(env: Any) -> WorkerEnv:
    """The one conversion from a Worker's env (bindings, [vars], secrets) to the core's ports."""
    settings = Settings.from_env(env_vars(env))
    ports = Ports(
        db=D1Database(_binding(env, DB_BINDING, "[[d1_databases]]")),
        queue=QueueBinding(_binding(env, QUEUE_BINDING, "[[queues.producers]]")),
        clock=SystemClock(),
        http=fetch_client(),
    )
    return WorkerEnv(
        ports=ports,
        settings=settings,
        api_token=_var(env, API_TOKEN_VAR) or "",
        dead_letter_queue=_var(env, DEAD_LETTER_QUEUE_VAR) or DEFAULT_DEAD_LETTER_QUEUE,
        auth_limiter=_optional(env, AUTH_LIMITER_BINDING, RateLimitBinding),
    )


def env_vars(env: Any) -> dict[str, str]:
    """The settings' variables (Field `x` is `CLIPCRAWLER_X` unless Settings.ENV_NAMES says otherwise)."""
    names = [Settings.ENV_NAMES.get(f.name, "CLIPCRAWLER_" + f.name.upper()) for f in fields(Settings)]
    return {name: value for name in names if (value := _var(env, name)) is not None}


def _var(env: Any, name: str) -> str | None:
    value = to_py(getattr(env, name, None))
    return None if value is None else str(value)


def _optional(env: Any, name: str, adapter: Any) -> Any:
    binding = getattr(env, name, None)
    null = _js_null()
    return None if binding is None or (null is not None and binding is null) else adapter(binding)


def _binding(env: Any, name: str, section: str) -> Any:
    binding = getattr(env, name, None)
    null = _js_null()
    if binding is None or (null is not None and binding is null):
        raise ConfigError(
            f"the Worker has no binding named {name}: declare it under {section} in its wrangler config"
        )
    return binding
