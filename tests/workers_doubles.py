"""JS-shaped test doubles of the Workers runtime: fake `js`, `pyodide.ffi` and `workers` modules, and D1,
Queues, message-batch and fetch() bindings in both SDK generations.

The shapes follow the documented binding APIs:
- D1: https://developers.cloudflare.com/d1/worker-api/d1-database/ (prepare, batch) and
  https://developers.cloudflare.com/d1/worker-api/prepared-statements/ (bind, all, run, first):
  `all()`/`run()` answer `{success, meta: {changes, last_row_id, rows_read, rows_written, ...}, results}`,
  `first()` the first row or null; `batch()` is one transaction; bind() refuses `undefined`.
- Queues: https://developers.cloudflare.com/queues/configuration/javascript-apis/ (`sendBatch` of
  `{body, delaySeconds}` objects, at most 100; `MessageBatch.queue`/`.messages`; `Message.body`,
  `.attempts`, `.ack()`, `.retry({delaySeconds})`; the first ack/retry call on a message wins).
- Python Workers: https://developers.cloudflare.com/workers/languages/python/ffi/ (`to_js` with
  `dict_converter=Object.fromEntries`; a Python None passed to JS is `undefined`; JS null is
  `pyodide.ffi.jsnull`); the `workers` SDK's `WorkerEntrypoint` and `asgi.fetch(app, request, env)`, which
  puts `env` in the ASGI scope (cloudflare/workers-py `workers/asgi.py`, `request_to_scope`).

"builtin" is the runtime's built-in SDK: raw JsProxy bindings, so the caller converts arguments with
`to_js` and results with `.to_py()`, and NULL columns come back as `jsnull`. "runtime-sdk" is the vendored
workers-runtime-sdk, whose wrappers take and return plain Python values (`python_to_rpc`, `python_from_rpc`).
"""

from __future__ import annotations

import sqlite3
import sys
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

SCHEMA = Path(__file__).resolve().parent.parent / "schema.sql"
SDKS = ("builtin", "runtime-sdk")


# --- pyodide.ffi ----------------------------------------------------------------------------------


class JsProxy:
    """Base of every raw JS value the doubles hand out."""


class JsException(Exception):
    """What Pyodide raises when JS code throws; `name` is the JS error's name."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message


class _JsNull(JsProxy):
    def __repr__(self) -> str:
        return "jsnull"


class _Undefined:
    def __repr__(self) -> str:
        return "undefined"


jsnull = _JsNull()
UNDEFINED = _Undefined()  # what a Python None becomes when passed to JS without conversion


class JsObject(JsProxy):
    """A plain JS object: attribute access, and `to_py()` into a dict (JS null stays `jsnull`)."""

    def __init__(self, entries: dict[str, Any]) -> None:
        object.__setattr__(self, "_entries", dict(entries))

    def __getattr__(self, name: str) -> Any:
        try:
            return self._entries[name]
        except KeyError:
            raise AttributeError(name) from None

    def to_py(self) -> dict[str, Any]:
        return {k: _js_to_py(v) for k, v in self._entries.items()}


class JsMap(JsProxy):
    """What `to_js(dict)` makes without `dict_converter`: a Map, useless to D1, Queues and fetch()."""

    def __init__(self, entries: dict[str, Any]) -> None:
        self.entries = entries


class JsArray(JsProxy, list):  # type: ignore[misc]
    """A JS array: iterable and indexable like a list, `to_py()` into a list."""

    def to_py(self) -> list[Any]:
        return [_js_to_py(v) for v in self]


class JsBytes(JsProxy):
    """A Uint8Array / ArrayBuffer."""

    def __init__(self, data: bytes) -> None:
        self.data = bytes(data)

    def to_bytes(self) -> bytes:
        return self.data

    def to_py(self) -> memoryview:
        return memoryview(self.data)


def _js_to_py(value: Any) -> Any:
    if isinstance(value, (JsObject, JsArray)):
        return value.to_py()
    return value


def to_js(value: Any, dict_converter: Any = None, **_: Any) -> Any:
    """Pyodide's to_js: dicts become Maps unless `dict_converter` is Object.fromEntries."""
    if isinstance(value, JsProxy):
        return value
    if value is None:
        return UNDEFINED
    if isinstance(value, dict):
        converted = {k: to_js(v, dict_converter) for k, v in value.items()}
        return JsObject(converted) if dict_converter is _object_from_entries else JsMap(converted)
    if isinstance(value, (list, tuple)):
        return JsArray(to_js(v, dict_converter) for v in value)
    if isinstance(value, (bytes, bytearray)):
        return JsBytes(bytes(value))
    return value


