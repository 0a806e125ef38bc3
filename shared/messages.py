"""Queue message bodies: versioned, strictly decoded, never trusted."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from shared.errors import MalformedMessage

VERSION = 1


@dataclass(frozen=True)
class CrawlJob:
    """Crawl one streamer for one run; `seq` > 0 marks a continuation of the same job."""

    run_id: int
    job_id: int
    streamer_id: str
    seq: int = 0

    def encode(self) -> dict[str, Any]:
        return {"v": VERSION, "type": "crawl", **asdict(self)}


@dataclass(frozen=True)
class FanOut:
    """Create and enqueue the jobs of the run's next slice of streamers, those after `after` in id order."""

    run_id: int
    after: str

    def encode(self) -> dict[str, Any]:
        return {"v": VERSION, "type": "fanout", **asdict(self)}


Message = CrawlJob | FanOut

_FIELDS: dict[str, dict[str, tuple[type, bool]]] = {
    # field -> (type, required)
    "crawl": {"run_id": (int, True), "job_id": (int, True), "streamer_id": (str, True), "seq": (int, False)},
    "fanout": {"run_id": (int, True), "after": (str, True)},
}
_MAY_BE_EMPTY = {"after"}  # "" is the start of the streamer list
_TYPES: dict[str, type[CrawlJob] | type[FanOut]] = {"crawl": CrawlJob, "fanout": FanOut}


def decode(body: Any) -> Message:
    """A delivered body -> a message, or MalformedMessage saying exactly what is wrong."""
    if isinstance(body, (bytes, bytearray)):
        try:
            body = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedMessage("message body is not UTF-8") from exc
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError as exc:
            raise MalformedMessage(f"message body is not JSON: {preview(body)}") from exc
    if not isinstance(body, dict):
        raise MalformedMessage(f"message body must be a JSON object, got {type(body).__name__}")
    version = body.get("v")
    if version != VERSION:
        raise MalformedMessage(f"unsupported message version {version!r} (this consumer reads {VERSION})")
    kind = body.get("type")
    spec = _FIELDS.get(kind) if isinstance(kind, str) else None
    if spec is None:
        raise MalformedMessage(f"unknown message type {kind!r}")
    unknown = sorted(set(body) - set(spec) - {"v", "type"})
    if unknown:
        raise MalformedMessage(f"unknown fields in {kind} message: {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, (kind_of, required) in spec.items():
        if name not in body:
            if required:
                raise MalformedMessage(f"{kind} message lacks {name!r}")
            continue
        value = body[name]
        # bool is an int in Python; a JSON true is not an id.
        if not isinstance(value, kind_of) or isinstance(value, bool):
            raise MalformedMessage(f"{kind} message field {name!r} must be {kind_of.__name__}, got {value!r}")
        if kind_of is int and value < 0:
            raise MalformedMessage(f"{kind} message field {name!r} must not be negative, got {value}")
        if kind_of is str and not value.strip() and name not in _MAY_BE_EMPTY:
            raise MalformedMessage(f"{kind} message field {name!r} is empty")
        values[name] = value
    return _TYPES[kind](**values)


def preview(body: Any, limit: int = 200) -> str:
    """A short, printable rendering of a body for errors and dead letters."""
    text = body if isinstance(body, str) else repr(body)
    return text if len(text) <= limit else text[:limit] + "…"
