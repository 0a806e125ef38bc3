"""Queue message bodies: versioned, strictly decoded, never trusted."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from shared.errors import MalformedMessage

VERSION = 1
MAX_SAFE_INTEGER = 2**53 - 1  # D1 binds integers as JS numbers, exact only up to here
MAX_DEPTH = 8  # a message is one flat object; anything deeper is not one of ours
MAX_TEXT = 131_072  # a queue message's size limit (128 KB)
# A JSON string (its brackets do not nest; possessive, and an unterminated one runs to the end, so the
# scan stays linear on hostile text) or a structural bracket.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*+"?|[\[\]{}]', re.DOTALL)


@dataclass(frozen=True)
class CrawlJob:
    """Crawl one streamer for one run; `seq` > 0 marks a continuation of the same job.

    `busy` counts the answers "another consumer holds the job" this message has had in a row.
    """

    run_id: int
    job_id: int
    streamer_id: str
    seq: int = 0
    busy: int = 0

    def encode(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "v": VERSION,
            "type": "crawl",
            "run_id": self.run_id,
            "job_id": self.job_id,
            "streamer_id": self.streamer_id,
            "seq": self.seq,
        }
        if self.busy:
            body["busy"] = self.busy  # left out at 0, so most messages keep their old shape
        return body


@dataclass(frozen=True)
class FanOut:
    """Create and enqueue the jobs of the run's next slice of streamers, those after `after` in id order."""

    run_id: int
    after: str

    def encode(self) -> dict[str, Any]:
        return {"v": VERSION, "type": "fanout", "run_id": self.run_id, "after": self.after}


Message = CrawlJob | FanOut

_FIELDS: dict[str, dict[str, tuple[type, bool]]] = {
    # field -> (type, required)
    "crawl": {
        "run_id": (int, True),
        "job_id": (int, True),
        "streamer_id": (str, True),
        "seq": (int, False),
        "busy": (int, False),
    },
    "fanout": {"run_id": (int, True), "after": (str, True)},
}
_MAY_BE_EMPTY = {"after"}  # "" is the start of the streamer list
_TYPES: dict[str, type[CrawlJob] | type[FanOut]] = {"crawl": CrawlJob, "fanout": FanOut}


def decode(body: Any) -> Message:
    """A delivered body -> a message, or MalformedMessage saying exactly what is wrong."""
    if isinstance(body, (bytes, bytearray)):
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedMessage(f"message body is not UTF-8 (byte {exc.start}): {preview(body)}") from exc
    if isinstance(body, str):
        body = _parse(body)
    check_storable(body)
    if not isinstance(body, dict):
        raise MalformedMessage(f"message body must be a JSON object, got {type(body).__name__}")
    version = body.get("v")
    # `type(...) is int`: true == 1 and 1.0 == 1 in Python, and neither is a version.
    if type(version) is not int or version != VERSION:
        raise MalformedMessage(
            f"unsupported message version {_shown(version)} (this consumer reads {VERSION})"
        )
    kind = body.get("type")
    if not isinstance(kind, str) or kind not in _FIELDS:
        raise MalformedMessage(f"unknown message type {_shown(kind)}")
    spec = _FIELDS[kind]
    unknown = sorted(set(body) - set(spec) - {"v", "type"})
    if unknown:
        raise MalformedMessage(f"unknown fields in {kind} message: {preview(', '.join(unknown), 200)}")
    values: dict[str, Any] = {}
    for name, (kind_of, required) in spec.items():
        if name not in body:
            if required:
                raise MalformedMessage(f"{kind} message lacks {name!r}")
            continue
        value: Any = body[name]
        # bool is an int in Python; a JSON true is not an id.
        if not isinstance(value, kind_of) or isinstance(value, bool):
            raise MalformedMessage(
                f"{kind} message field {name!r} must be {kind_of.__name__}, got {_shown(value)}"
            )
        if kind_of is int and isinstance(value, int) and value < 0:
            raise MalformedMessage(f"{kind} message field {name!r} must not be negative, got {value}")
        if kind_of is str and not str(value).strip() and name not in _MAY_BE_EMPTY:
            raise MalformedMessage(f"{kind} message field {name!r} is empty")
        values[name] = value
    return _TYPES[kind](**values)