def _object_from_entries(entries: Any) -> Any:
    raise AssertionError("only used as a marker for to_js's dict_converter")


def _from_json(value: Any) -> Any:
    """A JSON value as JS holds it after JSON.parse: null is null, not undefined."""
    if value is None:
        return jsnull
    if isinstance(value, dict):
        return JsObject({k: _from_json(v) for k, v in value.items()})
    if isinstance(value, list):
        return JsArray(_from_json(v) for v in value)
    return value


def _from_python_arg(value: Any) -> Any:
    """A Python value passed straight to a JS function (no to_js): None turns into `undefined`."""
    return UNDEFINED if value is None else value


# --- SQLite behind both D1 doubles ----------------------------------------------------------------


class D1Engine:
    """SQLite with D1's batch semantics; `fail_when` makes a matching statement throw like D1 does."""

    def __init__(self, schema: Path = SCHEMA) -> None:
        self.conn = sqlite3.connect(":memory:", isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA foreign_keys = ON")
        self.conn.executescript(schema.read_text())
        self.fail_when: Callable[[str], bool] | None = None
        self.calls: list[str] = []  # "all", "first", "run", "batch": one per round trip

    def execute(self, statements: list[tuple[str, list[Any]]]) -> list[dict[str, Any]]:
        """Run statements in one transaction; answer D1's result object (null columns as None) for each."""
        self.conn.execute("BEGIN")
        try:
            answers = [self._one(sql, params) for sql, params in statements]
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")
        return answers

    def _one(self, sql: str, params: list[Any]) -> dict[str, Any]:
        for i, value in enumerate(params, 1):
            if value is UNDEFINED:
                raise JsException(
                    "Error",
                    f"D1_TYPE_ERROR: Type 'undefined' not supported for value 'undefined' at position {i}",
                )
            if isinstance(value, (JsMap, JsObject, JsArray, list, dict)):
                raise JsException("Error", f"D1_TYPE_ERROR: Type 'object' not supported at position {i}")
        if self.fail_when is not None and self.fail_when(sql):
            raise JsException("Error", "D1_ERROR: injected failure: SQLITE_ERROR")
        values = [None if v is jsnull else v for v in params]
        before = self.conn.total_changes
        try:
            cursor = self.conn.execute(sql, values)
            rows = [dict(r) for r in cursor.fetchall()]
        except sqlite3.Error as exc:
            raise JsException("Error", f"D1_ERROR: {exc}: SQLITE_ERROR") from None
        changes = self.conn.total_changes - before
        return {
            "success": True,
            "results": rows,
            "meta": {
                "changes": changes,
                "last_row_id": cursor.lastrowid or 0,
                "rows_read": len(rows),
                "rows_written": changes,
                "duration": 0.1,
                "changed_db": changes > 0,
            },
        }

    def rows(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute(sql, params).fetchall()]


# --- D1, built-in SDK: raw JsProxy objects ---------------------------------------------------------


def _raw_answer(answer: dict[str, Any]) -> JsObject:
    rows = JsArray(
        JsObject({k: jsnull if v is None else v for k, v in row.items()}) for row in answer["results"]
    )
    return JsObject({"success": True, "results": rows, "meta": JsObject(answer["meta"])})


class RawD1Statement(JsProxy):
    def __init__(self, engine: D1Engine, sql: str, params: list[Any] | None = None) -> None:
        self.engine = engine
        self.sql = sql
        self.params = params or []

    def bind(self, *values: Any) -> RawD1Statement:
        return RawD1Statement(self.engine, self.sql, [_from_python_arg(v) for v in values])

    async def all(self) -> JsObject:
        self.engine.calls.append("all")
        return _raw_answer(self.engine.execute([(self.sql, self.params)])[0])

    async def run(self) -> JsObject:
        self.engine.calls.append("run")
        return _raw_answer(self.engine.execute([(self.sql, self.params)])[0])

    async def first(self, column: str | None = None) -> Any:
        self.engine.calls.append("first")
        rows = _raw_answer(self.engine.execute([(self.sql, self.params)])[0]).results
        if not rows:
            return jsnull
        return getattr(rows[0], column) if column else rows[0]


class RawD1Database(JsProxy):
    def __init__(self, engine: D1Engine) -> None:
        self.engine = engine

    def prepare(self, sql: str) -> RawD1Statement:
        return RawD1Statement(self.engine, sql)

    async def batch(self, statements: Any) -> JsArray:
        if not isinstance(statements, JsArray):
            # A Python list reaches JS as a PyProxy, which has no .map().
            raise JsException("TypeError", "statements.map is not a function")
        self.engine.calls.append("batch")
        answers = self.engine.execute([(s.sql, s.params) for s in statements])
        return JsArray(_raw_answer(a) for a in answers)


# --- D1, workers-runtime-sdk: wrappers converting both ways -----------------------------------------


class JsDict(dict):  # type: ignore[type-arg]
    """The runtime SDK's result dicts allow attribute access too."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _rpc_arg(value: Any) -> Any:
    """workers-runtime-sdk's python_to_rpc for a bound value: None and jsnull both become null."""
    return jsnull if value is None else value


class WrappedD1Statement:
    def __init__(self, engine: D1Engine, sql: str, params: list[Any] | None = None) -> None:
        self.engine = engine
        self.sql = sql
        self.params = params or []

    def bind(self, *values: Any) -> WrappedD1Statement:
        return WrappedD1Statement(self.engine, self.sql, [_rpc_arg(v) for v in values])

    async def all(self) -> JsDict:
        self.engine.calls.append("all")
        return JsDict(self.engine.execute([(self.sql, self.params)])[0])

    async def run(self) -> JsDict:
        self.engine.calls.append("run")
        return JsDict(self.engine.execute([(self.sql, self.params)])[0])

    async def first(self, column: str | None = None) -> Any:
        self.engine.calls.append("first")
        rows = self.engine.execute([(self.sql, self.params)])[0]["results"]
        if not rows:
            return None
        return rows[0][column] if column else JsDict(rows[0])


class WrappedD1Database:
    def __init__(self, engine: D1Engine) -> None:
        self.engine = engine

    def prepare(self, sql: str) -> WrappedD1Statement:
        return WrappedD1Statement(self.engine, sql)

    async def batch(self, statements: list[WrappedD1Statement]) -> list[JsDict]:
        self.engine.calls.append("batch")
        return [JsDict(a) for a in self.engine.execute([(s.sql, s.params) for s in statements])]


def d1_binding(sdk: str, engine: D1Engine) -> Any:
    return RawD1Database(engine) if sdk == "builtin" else WrappedD1Database(engine)


# --- Queues -----------------------------------------------------------------------------------------


@dataclass
class SentMessage:
    body: Any
    delay_seconds: int | None


class QueueRecorder:
    """What a queue received, whichever SDK sent it; `fail` makes sendBatch throw."""

    def __init__(self) -> None:
        self.sends: list[list[SentMessage]] = []
        self.fail = False

    @property
    def sent(self) -> list[SentMessage]:
        return [m for send in self.sends for m in send]

    def record(self, entries: list[dict[str, Any]]) -> None:
        if self.fail:
            raise JsException("Error", "Queue send failed: injected")
        if len(entries) > 100:
            raise JsException("Error", f"sendBatch() accepts at most 100 messages, got {len(entries)}")
        self.sends.append([SentMessage(e["body"], e.get("delaySeconds")) for e in entries])


class RawQueue(JsProxy):
    def __init__(self, recorder: QueueRecorder) -> None:
        self.recorder = recorder

    async def sendBatch(self, messages: Any, options: Any = None) -> None:
        if not isinstance(messages, JsArray) or not all(isinstance(m, JsObject) for m in messages):
            raise JsException("TypeError", "sendBatch() expects an iterable of {body, delaySeconds} objects")
        self.recorder.record([m.to_py() for m in messages])


class WrappedQueue:
    def __init__(self, recorder: QueueRecorder) -> None:
        self.recorder = recorder

    async def sendBatch(self, messages: list[dict[str, Any]], **options: Any) -> None:
        self.recorder.record([dict(m) for m in messages])


def queue_binding(sdk: str, recorder: QueueRecorder) -> Any:
    return RawQueue(recorder) if sdk == "builtin" else WrappedQueue(recorder)


# --- delivered messages -------------------------------------------------------------------------------


@dataclass
class Outcome:
    """How a delivered message was settled: the first ack()/retry() call wins."""

    action: str | None = None  # "ack" | "retry"
    delay_seconds: int | None = None


class RawMessage(JsProxy):
    def __init__(self, body: Any, attempts: int = 1, message_id: str = "m") -> None:
        self.body = _from_json(body)
        self.attempts = attempts
        self.id = message_id
        self.outcome = Outcome()

    def ack(self) -> None:
        if self.outcome.action is None:
            self.outcome = Outcome("ack")

    def retry(self, options: Any = None) -> None:
        # Anything but a JS object (a PyProxy of a dict, say) has no delaySeconds the runtime can read.
        delay = options.delaySeconds if isinstance(options, JsObject) else None
        if self.outcome.action is None:
            self.outcome = Outcome("retry", delay)


class WrappedMessage:
    def __init__(self, body: Any, attempts: int = 1, message_id: str = "m") -> None:
        self.body = body
        self.attempts = attempts
        self.id = message_id
        self.outcome = Outcome()

    def ack(self) -> None:
        if self.outcome.action is None:
            self.outcome = Outcome("ack")

    def retry(self, options: Any = None, **kwargs: Any) -> None:
        options = dict(options or {}, **kwargs)
        if self.outcome.action is None:
            self.outcome = Outcome("retry", options.get("delaySeconds"))


@dataclass
class MessageBatch:
    queue: str
    messages: list[Any]


def message(sdk: str, body: Any, attempts: int = 1, message_id: str = "m") -> Any:
    kind = RawMessage if sdk == "builtin" else WrappedMessage
    return kind(body, attempts, message_id)


def batch_of(sdk: str, queue: str, messages: list[Any]) -> MessageBatch:
    return MessageBatch(queue, JsArray(messages) if sdk == "builtin" else list(messages))


# --- env and cron ---------------------------------------------------------------------------------------


class Env:
    """A Worker's env: bindings, [vars] and secrets as attributes; a missing one raises AttributeError."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


class RawEnv(JsProxy, Env):
    pass


def env_of(sdk: str, **values: Any) -> Env:
    return RawEnv(**values) if sdk == "builtin" else Env(**values)


@dataclass
class ScheduledController:
    scheduledTime: float
    cron: str = "0 * * * *"


# --- fetch() ---------------------------------------------------------------------------------------------


class JsHeaders(JsProxy):
    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs

    def entries(self) -> Iterator[JsArray]:
        return iter([JsArray([k, v]) for k, v in self.pairs])


class JsResponse(JsProxy):
    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.headers = JsHeaders(headers)
        self._body = body

    async def arrayBuffer(self) -> JsBytes:
        return JsBytes(self._body)


@dataclass
class FetchCall:
    url: str
    method: str
    headers: dict[str, str]
    body: bytes
    timeout_ms: int | None


class JsTimeoutSignal(JsProxy):
    def __init__(self, ms: int) -> None:
        self.ms = ms


class JsFetch:
    """The runtime's fetch(url, init), answering from an httpx client (the Helix emulator, say).

    Like the runtime it decompresses bodies but keeps the Content-Encoding header; `fail` raises the JS
    error a failed or timed-out fetch raises.
    """

    def __init__(self, client: httpx.AsyncClient | None = None) -> None:
        self.client = client
        self.calls: list[FetchCall] = []
        self.fail: JsException | None = None
        self.reply: Callable[[FetchCall], tuple[int, list[tuple[str, str]], bytes]] | None = None

    async def __call__(self, url: str, init: Any = None) -> JsResponse:
        if init is not None and not isinstance(init, JsObject):
            raise JsException("TypeError", "fetch() init must be an object (was it converted to a Map?)")
        options = init.to_py() if init is not None else {}
        body = options.get("body")
        signal = options.get("signal")
        headers = {k.lower(): v for k, v in options.get("headers", [])}
        call = FetchCall(
            url,
            options.get("method", "GET"),
            headers,
            body.to_bytes() if isinstance(body, JsBytes) else b"",
            signal.ms if isinstance(signal, JsTimeoutSignal) else None,
        )
        self.calls.append(call)
        if self.fail is not None:
            raise self.fail
        if self.reply is not None:
            status, headers, content = self.reply(call)
            return JsResponse(status, headers, content)
        assert self.client is not None
        response = await self.client.request(call.method, url, headers=call.headers, content=call.body)
        return JsResponse(response.status_code, list(response.headers.items()), response.content)


# --- ASGI bridge and the fake modules ------------------------------------------------------------------


@dataclass
class JsRequest:
    method: str
    url: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


@dataclass
class FetchRequest:
    """The `request` a fetch handler gets: the SDK's wrapper, with the JS request as `js_object`."""

    js_object: JsRequest


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def json(self) -> Any:
        import json

        return json.loads(self.body)


async def asgi_fetch(app: Any, request: JsRequest, env: Any, ctx: Any = None) -> Response:
    """workers.asgi.fetch: one HTTP request through the ASGI app, with `env` in the scope."""
    url = httpx.URL(request.url)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": request.method,
        "scheme": url.scheme,
        "path": url.path,
        "raw_path": url.raw_path.split(b"?")[0],
        "query_string": url.query,
        "headers": [(k.lower().encode(), v.encode()) for k, v in request.headers],
        "env": env,
    }
    sent_body = False
    status = 500
    headers: list[tuple[str, str]] = []
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": request.body, "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status = message["status"]
            headers = [(k.decode(), v.decode()) for k, v in message.get("headers", [])]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return Response(status, headers, b"".join(chunks))


