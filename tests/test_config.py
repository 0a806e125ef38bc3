from __future__ import annotations

import pytest

from shared.config import Settings
from shared.errors import ConfigError


def test_env_and_overrides() -> None:
    settings = Settings.from_env(
        {"TWITCH_CLIENT_ID": "abc", "CLIPCRAWLER_PAGE_CAP": "7", "CLIPCRAWLER_PLAN": "paid"},
        twitch_api_url="http://x/helix",
        twitch_client_secret=None,
    )
    assert (settings.twitch_client_id, settings.page_cap, settings.twitch_api_url) == (
        "abc",
        7,
        "http://x/helix",
    )
    assert settings.limits == (10_000, 1_000)
    assert Settings().limits == (50, 50)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CLIPCRAWLER_PAGE_CAP": "many"}, "CLIPCRAWLER_PAGE_CAP has value 'many'"),
        ({"CLIPCRAWLER_PLAN": "gold"}, "CLIPCRAWLER_PLAN has value 'gold'"),
        ({"CLIPCRAWLER_PAGE_CAP": "0"}, "page_cap has value 0"),
    ],
)
def test_bad_values_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_missing_credentials_say_what_to_set() -> None:
    with pytest.raises(ConfigError, match="set TWITCH_CLIENT_ID and TWITCH_CLIENT_SECRET"):
        Settings().require_credentials()


def test_the_secret_never_shows_in_repr() -> None:
    assert "hunter2" not in repr(Settings(twitch_client_secret="hunter2"))
