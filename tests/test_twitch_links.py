"""Only https URLs on Twitch's hosts become links (or, on its CDN, images) in the dashboard."""

from __future__ import annotations

import pytest

from producer.dashboard.twitch_links import twitch_url

LINKS = [
    "https://clips.twitch.tv/AbcDef-123",
    "https://www.twitch.tv/streamer00001",
    "https://twitch.tv/x",
    "https://m.twitch.tv/clip/AbcDef",
]
IMAGES = [
    "https://static-cdn.jtvnw.net/twitch-clips-thumbnails-prod/A/b/preview-480x272.jpg",
    "https://clips-media-assets2.twitch.tv/AT-cm%7C1-preview-480x272.jpg",
]
REFUSED = [
    "http://clips.twitch.tv/A",
    "javascript:alert(1)",
    "data:text/html,hi",
    "//clips.twitch.tv/A",
    "https://evil.example/clips.twitch.tv",
    "https://twitch.tv.evil.example/",
    "https://eviltwitch.tv/",
    "https://user@clips.twitch.tv/A",
    "https://:pw@clips.twitch.tv/A",
    "https://clips.twitch.tv:8443/A",
    "https://clips.twitch.tv/A\nB",
    "https://clips.twitch.tv/ A",
    "",
    "https://[::1/",
    None,
    42,
    "https://clips.twitch.tv/" + "a" * 3000,
]


@pytest.mark.parametrize("value", LINKS)
def test_twitch_pages_are_links_not_images(value: str) -> None:
    assert twitch_url(value) == value and twitch_url(value, image=True) is None


@pytest.mark.parametrize("value", IMAGES)
def test_twitch_cdn_images_are_images(value: str) -> None:
    assert twitch_url(value, image=True) == value


@pytest.mark.parametrize("value", REFUSED)
def test_anything_else_is_neither(value: object) -> None:
    assert twitch_url(value) is None and twitch_url(value, image=True) is None
