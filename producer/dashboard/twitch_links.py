"""The only outside addresses the dashboard puts in a page: https links to Twitch, and its thumbnail hosts."""

from __future__ import annotations

from urllib.parse import urlsplit

# Clip, channel and embed pages; thumbnails and box art are served from Twitch's CDN (and, for older
# clips, from clips-media-assets2). Anything else a row holds is shown as text, never as a link or image.
LINK_HOSTS = ("twitch.tv", ".twitch.tv")
IMAGE_HOSTS = ("static-cdn.jtvnw.net", "clips-media-assets2.twitch.tv")
IMAGE_CSP_SOURCES = " ".join(f"https://{host}" for host in IMAGE_HOSTS)


def twitch_url(value: object, *, image: bool = False) -> str | None:
    """`value` if it is an https URL on a Twitch host (an image host with `image`), else None."""
    if not isinstance(value, str) or len(value) > 2048:
        return None
    if any(c.isspace() or not c.isprintable() for c in value):
        return None
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    if parts.scheme != "https" or port is not None or parts.username is not None:
        return None
    if parts.password is not None:
        return None
    if image:
        return value if host in IMAGE_HOSTS else None
    return value if host == LINK_HOSTS[0] or host.endswith(LINK_HOSTS[1]) else None
