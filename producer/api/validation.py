"""Reading request input strictly: bounded bodies, JSON objects with known fields, typed query parameters."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar

from starlette.requests import Request

from producer.api.errors import ApiError, invalid
from shared.bindings import MAX_BINDABLE_INTEGER
from shared.errors import InvalidInput
from shared.timefmt import parse_rfc3339

MAX_BODY_BYTES = 64 * 1024
JSON_TYPE = "application/json"
JSON_WHITESPACE = b" \t\r\n"  # only these: bytes.strip() would also take \x0b and \x0c, which JSON refuses
MAX_JSON_DEPTH = 16  # the deepest body any endpoint takes is 2; a bound keeps the parser off deep recursion
MAX_ID = MAX_BINDABLE_INTEGER  # ids and cursors: the largest integer D1 can bind (2**53 - 2)
T = TypeVar("T")


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The whole body, refused with 413 once it is over `limit` bytes, declared or streamed."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise ApiError(400, f"Content-Length is not a number: {declared[:40]!r}") from None
        if size > limit:
            raise ApiError(413, f"the body is {size:,} bytes; the limit is {limit:,}")
    chunks: list[bytes] = []
    received = 0
    # A chunked body declares no length: count as it streams and stop reading at the limit.
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise ApiError(413, f"the body is over the limit of {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def json_object(
    request: Request, allowed: Collection[str], *, required: bool = False
) -> dict[str, Any]:
    """The body as a JSON object whose keys are all in `allowed`; an empty body is `{}` unless `required`."""
    raw = await read_body(request)
    if not raw.strip(JSON_WHITESPACE):
        if required:
            raise ApiError(422, "a JSON body is required", field="body")
        return {}
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != JSON_TYPE:
        raise ApiError(
            415,
            f"expected {JSON_TYPE}, got {kind[:60] or 'no content type'!r}",
            headers={"Accept-Post": JSON_TYPE},
        )
    return check_object(parse_json(raw), allowed, "body")


def parse_json(raw: bytes) -> Any:
    """Strict JSON (RFC 8259): UTF-8, no NaN, no duplicate keys, no lone surrogates, nesting bounded."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, f"the body is not UTF-8 (byte {exc.start})") from None
    depth = nesting_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise ApiError(400, f"the body nests {depth:,} levels deep; at most {MAX_JSON_DEPTH} are allowed")
    try:
        value = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
    except ValueError as exc:  # JSONDecodeError, a duplicate key, or an integer of over 4,300 digits
        raise ApiError(400, f"the body is not valid JSON: {exc}") from None
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(
            400, "the body holds a lone surrogate escape (\\ud800-\\udfff): not a character"
        ) from None
    return value


def nesting_depth(text: str) -> int:
    """How deep arrays and objects nest, counted without parsing (so without recursion)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def check_object(value: Any, allowed: Collection[str], where: str) -> dict[str, Any]:
    """`value` as a JSON object with no fields outside `allowed`."""
    if not isinstance(value, dict):
        raise invalid(where, f"must be a JSON object, got {json_type(value)}")
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        prefix = "" if where == "body" else where + "."
        raise invalid(prefix + unknown[0], f"unknown field (allowed: {', '.join(sorted(allowed))})")
    return value


def string_list(
    value: Any,
    field: str,
    *,
    max_items: int,
    min_items: int = 1,
    check: Callable[[str, str], T] | None = None,
) -> list[Any]:
    """A JSON array of 1..max_items strings, each through `check(item, field[i])`, duplicates dropped."""
    if not isinstance(value, list):
        raise invalid(field, f"must be an array of strings, got {json_type(value)}")
    if not min_items <= len(value) <= max_items:
        raise invalid(field, f"has {len(value):,} items; between {min_items} and {max_items:,} are allowed")
    items: list[Any] = []
    for index, item in enumerate(value):
        where = f"{field}[{index}]"
        if not isinstance(item, str) or not item.strip():
            raise invalid(where, f"must be a non-empty string, got {_preview(item)}")
        checked = check(item, where) if check else item.strip()
        if checked not in items:
            items.append(checked)
    return items


def timestamp(value: Any, field: str) -> float:
    """An RFC 3339 timestamp with a time zone, as epoch seconds."""
    if not isinstance(value, str):
        raise invalid(field, f"must be an RFC 3339 timestamp string, got {json_type(value)}")
    try:
        return parse_rfc3339(value)
    except InvalidInput:
        raise invalid(field, f"is not an RFC 3339 timestamp with a time zone: {_preview(value)}") from None


def query(request: Request, allowed: Collection[str]) -> Mapping[str, str]:
    """The query parameters, each given at most once and all of them known."""
    params = request.query_params
    for name in params:
        if name not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            raise invalid(name, f"unknown query parameter (allowed: {known})")
        if len(params.getlist(name)) > 1:
            raise invalid(name, "given more than once")
    return params


def int_param(
    params: Mapping[str, str], name: str, *, default: int | None, low: int, high: int
) -> int | None:
    raw = params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid(name, f"must be an integer, got {_preview(raw)}") from None
    if not low <= value <= high:
        raise invalid(name, f"is {value}; it must be between {low} and {high:,}")
    return value


def choice_param(params: Mapping[str, str], name: str, choices: Collection[str]) -> str | None:
    raw = params.get(name)
    if raw is None:
        return None
    if raw not in choices:
        raise invalid(name, f"is {_preview(raw)}; expected one of {', '.join(choices)}")
    return raw


def path_int(request: Request, name: str) -> int:
    """A positive integer path parameter; anything else cannot name a row, so 404."""
    raw = str(request.path_params[name])
    # No row has an id D1 cannot bind; refusing here keeps such a number from ever reaching D1.
    if not raw.isascii() or not raw.isdigit() or len(raw) > 20 or not 1 <= int(raw) <= MAX_ID:
        raise ApiError(404, f"no {name.removesuffix('_id')} {_preview(raw)}")
    return int(raw)


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _preview(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"the key {_preview(key)} is given more than once")
        seen[key] = value
    return seen
