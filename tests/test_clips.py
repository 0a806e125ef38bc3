from __future__ import annotations

from typing import Any

import pytest

from shared.clips import MAX_TEXT, parse_clip, parse_page
from shared.errors import InvalidInput


def clip(**changes: Any) -> dict[str, Any]:
    base = {
        "id": "AwkwardHelplessSalamanderSwiftRage",
        "url": "https://clips.twitch.tv/A",
        "embed_url": "https://e/A",
        "broadcaster_id": "67955580",
        "broadcaster_name": "ChewieMelodies",
        "creator_id": "53834192",
        "creator_name": "BlackNova03",
        "video_id": "205586603",
        "game_id": "488191",
        "language": "en",
        "title": "babymetal",
        "view_count": 10,
        "created_at": "2017-11-30T22:34:18Z",
        "thumbnail_url": "https://t/A.jpg",
        "duration": 12.9,
        "vod_offset": 1957,
        "is_featured": False,
    }
    base.update(changes)
    return base


def test_a_full_clip_becomes_a_row() -> None:
    row = parse_clip(clip())
    assert row["is_featured"] == 0 and row["duration"] == 12.9 and row["vod_offset"] == 1957


def test_null_vod_offset_and_empty_video_id_are_kept_as_they_are() -> None:
    row = parse_clip(clip(video_id="", vod_offset=None))
    assert row["video_id"] == "" and row["vod_offset"] is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"id": None}, "'id' is missing"),
        ({"id": ""}, "'id' is empty"),
        ({"view_count": "12"}, "'view_count' must be a non-negative integer"),
        ({"view_count": True}, "'view_count' must be a non-negative integer"),
        ({"created_at": "yesterday"}, "not an RFC 3339 timestamp"),
        ({"duration": "long"}, "'duration' must be a non-negative number"),
        ({"is_featured": "no"}, "'is_featured' must be a boolean"),
        ({"title": 5}, "'title' is missing or not a string"),
    ],
)
def test_bad_fields_are_named(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_clip(clip(**changes))


def test_missing_required_field_is_reported() -> None:
    raw = clip()
    del raw["creator_name"]
    with pytest.raises(InvalidInput, match="creator_name"):
        parse_clip(raw)


def test_oversized_and_non_utf8_text_is_cut_and_cleaned() -> None:
    row = parse_clip(clip(title="x" * 50_000 + "\udc80", creator_name="bad\ud800name"))
    assert len(row["title"]) == MAX_TEXT
    row["creator_name"].encode("utf-8")  # would raise on a lone surrogate


def test_a_page_keeps_good_clips_skips_bad_ones_and_dedups() -> None:
    page = parse_page(
        [clip(), clip(), clip(id="B", view_count=None), "junk", clip(id="C", broadcaster_id="1")], "67955580"
    )
    assert [r["id"] for r in page.rows] == ["AwkwardHelplessSalamanderSwiftRage"]
    assert len(page.skipped) == 3 and "belongs to broadcaster '1'" in page.skipped[-1]


def test_data_that_is_not_a_list_is_an_error() -> None:
    with pytest.raises(InvalidInput, match="must be a list"):
        parse_page({"id": "x"}, "1")