class WorkerEntrypoint:
    """The SDK's base class: the runtime constructs it with (ctx, env)."""

    def __init__(self, ctx: Any, env: Any) -> None:
        self.ctx = ctx
        self.env = env


@contextmanager
def workers_runtime(fetch: JsFetch | None = None) -> Iterator[JsFetch]:
    """Install fake `js`, `pyodide.ffi` and `workers` modules, and re-import the entries on them."""
    fetch = fetch or JsFetch()
    js = types.ModuleType("js")
    js.fetch = fetch  # type: ignore[attr-defined]
    js.Object = types.SimpleNamespace(fromEntries=_object_from_entries)  # type: ignore[attr-defined]
    js.AbortSignal = types.SimpleNamespace(timeout=JsTimeoutSignal)  # type: ignore[attr-defined]
    js.null = jsnull  # type: ignore[attr-defined]
    pyodide = types.ModuleType("pyodide")
    ffi = types.ModuleType("pyodide.ffi")
    ffi.JsProxy = JsProxy  # type: ignore[attr-defined]
    ffi.JsException = JsException  # type: ignore[attr-defined]
    ffi.jsnull = jsnull  # type: ignore[attr-defined]
    ffi.to_js = to_js  # type: ignore[attr-defined]
    pyodide.ffi = ffi  # type: ignore[attr-defined]
    workers = types.ModuleType("workers")
    asgi = types.ModuleType("workers.asgi")
    asgi.fetch = asgi_fetch  # type: ignore[attr-defined]
    workers.WorkerEntrypoint = WorkerEntrypoint  # type: ignore[attr-defined]
    workers.Response = Response  # type: ignore[attr-defined]
    workers.asgi = asgi  # type: ignore[attr-defined]
    fakes = {"js": js, "pyodide": pyodide, "pyodide.ffi": ffi, "workers": workers, "workers.asgi": asgi}
    entries = ("producer.entry", "consumer.entry")
    saved = {name: sys.modules.get(name) for name in (*fakes, *entries)}
    sys.modules.update(fakes)
    for name in entries:
        sys.modules.pop(name, None)
    try:
        yield fetch
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
