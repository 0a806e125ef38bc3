"""Helix clip payloads -> rows for the clips table; bad clips are reported, never fatal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.errors import InvalidInput
from shared.timefmt import normalise

MAX_TEXT = 1_000  # Twitch titles are at most 140 characters; anything longer is cut, not refused

_TEXT_FIELDS = (
    "id",
    "url",
    "embed_url",
    "broadcaster_id",
    "broadcaster_name",
    "creator_id",
    "creator_name",
    "game_id",
    "language",
    "title",
    "thumbnail_url",
)
_IDS = ("id", "broadcaster_id")
COLUMNS = _TEXT_FIELDS + ("video_id", "view_count", "created_at", "duration", "vod_offset", "is_featured")


@dataclass(frozen=True)
class ParsedPage:
    """The usable clips of one page and why the others were skipped."""

    rows: list[dict[str, Any]]
    skipped: list[str]


def parse_page(data: Any, broadcaster_id: str) -> ParsedPage:
    """Validate every clip of a Get Clips `data` array."""
    if not isinstance(data, list):
        raise InvalidInput(f"Get Clips 'data' must be a list, got {type(data).__name__}")
    rows: dict[str, dict[str, Any]] = {}
    skipped: list[str] = []
    for index, raw in enumerate(data):
        try:
            row = parse_clip(raw)
        except InvalidInput as exc:
            skipped.append(f"clip #{index}: {exc}")
            continue
        if row["broadcaster_id"] != broadcaster_id:
            skipped.append(f"clip {row['id']!r} belongs to broadcaster {row['broadcaster_id']!r}")
            continue
        rows[row["id"]] = row  # a page can repeat a clip; keep one
    return ParsedPage(list(rows.values()), skipped)


def parse_clip(raw: Any) -> dict[str, Any]:
    """One Helix clip -> a row, or InvalidInput naming the field at fault."""
    if not isinstance(raw, dict):
        raise InvalidInput(f"not an object: {type(raw).__name__}")
    row: dict[str, Any] = {}
    for name in _TEXT_FIELDS:
        # Inline for the common case (an ASCII string under the cap): each page parses ~20-100 clips.
        value = raw.get(name)
        if type(value) is not str or not value.isascii() or len(value) > MAX_TEXT:
            value = _text(raw, name, required=True)
        row[name] = value
    for name in _IDS:
        if not row[name]:
            raise InvalidInput(f"field {name!r} is empty")
    row["video_id"] = _text(raw, "video_id", required=False)
    row["view_count"] = _integer(raw, "view_count", required=True)
    created = raw.get("created_at")
    if not isinstance(created, str):
        raise InvalidInput(f"field 'created_at' is missing or not a string: {created!r}")
    row["created_at"] = normalise(created)
    duration = raw.get("duration")
    if not isinstance(duration, (int, float)) or isinstance(duration, bool) or duration < 0:
        raise InvalidInput(f"field 'duration' must be a non-negative number, got {duration!r}")
    row["duration"] = float(duration)
    row["vod_offset"] = _integer(raw, "vod_offset", required=False)
    featured = raw.get("is_featured", False)
    if not isinstance(featured, bool):
        raise InvalidInput(f"field 'is_featured' must be a boolean, got {featured!r}")
    row["is_featured"] = int(featured)
    return row


def _text(raw: dict[str, Any], name: str, *, required: bool) -> str:
    value = raw.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"field {name!r} is missing or not a string: {value!r}")
    if not value.isascii():
        # Lone surrogates (from "\udXXX" escapes) cannot be stored as UTF-8.
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value[:MAX_TEXT]


def _integer(raw: dict[str, Any], name: str, *, required: bool) -> int | None:
    value = raw.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidInput(f"field {name!r} must be a non-negative integer, got {value!r}")
    return value