def _parse(text: str) -> Any:
    """JSON text -> a value, refusing nesting the parser would have to recurse through."""
    if len(text) > MAX_TEXT:
        raise MalformedMessage(
            f"message body is {len(text)} characters, more than a queue message holds "
            f"({MAX_TEXT}): {preview(text)}"
        )
    depth = deepest = 0
    for token in _TOKENS.findall(text):
        if token in ("[", "{"):
            depth += 1
            deepest = max(deepest, depth)
        elif token in ("]", "}"):
            depth -= 1
    if deepest > MAX_DEPTH:
        raise MalformedMessage(
            f"message body nests {deepest} levels deep, more than {MAX_DEPTH}: {preview(text)}"
        )
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: unbalanced text can still fool the count
        raise MalformedMessage(f"message body is not JSON: {preview(text)}") from exc


def check_storable(body: Any) -> None:
    """Refuse what D1 cannot hold: nesting past MAX_DEPTH, unsafe integers, text that is not UTF-8."""
    stack: list[tuple[Any, int]] = [(body, 1)]
    while stack:  # iterative: a nested body must not exhaust the interpreter's stack
        value, depth = stack.pop()
        if isinstance(value, (dict, list, tuple)):
            if depth > MAX_DEPTH:
                raise MalformedMessage(f"message body nests deeper than {MAX_DEPTH} levels")
            if isinstance(value, dict):
                for key, item in value.items():
                    if not isinstance(key, str):
                        raise MalformedMessage(
                            f"message body has a key that is not text: {type(key).__name__}"
                        )
                    _check_text(key)
                    stack.append((item, depth + 1))
            else:
                stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, str):
            _check_text(value)
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_SAFE_INTEGER:
            raise MalformedMessage(
                f"message body holds the integer {_shown(value)}, beyond the "
                f"exact range of D1 (±{MAX_SAFE_INTEGER})"
            )


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise MalformedMessage(
            f"message body holds text that is not valid Unicode (a lone surrogate "
            f"{text[exc.start]!a} at {exc.start}): {preview(text, 60)}"
        ) from None


def _shown(value: Any, limit: int = 60) -> str:
    """repr() of a value for an error message, short."""
    text = safe_repr(value, limit + 1)
    return text if len(text) <= limit else text[:limit] + "…"


def preview(body: Any, limit: int = 200) -> str:
    """A short, printable rendering of any body for errors and dead letters; never raises."""
    text = storable_text(body) if isinstance(body, str) else safe_repr(body, limit + 1)
    return text if len(text) <= limit else text[:limit] + "…"


def body_text(body: Any, limit: int = 4_000) -> str:
    """A body as stored in dead_letters: JSON where it can be, UTF-8-safe, at most `limit` characters."""
    if isinstance(body, (bytes, bytearray)):
        text = bytes(body[: limit * 4]).decode("utf-8", "replace")
    elif isinstance(body, str):
        text = body
    else:
        try:
            check_storable(body)
            text = json.dumps(body, ensure_ascii=False, default=repr)
        except (MalformedMessage, ValueError, TypeError, RecursionError):
            text = safe_repr(body, limit)
    return storable_text(text[:limit])


def storable_text(text: str) -> str:
    """`text` with lone surrogates written as escapes, so it encodes as UTF-8."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def safe_repr(value: Any, limit: int) -> str:
    """repr() of nested containers without recursion, cut at about `limit` characters."""
    out: list[str] = []
    size = 0
    stack: list[Any] = [value]
    while stack and size < limit:
        item = stack.pop()
        if isinstance(item, _Token):
            piece = item.text
        elif isinstance(item, dict):
            piece = "{"
            stack.append(_Token("}"))
            for i, (k, v) in enumerate(reversed(list(item.items()))):
                stack.extend(([_Token(", ")] if i else []) + [v, _Token(": "), k])
        elif isinstance(item, (list, tuple)):
            piece = "["
            stack.append(_Token("]"))
            for i, v in enumerate(reversed(list(item))):
                stack.extend(([_Token(", ")] if i else []) + [v])
        else:
            try:
                piece = repr(item)
            except Exception as exc:  # a hostile __repr__
                piece = f"<{type(item).__name__}: {type(exc).__name__}>"
        out.append(piece)
        size += len(piece)
    return storable_text("".join(out)[:limit])


@dataclass(frozen=True)
class _Token:
    text: str
